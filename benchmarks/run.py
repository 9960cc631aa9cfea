"""Benchmark the Store facade against raw psycopg and SQLAlchemy Core.

    python -m benchmarks.run [--quick] [--json PATH] [--random-page-cost COST]

The server is the one DATABASE_URL, or else the PG* variables and libpq's
defaults, reach. When none responds, a throwaway server is started from the
installed PostgreSQL binaries. The run creates scratch databases of its own,
one for bulk ingest and one per data set, and drops them at the end. Progress
goes to stderr and the report to stdout. docs/benchmarks.md explains the
method and the limits of each number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar
from uuid import UUID

from hwlab_sql import queries

from . import database, plans, report, workloads
from .child import DSN_VARIABLE, POOL_SIZE
from .clients import COPY, FACADE, PSYCOPG, SQLALCHEMY, Client, open_client
from .measure import Latency, LatencyRun, summarize

REPOSITORY = Path(__file__).resolve().parent.parent

# Conversations of every data set; the data sets differ in their messages.
CONVERSATIONS = 10_000
THREADS = 8
LIST_LIMIT = 100
# Server settings shown in the report: the planner's inputs that decide the
# plans of the reads, and the cache that decides whether their pages are read
# from disk.
SERVER_SETTINGS = (
    "random_page_cost",
    "seq_page_cost",
    "effective_cache_size",
    "work_mem",
    "plan_cache_mode",
    "shared_buffers",
)
# Warm-up rounds, uncounted, before the first repetition of workloads 1, 3,
# 4 and 5. psycopg prepares a statement at its 6th execution on a connection,
# and PostgreSQL weighs the generic plan from the 6th execution of the
# prepared statement on: the 11th call. A pool hands its connections out in
# turn, so 12 rounds per pooled connection let every connection settle.
WARMUP_ROUNDS = 12 * POOL_SIZE
TRANSCRIPT_MESSAGES = 100

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """Sizes of one run. Loops stop at their count or after loop_seconds."""

    name: str
    repetitions: int
    ingest_repetitions: int
    data_sets: tuple[int, ...]
    ingest_conversations: int
    ingest_per_conversation: int
    add_calls: int
    get_calls: int
    list_calls: int
    thread_calls: int
    probe_calls: int
    memory_repetitions: int
    warmup: int
    loop_seconds: float


FULL = Plan(
    name="full",
    repetitions=5,
    ingest_repetitions=3,
    data_sets=(10_000, 100_000, 1_000_000),
    ingest_conversations=1_000,
    ingest_per_conversation=100,
    add_calls=1_000,
    get_calls=100,
    list_calls=500,
    thread_calls=250,
    probe_calls=200,
    memory_repetitions=2,
    warmup=WARMUP_ROUNDS,
    loop_seconds=120.0,
)

QUICK = Plan(
    name="quick",
    repetitions=3,
    ingest_repetitions=3,
    data_sets=(10_000, 100_000),
    ingest_conversations=50,
    ingest_per_conversation=100,
    add_calls=200,
    get_calls=20,
    list_calls=100,
    thread_calls=40,
    probe_calls=40,
    memory_repetitions=1,
    warmup=WARMUP_ROUNDS,
    loop_seconds=20.0,
)


def progress(message: str) -> None:
    """Print progress on stderr, so that stdout contains only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rotated(items: Sequence[T], repetition: int) -> list[T]:
    """Return *items* rotated by *repetition*, so that no client always goes first."""
    shift = repetition % len(items)
    return list(items[shift:]) + list(items[:shift])


def run_child(command: str, label: str, dsn: str, size: int, seconds: float) -> Any:
    """Run benchmarks.child in a fresh interpreter and return its JSON output."""
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.child",
            command,
            label,
            str(size),
            str(seconds),
        ],
        cwd=REPOSITORY,
        env={**os.environ, DSN_VARIABLE: dsn},
        capture_output=True,
        text=True,
        timeout=seconds + 60.0,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"benchmarks.child {command} {label!r} failed with exit code"
            f" {completed.returncode}:\n{completed.stderr}"
        )
    return json.loads(completed.stdout)


@contextmanager
def open_clients(dsn: str, labels: Sequence[str]) -> Iterator[list[Client]]:
    """Open one client per label, each with a pool of POOL_SIZE connections."""
    clients: list[Client] = []
    try:
        for label in labels:
            clients.append(open_client(label, dsn, POOL_SIZE))
        yield clients
    finally:
        for client in clients:
            client.close()


