"""The owner of a database needs no other right to migrate and use the schema.

Each test creates a role that is no superuser and may not create databases or
roles, gives it a new database, and works as that role. The whole suite also
runs as an ordinary role in CI, through tools/least_privilege.py. Under that
role these tests skip, because it may not create roles.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from hwlab_sql import AsyncStore, Store
from hwlab_sql._sql import SCHEMA_DIR

SCRIPT_NAMES = [path.name for path in sorted(SCHEMA_DIR.glob("*.sql"))]
ORDINARY = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


@pytest.fixture
def owner_dsn(db: psycopg.Connection[Any]) -> Iterator[str]:
    """The conninfo of a new, empty database, as the ordinary role that owns it."""
    row = db.execute(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is None or not row[0]:
        pytest.skip("the test role may not create roles")
    name = f"hwlab_sql_owner_{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    role = sql.Identifier(name)
    db.execute(
        sql.SQL("CREATE ROLE {} " + ORDINARY + " PASSWORD {}").format(
            role, sql.Literal(password)
        )
    )
    try:
        db.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(role, role))
        try:
            info = db.info
            yield make_conninfo(
                host=info.host,
                port=info.port,
                user=name,
                password=password,
                dbname=name,
            )
        finally:
            db.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(role))
    finally:
        db.execute(sql.SQL("DROP ROLE {}").format(role))


def _rights(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT r.rolsuper, r.rolcreatedb, r.rolcreaterole,"
        " d.datdba = r.oid AS owns_database"
        " FROM pg_roles AS r, pg_database AS d"
        " WHERE r.rolname = current_user AND d.datname = current_database()"
    ).fetchone()
    assert row is not None
    return tuple(row)


def _extensions(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT extname FROM pg_extension ORDER BY extname").fetchall()
    return [row[0] for row in rows]


def test_owner_migrates_and_uses_store(owner_dsn: str) -> None:
    with psycopg.connect(owner_dsn) as conn:
        assert _rights(conn) == (False, False, False, True)
    with Store.open(owner_dsn, min_size=1) as store:
        assert store.run_migrations() == SCRIPT_NAMES
        assert store.run_migrations() == []
        conversation_id = store.create_conversation(model="m")
        store.add_messages(conversation_id, [("user", "a"), ("assistant", "b")])
        with store.transaction() as tx:
            tx.add_message(conversation_id, "user", "c")
        (summary,) = store.list_conversations()
        assert summary.message_count == 3
        store.delete_conversation(conversation_id)
    with psycopg.connect(owner_dsn) as conn:
        assert _extensions(conn) == ["plpgsql"]


def test_owner_migrates_with_async_store(owner_dsn: str) -> None:
    async def use() -> list[str]:
        async with AsyncStore.open(owner_dsn, min_size=1) as store:
            applied = await store.run_migrations()
            conversation_id = await store.create_conversation()
            await store.add_message(conversation_id, "user", "hi")
            assert len((await store.get_conversation(conversation_id)).messages) == 1
            return applied

    assert asyncio.run(use()) == SCRIPT_NAMES


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is not installed")
def test_owner_applies_scripts_with_psql(owner_dsn: str) -> None:
    psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", owner_dsn]
    for name in SCRIPT_NAMES:
        result = subprocess.run(
            [*psql, "-f", str(SCHEMA_DIR / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    with Store.open(owner_dsn, min_size=1) as store:
        # The runner adopts what psql built and records it.
        assert store.run_migrations() == SCRIPT_NAMES
        assert store.list_conversations() == []
