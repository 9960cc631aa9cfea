"""The schema runner: order, ledger, idempotency, adoption, edits and races."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hwlab_sql import MigrationError, QueryFileError
from hwlab_sql._sql import SCHEMA_DIR
from hwlab_sql.migrations import migration_status, run_migrations, schema_scripts

SCRIPT_NAMES = [path.name for path in sorted(SCHEMA_DIR.glob("*.sql"))]


@pytest.fixture
def empty_db(postgresql: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """A connection to a database with nothing of the schema in it."""
    postgresql.autocommit = True
    postgresql.execute(
        "DROP TABLE IF EXISTS messages, conversations, hwlab_sql_migrations CASCADE;"
        " DROP FUNCTION IF EXISTS messages_update_message_count()"
    )
    return postgresql


def _dsn_of(conn: psycopg.Connection[Any]) -> str:
    info = conn.info
    return psycopg.conninfo.make_conninfo(
        host=info.host, port=info.port, user=info.user, dbname=info.dbname
    )


def _psql_file(dsn: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run one SQL file with psql the way an operator would."""
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def _ledger(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT version, name, checksum FROM hwlab_sql_migrations ORDER BY version"
    ).fetchall()


def _tables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    ).fetchall()
    return {row[0] for row in rows}


def test_schema_scripts_in_order() -> None:
    scripts = schema_scripts()
    assert [s.filename for s in scripts] == SCRIPT_NAMES
    assert [s.version for s in scripts] == sorted(s.version for s in scripts)
    assert all(len(s.checksum) == 64 for s in scripts)


def test_run_migrations_applies_all_in_order(empty_db: psycopg.Connection[Any]) -> None:
    applied = run_migrations(empty_db)
    assert [s.filename for s in applied] == SCRIPT_NAMES
    assert [row[1] for row in _ledger(empty_db)] == SCRIPT_NAMES
    assert {"conversations", "messages", "hwlab_sql_migrations"} <= _tables(empty_db)


def test_run_migrations_twice_applies_nothing(
    empty_db: psycopg.Connection[Any],
) -> None:
    run_migrations(empty_db)
    ledger = _ledger(empty_db)
    assert run_migrations(empty_db) == []
    assert _ledger(empty_db) == ledger


def test_run_migrations_records_checksums(empty_db: psycopg.Connection[Any]) -> None:
    run_migrations(empty_db)
    on_disk = {s.filename: s.checksum for s in schema_scripts()}
    assert {row[1]: row[2] for row in _ledger(empty_db)} == on_disk