def repeat(
    plan: Plan,
    measure: Callable[[int, float], LatencyRun],
    what: str,
    notes: list[str],
) -> list[LatencyRun]:
    """Run measure(warmup, deadline) plan.repetitions times.

    Only the first repetition warms up: the clients stay open in between.
    """
    runs = []
    for repetition in range(plan.repetitions):
        warmup = plan.warmup if repetition == 0 else 0
        run = measure(warmup, time.monotonic() + plan.loop_seconds)
        if run.stopped_early:
            notes.append(
                f"{what}: a repetition reached its time limit and stopped early"
            )
        runs.append(run)
    return runs


def measure_ingest(dsn: str, plan: Plan, results: report.Results) -> None:
    """Workload 2, timing: the four clients ingest side by side, call by call.

    Each client stores the same messages into conversations of its own, so
    every repetition stores four times plan.ingest_conversations batches.
    """
    labels = [COPY, PSYCOPG, FACADE, SQLALCHEMY]
    count = plan.ingest_conversations
    with open_clients(dsn, labels) as clients:
        for repetition in range(plan.ingest_repetitions):
            progress(f"add_messages ingest, run {repetition + 1}")
            with database.connect(dsn) as conn:
                database.reset(conn)
                ids = database.create_conversations(conn, count * len(labels))
                database.checkpoint(conn)
            batches = {
                label: workloads.make_batches(
                    ids[index * count : (index + 1) * count],
                    plan.ingest_per_conversation,
                    seed=3,
                )
                for index, label in enumerate(labels)
            }
            run = workloads.ingests(
                clients, batches, time.monotonic() + plan.loop_seconds
            )
            with database.connect(dsn) as conn:
                _, stored = database.table_sizes(conn)
            expected = sum(
                len(run.seconds[label]) * plan.ingest_per_conversation
                for label in labels
            )
            if run.stopped_early or stored != expected:
                results.notes.append(
                    f"add_messages ingest: run {repetition + 1} stored {stored:,}"
                    f" messages, {count * plan.ingest_per_conversation:,} per client"
                    " expected"
                )
            for label in labels:
                results.ingest.setdefault(label, []).append(
                    {
                        "rows": len(run.seconds[label]) * plan.ingest_per_conversation,
                        "seconds": sum(run.seconds[label]),
                    }
                )


def measure_ingest_memory(dsn: str, plan: Plan, results: report.Results) -> None:
    """Workload 2, memory: each client ingests alone in a fresh process."""
    labels = [COPY, PSYCOPG, FACADE, SQLALCHEMY]
    for repetition in range(plan.memory_repetitions):
        for label in rotated(labels, repetition):
            progress(f"add_messages ingest in a fresh process, {label}")
            with database.connect(dsn) as conn:
                database.reset(conn)
                database.create_conversations(conn, plan.ingest_conversations)
            outcome = run_child(
                "ingest", label, dsn, plan.ingest_per_conversation, plan.loop_seconds
            )
            with database.connect(dsn) as conn:
                _, stored = database.table_sizes(conn)
            if stored != outcome["rows"] or outcome["stopped_early"]:
                results.notes.append(
                    f"add_messages ingest in a fresh process, {label}: stored"
                    f" {stored:,} messages"
                )
            results.ingest_memory.setdefault(label, []).append(outcome)


def measure_reads(
    dsns: dict[int, str],
    long_conversations: dict[int, UUID],
    plan: Plan,
    results: report.Results,
) -> None:
    """Workloads 3 and 4: every client on every data set, call by call.

    Each data set has a database of its own, so that calls to the small and
    the large one alternate and meet the same state of the machine.
    """
    labels = [PSYCOPG, FACADE, SQLALCHEMY]
    with ExitStack() as stack:
        clients: dict[str, Client] = {}
        targets: dict[str, tuple[Client, UUID]] = {}
        for total, dsn in dsns.items():
            for client in stack.enter_context(open_clients(dsn, labels)):
                key = series_key(client.label, total)
                clients[key] = client
                targets[key] = (client, long_conversations[total])
        progress("get_conversation, all data sets")
        runs = repeat(
            plan,
            lambda warmup, deadline: workloads.gets(
                targets, plan.get_calls, warmup, deadline
            ),
            "get_conversation",
            results.notes,
        )
        results.gets = split_series(summarize(runs))
        progress("list_conversations, all data sets")
        runs = repeat(
            plan,
            lambda warmup, deadline: workloads.lists(
                clients, LIST_LIMIT, plan.list_calls, warmup, deadline
            ),
            "list_conversations",
            results.notes,
        )
        results.lists = split_series(summarize(runs))
    results.plans = explain_reads(dsns, long_conversations)


