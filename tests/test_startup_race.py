"""Eight processes start at once on an empty database and all migrate it.

Processes, not threads: each has its own interpreter, pool and connection, as
replicas of a service starting together do.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from hwlab_sql._sql import SCHEMA_DIR

PROCESSES = 8
SCRIPT_NAMES = [path.name for path in sorted(SCHEMA_DIR.glob("*.sql"))]


def migrate_in_process(dsn: str, start: Any, results: Any) -> None:
    """Open a store, wait for the others, run the migrations; report the outcome."""
    from hwlab_sql import Store

    try:
        with Store.open(dsn, min_size=1, max_size=1) as store:
            start.wait(timeout=60)
            results.put(("applied", store.run_migrations()))
    except BaseException as exc:  # reported to the parent process
        results.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.fixture
def empty_dsn(postgresql: psycopg.Connection[Any]) -> str:
    """The conninfo of a database with nothing of the schema in it."""
    postgresql.autocommit = True
    postgresql.execute(
        "DROP TABLE messages, conversations, hwlab_sql_migrations CASCADE;"
        " DROP FUNCTION messages_update_message_count()"
    )
    info = postgresql.info
    return make_conninfo(
        host=info.host,
        port=info.port,
        user=info.user,
        dbname=info.dbname,
        password=info.password or None,
    )


def test_processes_migrate_once(
    empty_dsn: str, postgresql: psycopg.Connection[Any]
) -> None:
    # spawn: a fork of pytest would copy its threads and open sockets.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=migrate_in_process, args=(empty_dsn, start, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert [p.exitcode for p in processes] == [0] * PROCESSES

    errors = [detail for kind, detail in outcomes if kind == "error"]
    assert errors == []
    applied = sorted((detail for _, detail in outcomes), key=len)
    assert applied == [[]] * (PROCESSES - 1) + [SCRIPT_NAMES]
    ledger = postgresql.execute(
        "SELECT name, count(*) FROM hwlab_sql_migrations GROUP BY name ORDER BY name"
    ).fetchall()
    assert ledger == [(name, 1) for name in SCRIPT_NAMES]
    tables = postgresql.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
        " AND tablename IN ('conversations', 'messages')"
    ).fetchone()
    assert tables == (2,)
