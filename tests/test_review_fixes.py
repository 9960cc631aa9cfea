"""Edge cases found by trying the library as a newcomer would."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from hwlab_sql import AsyncStore, QueryFileError, Store
from hwlab_sql._sql import QUERIES_DIR, load_queries
from hwlab_sql.migrations import run_migrations
from tests.helpers import count_rows


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"dsn": None}, r"dsn: expected a str, got NoneType"),
        ({"connect_timeout": 0}, r"connect_timeout: 0 is not a whole number"),
        ({"connect_timeout": -1}, r"connect_timeout: -1 is not a whole number"),
        ({"connect_timeout": 2.5}, r"connect_timeout: 2.5 is not a whole number"),
        ({"connect_timeout": 10**12}, r"connect_timeout: 1000000000000 is not"),
        ({"timeout": None}, r"timeout: None is not a number of seconds"),
        ({"timeout": 0}, r"timeout: 0 is not a number of seconds"),
    ],
)
def test_open_rejects_bad_options(options: dict[str, Any], error: str) -> None:
    arguments = {"dsn": "host=127.0.0.1 port=1", **options}
    dsn = arguments.pop("dsn")
    with pytest.raises(ValueError, match=error):
        Store.open(dsn, **arguments)

    async def open_async() -> None:
        async with AsyncStore.open(dsn, **arguments):
            pass

    with pytest.raises(ValueError, match=error):
        asyncio.run(open_async())


def test_store_needs_a_pool() -> None:
    with pytest.raises(TypeError, match=r"use Store.open\(dsn\)"):
        Store("postgresql://localhost/db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"use AsyncStore.open\(dsn\)"):
        AsyncStore("postgresql://localhost/db")  # type: ignore[arg-type]
    pool = ConnectionPool("host=127.0.0.1 port=1", open=False)
    with pytest.raises(TypeError, match="AsyncConnectionPool, got ConnectionPool"):
        AsyncStore(pool)  # type: ignore[arg-type]


def test_async_store_restores_row_factory(dsn: str) -> None:
    """A wrapped pool's connections keep the row factory the application set."""

    async def scenario() -> Any:
        async with AsyncConnectionPool(
            dsn, min_size=1, max_size=1, kwargs={"row_factory": dict_row}, open=False
        ) as pool:
            store = AsyncStore(pool)
            await store.create_conversation()
            async with pool.connection() as conn:
                cursor = await conn.execute("SELECT 1 AS one")
                return await cursor.fetchone()

    assert asyncio.run(scenario()) == {"one": 1}


def test_migrated_database_needs_no_create_right(
    dsn: str, db: psycopg.Connection[Any]
) -> None:
    """A role that may only read and write rows can still call run_migrations."""
    row = db.execute(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is None or not row[0]:
        pytest.skip("the test role may not create roles")
    role = f"hwlab_rw_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        db.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}, PUBLIC")
        db.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON conversations, messages,"
            f" hwlab_sql_migrations TO {role}"
        )
        with psycopg.connect(f"{dsn} user={role}") as conn:
            assert run_migrations(conn) == []
    finally:
        db.execute(f"DROP OWNED BY {role}")
        db.execute(f"DROP ROLE {role}")


def test_add_messages_needs_an_iterable(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = store.create_conversation()
    for value in (None, "user", 42):
        with pytest.raises(ValueError, match=r"messages: .* is not a list of"):
            store.add_messages(conversation_id, value)
    assert count_rows(db, "messages") == 0


def test_list_before_checks_summary_fields(store: Any) -> None:
    store.create_conversation()
    (summary,) = store.list_conversations()
    with pytest.raises(ValueError, match=r"before.id: None is not a UUID"):
        store.list_conversations(before=replace(summary, id=None))
    with pytest.raises(ValueError, match=r"before: started_at None is not"):
        store.list_conversations(before=replace(summary, started_at=None))


def test_get_conversation_reads_messages_first(
    sync_store: Store, db: psycopg.Connection[Any]
) -> None:
    """A conversation deleted mid-read is not returned with no messages."""
    conversation_id = sync_store.create_conversation()
    sync_store.add_message(conversation_id, "user", "hello")
    original = sync_store._run

    def run_then_delete(conn: Any, name: str, params: Any) -> Any:
        result = original(conn, name, params)
        if name == "list_messages":
            db.execute("DELETE FROM conversations WHERE id = %s", [conversation_id])
        return result

    sync_store._run = run_then_delete  # type: ignore[method-assign]
    with pytest.raises(Exception, match="not found"):
        sync_store.get_conversation(conversation_id)


def test_duplicate_query_names_rejected(tmp_path: Path) -> None:
    for path in QUERIES_DIR.glob("*.sql"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "zz_extra.sql").write_text(
        "-- name: ping()$\n-- Another ping.\nSELECT 2;\n"
    )
    with pytest.raises(QueryFileError, match=r"zz_extra.sql:1: query ping is already"):
        load_queries(tmp_path)