def explain_reads(
    dsns: dict[int, str], long_conversations: dict[int, UUID]
) -> dict[str, dict[str, dict[str, Any]]]:
    """EXPLAIN the reads of workloads 3 and 4 on each data set.

    get_conversation's plan is that of its messages query: the conversation
    row is one primary key lookup on every data set.
    """
    progress("server plans of the reads, all data sets")
    explained: dict[str, dict[str, dict[str, Any]]] = {}
    for total, dsn in dsns.items():
        reads: dict[str, tuple[str, dict[str, Any]]] = {
            "get_conversation": (
                queries.list_messages.sql,
                {"conversation_id": long_conversations[total]},
            ),
            "list_conversations": (
                queries.list_conversations.sql,
                {"limit": LIST_LIMIT},
            ),
        }
        for name, (query, params) in reads.items():
            with database.connect(dsn) as conn:
                plan = plans.explain_prepared(conn, query, params)
            explained.setdefault(name, {})[str(total)] = asdict(plan)
    return explained


def series_key(label: str, total: int) -> str:
    """Name the series of client *label* on the data set of *total* messages."""
    return f"{label}|{total}"


def split_series(latencies: dict[str, Latency]) -> dict[str, dict[str, Latency]]:
    """Group series_key() results by data set, then by client label."""
    grouped: dict[str, dict[str, Latency]] = {}
    for key, latency in latencies.items():
        label, total = key.split("|")
        grouped.setdefault(total, {})[label] = latency
    return grouped


def measure_writes(
    dsn: str, plan: Plan, conversation_ids: Sequence[UUID], results: report.Results
) -> None:
    """Workloads 1 and 5: single add_message calls, then 8 threads per pool."""
    labels = [PSYCOPG, FACADE, SQLALCHEMY]
    with open_clients(dsn, labels) as clients:
        # The first insert on each pool connection stores a 100-message
        # transcript, as an application's imports do. With a trigger that
        # joined the transition table, such a first insert could leave a kept
        # plan that scanned all of conversations for every later insert.
        progress("add_messages, one transcript per pool connection")
        transcripts = conversation_ids[300 : 300 + POOL_SIZE]
        for client in clients:
            for conversation_id, pairs in workloads.make_batches(
                transcripts, TRANSCRIPT_MESSAGES, seed=4
            ):
                client.add_messages(conversation_id, pairs)
        progress("add_message, single calls")
        targets = conversation_ids[1:101]
        runs = repeat(
            plan,
            lambda warmup, deadline: workloads.single_adds(
                clients, targets, plan.add_calls, warmup, deadline
            ),
            "add_message",
            results.notes,
        )
        results.single_adds = summarize(runs)
        for index, client in enumerate(clients):
            # Untimed: opens SQLAlchemy's connections, which its pool opens
            # on demand, and lets every connection settle on its plan.
            progress(f"add_message, {THREADS} threads, {client.label}, warm-up")
            first = 200 + THREADS * index
            workloads.threaded_adds(
                client,
                conversation_ids[first : first + THREADS],
                WARMUP_ROUNDS // THREADS,
                time.monotonic() + plan.loop_seconds,
            )
        for repetition in range(plan.repetitions):
            for index, client in enumerate(rotated(clients, repetition)):
                progress(f"add_message, {THREADS} threads, {client.label}")
                first = 200 + THREADS * index
                run = workloads.threaded_adds(
                    client,
                    conversation_ids[first : first + THREADS],
                    plan.thread_calls,
                    time.monotonic() + plan.loop_seconds,
                )
                if run.stopped_early:
                    results.notes.append(
                        f"threads {client.label}: stopped early at its time limit"
                    )
                results.threads.setdefault(client.label, []).append(asdict(run))


