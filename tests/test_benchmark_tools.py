"""The benchmark's own database helpers, on a real server.

The timed workloads are not run here: they take minutes and their numbers
depend on the machine. What is tested is what the report builds on: the
scratch databases with their settings, and the EXPLAIN of the reads.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest

from benchmarks import database, plans, run
from hwlab_sql import queries


def test_scratch_database_settings_then_drop(dsn: str) -> None:
    with (
        database.scratch_database(
            dsn, "settings_check", {"random_page_cost": "1.1"}
        ) as scratch,
        psycopg.connect(scratch) as conn,
    ):
        assert database.server_version(conn).startswith(
            str(conn.info.server_version // 10000)
        )
        assert database.show(conn, "random_page_cost") == "1.1"
        assert database.table_sizes(conn) == (0, 0)
        dbname = conn.info.dbname
    with psycopg.connect(dsn) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = %s", [dbname]
        ).fetchone()
    assert left == (0,)


def _load(db: psycopg.Connection[Any]) -> UUID:
    """Store 3 conversations and 2,000 messages, half in the first; return its id."""
    ids = database.create_conversations(db, 3)
    database.load_messages(db, ids, 2_000)
    db.commit()
    return ids[0]


def test_explain_prepared_messages_query(dsn: str, db: psycopg.Connection[Any]) -> None:
    conversation_id = _load(db)
    with database.connect(dsn) as conn:
        plan = plans.explain_prepared(
            conn, queries.list_messages.sql, {"conversation_id": conversation_id}
        )
    # Half of a small table: the planner may read the table or an index.
    assert "Scan" in plan.nodes.split(" > ")[-1]
    assert plan.buffers > 0
    assert plan.milliseconds > 0


def test_explain_prepared_names_nodes_to_scan(
    dsn: str, db: psycopg.Connection[Any]
) -> None:
    _load(db)
    with database.connect(dsn) as conn:
        plan = plans.explain_prepared(
            conn, queries.list_conversations.sql, {"limit": 2}
        )
    assert plan.nodes.startswith("Limit > ")
    assert plan.buffers > 0


def test_explain_prepared_rejects_used_connection(
    dsn: str, db: psycopg.Connection[Any]
) -> None:
    conversation_id = _load(db)
    with database.connect(dsn) as conn:
        conn.execute("PREPARE unrelated AS SELECT 1")
        with pytest.raises(ValueError, match="found 2; pass a connection"):
            plans.explain_prepared(
                conn, queries.list_messages.sql, {"conversation_id": conversation_id}
            )


@pytest.mark.parametrize("cost", ["-1", "nan", "inf"])
def test_invalid_random_page_cost_rejected(
    cost: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run.main(["--quick", "--random-page-cost", cost])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"--random-page-cost: invalid value {float(cost)};" in error
    assert "finite number of 0 or more" in error
