"""Run one client's workload in a fresh process and print its numbers as JSON.

The parent (benchmarks.run) starts one such process per client for each
memory measurement, so that each process's peak memory belongs to one client
alone. Every process imports the same modules (all three clients' libraries),
so their memory starts from the same level.

    python -m benchmarks.child ingest CLIENT PER_CONVERSATION SECONDS
    python -m benchmarks.child probe CLIENT CALLS SECONDS

The database's conninfo comes in the environment variable HWLAB_BENCH_DSN,
where no other user of the machine can read its password, unlike arguments.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from . import database, workloads
from .clients import open_client
from .measure import (
    LatencyRun,
    ThreadedRun,
    peak_resident_kib,
    reset_peak_resident,
    resident_kib,
)

POOL_SIZE = 8
DSN_VARIABLE = "HWLAB_BENCH_DSN"


def run_ingest(label: str, dsn: str, per_conversation: int, seconds: float) -> Any:
    """Store per_conversation messages in each conversation of the database.

    The input is generated before the measurement starts. The peak memory
    (VmHWM) is that of the whole process, input included.
    """
    with database.connect(dsn) as conn:
        conversation_ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM conversations ORDER BY started_at DESC"
            )
        ]
    batches = workloads.make_batches(conversation_ids, per_conversation, seed=3)
    client = open_client(label, dsn, POOL_SIZE)
    try:
        before_kib = resident_kib()
        run = workloads.ingest(client, batches, time.monotonic() + seconds)
    finally:
        client.close()
    return {
        "rows": run.rows,
        "seconds": run.seconds,
        "stopped_early": run.stopped_early,
        "before_kib": before_kib,
        "peak_kib": peak_resident_kib(),
    }


def run_probe(label: str, dsn: str, calls: int, seconds: float) -> Any:
    """Run each read and write workload once and return its peak memory.

    The workloads share one deadline, *seconds* from the start. Before each
    workload the peak resident size is reset to the current one, so that each
    peak belongs to one workload. Where the kernel cannot reset it, the peaks
    are None.
    """
    with database.connect(dsn) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM conversations ORDER BY message_count DESC LIMIT 9"
            )
        ]
    long_conversation, others = ids[0], ids[1:]
    client = open_client(label, dsn, POOL_SIZE)
    deadline = time.monotonic() + seconds
    steps: dict[str, Callable[[], LatencyRun | ThreadedRun]] = {
        "add_message": lambda: workloads.single_adds(
            [client], others, calls, 0, deadline
        ),
        "get_conversation": lambda: workloads.gets(
            {label: (client, long_conversation)}, max(calls // 10, 1), 0, deadline
        ),
        "list_conversations": lambda: workloads.lists(
            {label: client}, 100, calls, 0, deadline
        ),
        "threads": lambda: workloads.threaded_adds(
            client, others, max(calls // len(others), 1), deadline
        ),
    }
    result: dict[str, Any] = {}
    try:
        for name, step in steps.items():
            can_reset = reset_peak_resident()
            before_kib = resident_kib()
            run = step()
            result[name] = {
                "before_kib": before_kib,
                "peak_kib": peak_resident_kib() if can_reset else None,
                "stopped_early": run.stopped_early,
            }
    finally:
        client.close()
    return result


def main(argv: list[str]) -> int:
    dsn = os.environ.get(DSN_VARIABLE)
    if len(argv) != 4 or argv[0] not in {"ingest", "probe"} or dsn is None:
        print(__doc__, file=sys.stderr)
        return 2
    command, label, size, seconds = argv
    if command == "ingest":
        result = run_ingest(label, dsn, int(size), float(seconds))
    else:
        result = run_probe(label, dsn, int(size), float(seconds))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