def measure_memory(dsn: str, plan: Plan, results: report.Results) -> None:
    """Peak memory of workloads 1, 3, 4 and 5: one fresh process per client."""
    for label in [PSYCOPG, FACADE, SQLALCHEMY]:
        progress(f"memory of each workload, {label}")
        probe = run_child("probe", label, dsn, plan.probe_calls, plan.loop_seconds)
        for workload, outcome in probe.items():
            if outcome["stopped_early"]:
                results.notes.append(
                    f"memory of {workload}, {label}: stopped early at the time"
                    " limit the workloads share"
                )
        results.memory[label] = probe


def load_data_set(dsn: str, total: int) -> tuple[list[UUID], UUID]:
    """Load CONVERSATIONS conversations and *total* messages into *dsn*.

    Returns the conversation ids, newest first, and the long conversation's.
    """
    progress(f"loading {CONVERSATIONS:,} conversations, {total:,} messages")
    with database.connect(dsn) as conn:
        ids = database.create_conversations(conn, CONVERSATIONS)
        long_conversation = database.load_messages(conn, ids, total)
        database.checkpoint(conn)
    return ids, long_conversation


def run(admin_dsn: str, plan: Plan, settings: Mapping[str, str]) -> report.Results:
    """Measure the workloads in scratch databases on the server of *admin_dsn*.

    Bulk ingest runs in an empty database; each data set gets its own. The
    server *settings* apply to all of them.

    :raises database.SettingError: when the server rejects one of *settings*.
    """
    database.check_settings(admin_dsn, settings)
    results = report.Results(plan=plan.name, data_sets=list(plan.data_sets))
    with ExitStack() as stack:
        ingest_dsn = stack.enter_context(
            database.scratch_database(admin_dsn, "ingest", settings)
        )
        with database.connect(ingest_dsn) as conn:
            server_settings = {
                name: database.show(conn, name) for name in SERVER_SETTINGS
            }
            results.machine = report.machine(
                database.server_version(conn), server_settings
            )
        for name, value in settings.items():
            in_effect = server_settings.get(name, value)
            if not same_setting(in_effect, value):
                results.notes.append(
                    f"{name} is {in_effect} in the scratch databases, not the"
                    f" {value} requested: a setting of the role or of the"
                    " connection overrides the database's"
                )
        measure_ingest(ingest_dsn, plan, results)
        measure_ingest_memory(ingest_dsn, plan, results)

        dsns: dict[int, str] = {}
        ids: dict[int, list[UUID]] = {}
        long_conversations: dict[int, UUID] = {}
        for total in plan.data_sets:
            dsn = stack.enter_context(
                database.scratch_database(admin_dsn, f"{total}_messages", settings)
            )
            dsns[total] = dsn
            ids[total], long_conversations[total] = load_data_set(dsn, total)
        measure_reads(dsns, long_conversations, plan, results)

        largest = max(plan.data_sets)
        measure_writes(dsns[largest], plan, ids[largest], results)
        measure_memory(dsns[largest], plan, results)
    return results


def _exit_on_signal(signal_number: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signal_number)


def same_setting(in_effect: str, requested: str) -> bool:
    """Tell whether SHOW's *in_effect* value is the *requested* one ("4" is "4.0")."""
    try:
        return float(in_effect) == float(requested)
    except ValueError:
        return in_effect == requested


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller data sets and fewer calls: under a minute, ratios less steady",
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the raw results to PATH"
    )
    parser.add_argument(
        "--random-page-cost",
        type=float,
        metavar="COST",
        help="set the planner's random_page_cost in the scratch databases, such"
        " as 1.1 for SSDs (default: the server's setting)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    settings = {}
    if args.random_page_cost is not None:
        if not (math.isfinite(args.random_page_cost) and args.random_page_cost >= 0):
            parser.error(
                f"--random-page-cost: invalid value {args.random_page_cost};"
                " give a finite number of 0 or more (PostgreSQL's default is 4)"
            )
        settings["random_page_cost"] = str(args.random_page_cost)
    # SIGTERM ends the run as Ctrl-C does: through the finally blocks that
    # drop the scratch databases.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    started = time.monotonic()
    try:
        with database.admin_server() as admin_dsn:
            results = run(admin_dsn, plan, settings)
    except database.SettingError as exc:
        parser.error(str(exc))

    results.seconds = time.monotonic() - started
    print(report.render(results))
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(results), indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
