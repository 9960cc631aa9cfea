"""Apply the ordered scripts of ``schema/`` and record them in a ledger.

Each script is idempotent, so a database built by running the same files with
psql is adopted: the runner re-runs them, which changes nothing, and records
them. The ledger is the table ``hwlab_sql_migrations``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import psycopg

from ._logging import migrations_logger as logger
from ._sql import SCHEMA_DIR, load_queries
from .errors import MigrationError, QueryFileError

queries: Any = load_queries()

_SCRIPT_NAME = re.compile(r"(?P<version>\d{3})_[a-z0-9_]+\.sql")

ScriptState = Literal["applied", "pending", "edited"]


@dataclass(frozen=True, slots=True)
class SchemaScript:
    """One file of ``schema/``, read from disk."""

    version: int
    filename: str
    sql: str
    checksum: str


@dataclass(frozen=True, slots=True)
class ScriptStatus:
    """The state of one schema script on disk compared with the ledger."""

    filename: str
    state: ScriptState
    applied_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Applied:
    version: int
    filename: str
    checksum: str
    applied_at: datetime


def schema_scripts(directory: Path = SCHEMA_DIR) -> list[SchemaScript]:
    """Read the schema scripts of *directory* in the order they apply.

    :raises QueryFileError: when a .sql file's name is not NNN_description.sql
        or two files share a number.
    """
    scripts: dict[int, SchemaScript] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _SCRIPT_NAME.fullmatch(path.name)
        if match is None:
            raise QueryFileError(
                f"schema/{path.name}: name must be NNN_description.sql, with three"
                " digits and lowercase letters, digits or underscores"
            )
        version = int(match["version"])
        if version in scripts:
            raise QueryFileError(
                f"schema/{path.name}: number {version:03d} is already taken by"
                f" schema/{scripts[version].filename}; renumber one of them"
            )
        # Checksums ignore line endings, so a checkout with CRLF is not "edited".
        sql = path.read_text(encoding="utf-8").replace("\r\n", "\n")
        checksum = hashlib.sha256(sql.encode("utf-8")).hexdigest()
        scripts[version] = SchemaScript(version, path.name, sql, checksum)
    if not scripts:
        raise QueryFileError(f"{directory}: no schema scripts found")
    return [scripts[version] for version in sorted(scripts)]


def run_migrations(
    conn: psycopg.Connection[Any], *, directory: Path = SCHEMA_DIR
) -> list[SchemaScript]:
    """Apply the scripts the ledger does not list, each in its own transaction.

    A session-level advisory lock makes concurrent runners wait for each
    other; the ones that wait find nothing left to do. Return the scripts
    applied by this call.

    :raises MigrationError: when an applied script was edited afterwards;
        nothing is applied then.
    """
    scripts = schema_scripts(directory)
    with _autocommit(conn), _migration_lock(conn):
        # Creating only when missing lets a role without CREATE on the schema
        # start an application whose database is already migrated.
        if not queries.ledger_exists(conn):
            queries.create_ledger(conn)
        applied = _read_ledger(conn)
        _check_unchanged(scripts, applied)
        pending = [script for script in scripts if script.version not in applied]
        for script in pending:
            with conn.transaction():
                # Bytes: a script is sent as is, several statements at once.
                conn.execute(script.sql.encode("utf-8"))
                queries.record_script(
                    conn,
                    version=script.version,
                    name=script.filename,
                    checksum=script.checksum,
                )
            logger.info("applied schema/%s", script.filename)
    return pending


def migration_status(
    conn: psycopg.Connection[Any], *, directory: Path = SCHEMA_DIR
) -> list[ScriptStatus]:
    """Compare every schema script on disk with the ledger, without changing it."""
    scripts = schema_scripts(directory)
    applied = _read_ledger(conn) if queries.ledger_exists(conn) else {}
    statuses = []
    for script in scripts:
        record = applied.get(script.version)
        if record is None:
            statuses.append(ScriptStatus(script.filename, "pending", None))
        elif _is_edited(script, record):
            statuses.append(ScriptStatus(script.filename, "edited", record.applied_at))
        else:
            statuses.append(ScriptStatus(script.filename, "applied", record.applied_at))
    return statuses


def _read_ledger(conn: psycopg.Connection[Any]) -> dict[int, _Applied]:
    return {row[0]: _Applied(*row) for row in queries.list_applied_scripts(conn)}


def _is_edited(script: SchemaScript, record: _Applied) -> bool:
    return record.checksum != script.checksum or record.filename != script.filename


def _check_unchanged(scripts: list[SchemaScript], applied: dict[int, _Applied]) -> None:
    for script in scripts:
        record = applied.get(script.version)
        if record is not None and _is_edited(script, record):
            raise MigrationError(
                f"schema/{script.filename}: changed since it was applied as"
                f" {record.filename} on {record.applied_at:%Y-%m-%d %H:%M %Z};"
                " restore it and add a new script instead"
            )
    on_disk = {script.version for script in scripts}
    for version, record in applied.items():
        if version not in on_disk:
            # A newer release may have applied it; this one can still run.
            logger.warning(
                "schema/%s is recorded as applied but missing on disk", record.filename
            )


@contextmanager
def _autocommit(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Let conn.transaction() open top-level transactions, then restore."""
    previous = conn.autocommit
    conn.autocommit = True
    try:
        yield
    finally:
        if not conn.closed:
            conn.autocommit = previous


@contextmanager
def _migration_lock(conn: psycopg.Connection[Any]) -> Iterator[None]:
    queries.lock_migrations(conn)
    try:
        yield
    finally:
        # A broken connection has lost the lock with its session already.
        if not conn.closed:
            queries.unlock_migrations(conn)
