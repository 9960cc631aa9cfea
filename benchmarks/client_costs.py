"""Measure the client-side costs that docs/benchmarks.md quotes.

    python -m benchmarks.client_costs

- Building results: the best of 7 timeit runs of Message(*row) over 1,000
  rows and of ConversationSummary(*row) over 100 rows.
- Client CPU per add_message call: time.process_time() over 2,000 calls, 3
  times, for the facade and for raw psycopg, in a scratch database on the
  server that make bench uses. Wall time includes the round trip and the
  commit; CPU time is what the client process spent.
"""

from __future__ import annotations

import sys
import time
import timeit
from datetime import UTC, datetime
from uuid import uuid4

from hwlab_sql.models import ConversationSummary, Message, Role

from . import database
from .child import POOL_SIZE
from .clients import FACADE, PSYCOPG, open_client

CALLS = 2_000
ROUNDS = 3
WARMUP_CALLS = 200


def print_build_costs() -> None:
    """Print the time to build the facade's result objects from rows."""
    now = datetime.now(UTC)
    role: Role = "user"
    message_rows = [(uuid4(), uuid4(), role, "x" * 200, now) for _ in range(1000)]
    summary_rows = [(uuid4(), now, "model", 5) for _ in range(100)]
    for name, build, count in (
        ("Message", lambda: [Message(*row) for row in message_rows], 1000),
        (
            "ConversationSummary",
            lambda: [ConversationSummary(*row) for row in summary_rows],
            100,
        ),
    ):
        best = min(timeit.repeat(build, number=50, repeat=7)) / 50
        print(f"{count:,} x {name}(*row): {best * 1000:.3f} ms")


def print_call_costs(admin_dsn: str) -> None:
    """Print client CPU and wall time per add_message call, facade and psycopg."""
    with database.scratch_database(admin_dsn, "client_costs", {}) as dsn:
        with database.connect(dsn) as conn:
            conversation_id = database.create_conversations(conn, 1)[0]
        clients = [open_client(label, dsn, POOL_SIZE) for label in (PSYCOPG, FACADE)]
        try:
            for client in clients:
                for _ in range(WARMUP_CALLS):
                    client.add_message(conversation_id, "user", "warm-up")
            for round_number in range(1, ROUNDS + 1):
                for client in clients:
                    cpu, wall = time.process_time(), time.perf_counter()
                    for _ in range(CALLS):
                        client.add_message(conversation_id, "user", "hello there")
                    cpu = (time.process_time() - cpu) / CALLS
                    wall = (time.perf_counter() - wall) / CALLS
                    print(
                        f"round {round_number}, {client.label:8} add_message:"
                        f" {cpu * 1e6:6.1f} us CPU, {wall * 1e6:6.1f} us wall"
                    )
        finally:
            for client in clients:
                client.close()


def main() -> int:
    print_build_costs()
    with database.admin_server() as admin_dsn:
        print_call_costs(admin_dsn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
