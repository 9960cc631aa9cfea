"""The benchmark's own database helpers, on a real server.

The timed workloads are not run here: they take minutes and their numbers
depend on the machine. What is tested is what the report builds on: the
scratch databases with their settings, and the EXPLAIN of the reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from benchmarks import database, plans, run
from hwlab_sql import queries

REPOSITORY = Path(__file__).resolve().parent.parent


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
    return ids[0]


def _prepared_plans(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    row = conn.execute(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_explain_prepared_messages_query(dsn: str, db: psycopg.Connection[Any]) -> None:
    conversation_id = _load(db)
    with database.connect(dsn) as conn:
        plan = plans.explain_prepared(
            conn, queries.list_messages.sql, {"conversation_id": conversation_id}
        )
        generic, custom = _prepared_plans(conn)
    assert plan.rows == 1_000
    # Half of a small table: the planner may read the table or an index.
    assert plan.nodes.split(" > ")[-1].endswith("Scan")
    assert plan.buffers > 0
    assert plan.planning_ms >= 0
    assert plan.execution_ms > 0
    # The 6 executions before EXPLAIN settle the plan. The 15 runs of
    # EXPLAIN ANALYZE all use it, and the kind names it.
    assert plan.kind == ("generic" if generic >= plans.EXPLAIN_RUNS else "custom")
    assert generic + custom == plans.CUSTOM_PLAN_EXECUTIONS + 1 + plans.EXPLAIN_RUNS


def test_explain_prepared_list_query(dsn: str, db: psycopg.Connection[Any]) -> None:
    _load(db)
    with database.connect(dsn) as conn:
        plan = plans.explain_prepared(
            conn, queries.list_conversations.sql, {"limit": 2}
        )
    assert plan.nodes.startswith("Limit > ")
    assert plan.rows == 2
    assert plan.buffers > 0


def test_explain_prepared_orders_params_as_query(
    dsn: str, db: psycopg.Connection[Any]
) -> None:
    _load(db)
    query = (
        "SELECT id FROM messages WHERE seq BETWEEN %(low)s AND %(high)s"
        " AND seq <> %(low)s"
    )
    with database.connect(dsn) as conn:
        plan = plans.explain_prepared(conn, query, {"high": 500, "low": 101})
    # Bound in the dict's order, the range would be 500 to 101: no rows.
    assert plan.rows == 399


def test_explain_prepared_query_without_params(
    dsn: str, db: psycopg.Connection[Any]
) -> None:
    _load(db)
    with database.connect(dsn) as conn:
        plan = plans.explain_prepared(conn, "SELECT count(*) FROM messages", {})
    assert plan.nodes.startswith("Aggregate")
    assert plan.rows == 1


def test_explain_prepared_rejects_wrong_params(dsn: str) -> None:
    with (
        database.connect(dsn) as conn,
        pytest.raises(ValueError, match=r"names \['limit'\].*got \['limt'\]"),
    ):
        plans.explain_prepared(conn, queries.list_conversations.sql, {"limt": 2})


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


def test_placeholder_names_first_appearance() -> None:
    query = "SELECT %(b)s, %(a)s, %(b)s, '%%(c)s'"
    assert plans.placeholder_names(query) == ["b", "a"]


@pytest.mark.parametrize("cost", ["-1", "nan", "inf"])
def test_invalid_random_page_cost_rejected(
    cost: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_nothing(*args: object) -> None:
        raise AssertionError("the run started despite an invalid option")

    monkeypatch.setattr(run, "run", run_nothing)
    with pytest.raises(SystemExit) as exited:
        run.main(["--quick", "--random-page-cost", cost])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"--random-page-cost: invalid value {float(cost)};" in error
    assert "finite number of 0 or more" in error


@pytest.mark.parametrize("value", ["1e-320", "fast"])
def test_check_settings_rejects_server_invalid(dsn: str, value: str) -> None:
    with pytest.raises(database.SettingError, match=f"rejected '{value}': invalid"):
        database.check_settings(dsn, {"random_page_cost": value})


def test_check_settings_accepts_valid(dsn: str) -> None:
    database.check_settings(dsn, {"random_page_cost": "1.1", "work_mem": "8MB"})


@pytest.mark.parametrize(
    ("in_effect", "requested", "same"),
    [
        ("4", "4.0", True),
        ("1.1", "1.1", True),
        ("4", "1.1", False),
        ("8MB", "8MB", True),
        ("8MB", "16MB", False),
    ],
)
def test_same_setting(in_effect: str, requested: str, same: bool) -> None:
    assert run.same_setting(in_effect, requested) is same


def _scratch_databases(db: psycopg.Connection[Any], pid: int) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_database WHERE datname LIKE %s",
        [f"hwlab_sql_bench_{pid}_%"],
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.slow
def test_sigterm_drops_scratch_databases(dsn: str, db: psycopg.Connection[Any]) -> None:
    db.autocommit = True
    bench = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.run", "--quick"],
        cwd=REPOSITORY,
        env={**os.environ, "DATABASE_URL": dsn},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert bench.stderr is not None
        # Progress lines go to stderr. "loading" is printed once the ingest
        # database exists, while the first data set's database fills.
        for line in bench.stderr:
            if "loading" in line:
                break
        assert _scratch_databases(db, bench.pid) >= 1
        bench.send_signal(signal.SIGTERM)
        bench.communicate(timeout=60)
    finally:
        bench.kill()
        bench.wait()
    assert bench.returncode == 128 + signal.SIGTERM
    assert _scratch_databases(db, bench.pid) == 0
