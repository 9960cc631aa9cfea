"""The SQL files as a DBA uses them: psql builds the same schema, sqlfluff passes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from hwlab_sql._sql import SCHEMA_DIR
from hwlab_sql.migrations import run_migrations

ROOT = Path(__file__).resolve().parent.parent
LEDGER = "hwlab_sql_migrations"


@pytest.fixture
def two_databases(db: psycopg.Connection[Any], dsn: str) -> Iterator[list[str]]:
    """The conninfos of two new, empty databases on the test server."""
    suffix = uuid4().hex[:12]
    names = [f"hwlab_sql_psql_{suffix}", f"hwlab_sql_runner_{suffix}"]
    for name in names:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield [make_conninfo(dsn, dbname=name) for name in names]
    finally:
        for name in names:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )


def schema_dump(conninfo: str) -> str:
    """Return pg_dump's schema of a database, without the ledger table."""
    result = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            f"--exclude-table={LEDGER}",
            "--dbname",
            conninfo,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # pg_dump 15.14 and later releases wrap the dump in \restrict and
    # \unrestrict lines with a random key, which differs between two dumps.
    lines = [
        line
        for line in result.stdout.splitlines()
        if not line.startswith(("\\restrict ", "\\unrestrict "))
    ]
    return "\n".join(lines)


@pytest.mark.skipif(
    shutil.which("psql") is None or shutil.which("pg_dump") is None,
    reason="psql and pg_dump are not installed",
)
def test_psql_and_runner_build_same_schema(two_databases: list[str]) -> None:
    by_psql, by_runner = two_databases
    scripts = sorted(SCHEMA_DIR.glob("*.sql"))
    # Twice, as a DBA may: every script must be safe to re-run.
    for _ in range(2):
        for script in scripts:
            subprocess.run(
                [
                    "psql",
                    "--no-psqlrc",
                    "--quiet",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "--dbname",
                    by_psql,
                    "--file",
                    str(script),
                ],
                capture_output=True,
                check=True,
                timeout=60,
            )
    with psycopg.connect(by_runner) as conn:
        run_migrations(conn)

    psql_dump = schema_dump(by_psql)
    runner_dump = schema_dump(by_runner)
    assert "CREATE TABLE public.conversations" in psql_dump
    assert "CREATE TRIGGER messages_count_insert_trg" in psql_dump
    assert LEDGER not in runner_dump
    assert psql_dump == runner_dump


def sqlfluff_lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "--format", "json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def rule_codes(result: subprocess.CompletedProcess[str]) -> set[str]:
    return {
        violation["code"]
        for report in json.loads(result.stdout)
        for violation in report["violations"]
    }


def test_sql_files_pass_sqlfluff() -> None:
    pytest.importorskip("sqlfluff")
    result = sqlfluff_lint("queries", "schema")
    assert rule_codes(result) == set()
    assert result.returncode == 0, result.stdout


def test_sqlfluff_config_enforces_house_style(tmp_path: Path) -> None:
    pytest.importorskip("sqlfluff")
    bad = tmp_path / "bad.sql"
    bad.write_text(
        "-- name: everything(limit)\n"
        "-- Lowercase keywords, a wildcard and no final semicolon.\n"
        "select * from Conversations limit :limit\n"
    )
    result = sqlfluff_lint("--config", str(ROOT / ".sqlfluff"), str(bad))
    assert result.returncode == 1
    codes = rule_codes(result)
    assert "CP01" in codes  # keywords in upper case
    assert "CP02" in codes  # identifiers in lower case
    assert "AM04" in codes  # explicit columns
    assert "CV06" in codes  # final semicolon
    assert "PRS" not in codes  # :limit is templated into something that parses