def test_each_script_runs_twice_by_runner(empty_db: psycopg.Connection[Any]) -> None:
    """Every script is idempotent when the runner's path executes it again."""
    for script in schema_scripts():
        for _ in range(2):
            with empty_db.transaction():
                empty_db.execute(script.sql.encode())
    assert {"conversations", "messages"} <= _tables(empty_db)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_each_script_runs_twice_by_psql(empty_db: psycopg.Connection[Any]) -> None:
    dsn = _dsn_of(empty_db)
    for name in SCRIPT_NAMES:
        for _ in range(2):
            result = _psql_file(dsn, SCHEMA_DIR / name)
            assert result.returncode == 0, result.stderr
    assert {"conversations", "messages"} <= _tables(empty_db)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_runner_adopts_psql_built_database(
    empty_db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    dsn = _dsn_of(empty_db)
    for name in SCRIPT_NAMES:
        result = _psql_file(dsn, SCHEMA_DIR / name)
        assert result.returncode == 0, result.stderr
    empty_db.execute("INSERT INTO conversations (model) VALUES ('kept')")
    with caplog.at_level(logging.INFO, logger="hwlab_sql.migrations"):
        applied = run_migrations(empty_db)
    assert [s.filename for s in applied] == SCRIPT_NAMES
    assert [row[1] for row in _ledger(empty_db)] == SCRIPT_NAMES
    rows = empty_db.execute("SELECT model FROM conversations").fetchall()
    assert rows == [("kept",)]
    assert "applied schema/001_conversations.sql" in caplog.text


def test_edited_script_stops_runner(
    empty_db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    run_migrations(empty_db, directory=schema)
    edited = schema / SCRIPT_NAMES[1]
    edited.write_text(edited.read_text() + "\n-- an edit after release\n")
    (schema / "099_later.sql").write_text(
        "CREATE TABLE IF NOT EXISTS later_table (id int);\n"
    )
    with pytest.raises(MigrationError) as caught:
        run_migrations(empty_db, directory=schema)
    message = str(caught.value)
    assert message.startswith(f"schema/{SCRIPT_NAMES[1]}: changed since it was applied")
    assert "add a new script instead" in message
    # The check runs first: the new script was not applied either.
    assert "later_table" not in _tables(empty_db)
    states = {s.filename: s.state for s in migration_status(empty_db, directory=schema)}
    assert states[SCRIPT_NAMES[1]] == "edited"
    assert states["099_later.sql"] == "pending"
    assert states[SCRIPT_NAMES[0]] == "applied"


def test_crlf_checkout_is_not_an_edit(
    empty_db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    run_migrations(empty_db, directory=schema)
    for path in schema.glob("*.sql"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert run_migrations(empty_db, directory=schema) == []


def test_new_script_applies_alone(
    empty_db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    run_migrations(empty_db, directory=schema)
    (schema / "900_extra.sql").write_text(
        "CREATE TABLE IF NOT EXISTS extra_table (id int);\n"
    )
    applied = run_migrations(empty_db, directory=schema)
    assert [s.filename for s in applied] == ["900_extra.sql"]
    assert "extra_table" in _tables(empty_db)


def test_failing_script_rolls_back_alone(
    empty_db: psycopg.Connection[Any], tmp_path: Path
) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    (schema / "900_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_column FROM conversations;\n"
    )
    with pytest.raises(psycopg.errors.UndefinedColumn):
        run_migrations(empty_db, directory=schema)
    # The scripts before it stay applied; the broken one left nothing behind.
    assert [row[1] for row in _ledger(empty_db)] == SCRIPT_NAMES
    assert "half_done" not in _tables(empty_db)
    lock_rows = empty_db.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    ).fetchone()
    assert lock_rows == (0,)


def test_missing_script_warns(
    empty_db: psycopg.Connection[Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    (schema / "900_extra.sql").write_text("SELECT 1;\n")
    run_migrations(empty_db, directory=schema)
    (schema / "900_extra.sql").unlink()
    with caplog.at_level(logging.WARNING, logger="hwlab_sql.migrations"):
        assert run_migrations(empty_db, directory=schema) == []
    assert (
        "schema/900_extra.sql is recorded as applied but missing on disk" in caplog.text
    )


@pytest.mark.parametrize("name", ["1_short.sql", "004-dash.sql", "004_Upper.sql"])
def test_badly_named_script(tmp_path: Path, name: str) -> None:
    (tmp_path / "001_ok.sql").write_text("SELECT 1;\n")
    (tmp_path / name).write_text("SELECT 1;\n")
    with pytest.raises(QueryFileError, match=f"schema/{name}: name must be"):
        schema_scripts(tmp_path)


def test_duplicate_script_number(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("SELECT 1;\n")
    (tmp_path / "001_b.sql").write_text("SELECT 1;\n")
    with pytest.raises(QueryFileError, match="number 001 is already taken"):
        schema_scripts(tmp_path)


def test_status_before_any_run(empty_db: psycopg.Connection[Any]) -> None:
    statuses = migration_status(empty_db)
    assert [s.state for s in statuses] == ["pending"] * len(SCRIPT_NAMES)
    assert "hwlab_sql_migrations" not in _tables(empty_db)


def test_concurrent_runners_apply_once(empty_db: psycopg.Connection[Any]) -> None:
    dsn = _dsn_of(empty_db)
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def migrate() -> None:
        try:
            with psycopg.connect(dsn) as conn:
                barrier.wait()
                results.append([s.filename for s in run_migrations(conn)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(results, key=len) == [[]] * 5 + [SCRIPT_NAMES]
    assert [row[1] for row in _ledger(empty_db)] == SCRIPT_NAMES


def test_runner_restores_autocommit(empty_db: psycopg.Connection[Any]) -> None:
    empty_db.autocommit = False
    empty_db.rollback()
    run_migrations(empty_db)
    assert empty_db.autocommit is False
