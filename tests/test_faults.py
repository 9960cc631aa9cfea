"""Connections that break, servers that restart or go down, and failed writes.

Sessions are ended with pg_terminate_backend, and a throwaway server of this
module's own is restarted and stopped. Every test runs against Store and
AsyncStore alike.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from hwlab_sql import AsyncStore, ConnectionFailedError, Store
from hwlab_sql.migrations import run_migrations
from tests.backends import (
    Background,
    backend_waiting,
    pool_backends,
    table_locked,
    terminate,
    threads_named,
    wait_for,
)
from tests.helpers import AsyncAsSync, count_rows
from tools.pgserver import ThrowawayServer

POOL_SIZE = 4


def _open(kind: str, dsn: str, runner: asyncio.Runner, **options: Any) -> Any:
    """Open a Store, or an AsyncStore driven through blocking calls."""
    if kind == "sync":
        return Store.open(dsn, **options)

    async def open_async() -> AsyncStore:
        return await AsyncStore.open(dsn, **options)

    return AsyncAsSync(runner.run(open_async()), runner)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which facade a test drives: "sync" for Store, "async" for AsyncStore."""
    return str(request.param)


@pytest.fixture
def full_store(kind: str, dsn: str, async_runner: asyncio.Runner) -> Iterator[Any]:
    """A store whose pool has POOL_SIZE connections from the start."""
    store = _open(
        kind, dsn, async_runner, min_size=POOL_SIZE, max_size=POOL_SIZE, timeout=10
    )
    try:
        yield store
    finally:
        store.close()


def _records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("hwlab_sql") and r.levelno == level
    ]


# Connections ended while idle in the pool


def test_terminated_pool_replaced_on_write(
    full_store: Any, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    conversation_id = full_store.create_conversation()
    before = wait_for(
        lambda: pool_backends(db) if len(pool_backends(db)) == POOL_SIZE else None,
        "the pool to open all its connections",
    )
    terminate(db, before)

    with caplog.at_level(logging.WARNING, logger="hwlab_sql"):
        full_store.add_message(conversation_id, "user", "after the kill")

    messages = full_store.get_conversation(conversation_id).messages
    assert [m.content for m in messages] == ["after the kill"]
    assert count_rows(db, "messages") == 1
    warnings = _records(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert f"replaced {POOL_SIZE} connection(s)" in warnings[0]
    assert set(pool_backends(db)).isdisjoint(before)


def test_terminated_pool_replaced_on_read(
    full_store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = full_store.create_conversation(model="m")
    terminate(db, pool_backends(db))
    assert full_store.get_conversation(conversation_id).model == "m"
    assert [s.id for s in full_store.list_conversations()] == [conversation_id]


def test_terminated_pool_replaced_in_transaction(
    full_store: Any, db: psycopg.Connection[Any]
) -> None:
    terminate(db, pool_backends(db))
    with full_store.transaction() as tx:
        conversation_id = tx.create_conversation()
        tx.add_message(conversation_id, "user", "in a transaction")
    assert count_rows(db, "messages") == 1


# AsyncStore migrates on a connection of its own, outside the pool.
@pytest.mark.parametrize("kind", ["sync"], indirect=True)
def test_terminated_pool_replaced_on_migrate(
    full_store: Any, db: psycopg.Connection[Any]
) -> None:
    terminate(db, pool_backends(db))
    assert full_store.run_migrations() == []


# Connections ended while a query runs on them


def test_read_retried_after_mid_query_loss(
    full_store: Any,
    dsn: str,
    db: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation_id = full_store.create_conversation()
    full_store.add_message(conversation_id, "user", "kept")
    with caplog.at_level(logging.WARNING, logger="hwlab_sql"):
        with table_locked(dsn, "messages"):
            reader = Background(lambda: full_store.get_conversation(conversation_id))
            first = wait_for(
                lambda: backend_waiting(db, "Lock"), "the read to wait on the lock"
            )
            terminate(db, [first])
            # The retry runs on another connection and waits on the lock again.
            wait_for(lambda: backend_waiting(db, "Lock"), "the retried read to wait")
        conversation = reader.join()

    assert [m.content for m in conversation.messages] == ["kept"]
    warnings = _records(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert "get_conversation lost its connection (AdminShutdown, 57P01)" in warnings[0]


def test_read_lost_twice_raises(
    full_store: Any, dsn: str, db: psycopg.Connection[Any]
) -> None:
    with table_locked(dsn, "conversations"):
        reader = Background(lambda: full_store.list_conversations())
        for attempt in ("first", "retried"):
            pid = wait_for(
                lambda: backend_waiting(db, "Lock"), f"the {attempt} read to wait"
            )
            terminate(db, [pid])
        with pytest.raises(psycopg.errors.AdminShutdown):
            reader.join()
    assert full_store.list_conversations() == []


# A trigger that sleeps on the message "third", so that a test can end the
# session half way through add_messages. It rejects the message "poison".
SLOW_THIRD_MESSAGE = """
CREATE FUNCTION test_wait_on_third() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.content = 'third' THEN
        PERFORM pg_sleep(60);
    END IF;
    IF NEW.content = 'poison' THEN
        RAISE EXCEPTION 'poison message rejected by a test trigger';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_wait_on_third BEFORE INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION test_wait_on_third();
"""

BATCH = [("user", "first"), ("assistant", "second"), ("user", "third"), ("user", "4")]


def test_add_messages_lost_mid_batch_stores_none(
    full_store: Any, db: psycopg.Connection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    conversation_id = full_store.create_conversation()
    db.execute(SLOW_THIRD_MESSAGE)
    with caplog.at_level(logging.WARNING, logger="hwlab_sql"):
        writer = Background(lambda: full_store.add_messages(conversation_id, BATCH))
        pid = wait_for(
            lambda: backend_waiting(db, "Timeout", "PgSleep"),
            "the insert to reach the third message",
        )
        terminate(db, [pid])
        with pytest.raises(psycopg.errors.AdminShutdown):
            writer.join()

    assert count_rows(db, "messages") == 0
    (summary,) = full_store.list_conversations()
    assert summary.message_count == 0
    # A write is never run twice, because the server may have committed the first.
    assert _records(caplog, logging.WARNING) == []


def test_add_messages_rejected_mid_batch_stores_none(
    full_store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = full_store.create_conversation()
    db.execute(SLOW_THIRD_MESSAGE)
    batch = [("user", "first"), ("assistant", "second"), ("user", "poison")]
    with pytest.raises(psycopg.errors.RaiseException, match="poison message"):
        full_store.add_messages(conversation_id, batch)
    assert count_rows(db, "messages") == 0
    assert full_store.get_conversation(conversation_id).messages == ()


def test_transaction_lost_mid_way_stores_none(
    full_store: Any, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(psycopg.OperationalError), full_store.transaction() as tx:
        conversation_id = tx.create_conversation()
        tx.add_messages(conversation_id, [("user", "a"), ("assistant", "b")])
        pid = wait_for(lambda: _session_in_transaction(db), "the transaction's session")
        terminate(db, [pid])
        tx.add_message(conversation_id, "user", "never stored")
    assert count_rows(db, "conversations") == 0
    assert count_rows(db, "messages") == 0
    assert full_store.list_conversations() == []


def _session_in_transaction(db: psycopg.Connection[Any]) -> int | None:
    row = db.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'idle in transaction'"
    ).fetchone()
    return None if row is None else int(row[0])


# A server of this module's own, restarted and stopped by the tests


@pytest.fixture(scope="module")
def own_server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer() as server:
        with psycopg.connect(server.create_database("faults")) as conn:
            run_migrations(conn)
        yield server


@pytest.fixture
def server(own_server: ThrowawayServer) -> ThrowawayServer:
    """The module's server, running, whatever the previous test left."""
    if not own_server.running:
        own_server.start()
    return own_server


def _faults_dsn(server: ThrowawayServer) -> str:
    return f"host=127.0.0.1 port={server.port} user=postgres dbname=faults"


@pytest.mark.slow
def test_store_recovers_after_restart(
    kind: str, server: ThrowawayServer, async_runner: asyncio.Runner
) -> None:
    store = _open(kind, _faults_dsn(server), async_runner, min_size=2, max_size=2)
    try:
        conversation_id = store.create_conversation()
        store.add_message(conversation_id, "user", "before the restart")
        server.restart()
        store.add_message(conversation_id, "assistant", "after the restart")
        contents = [m.content for m in store.get_conversation(conversation_id).messages]
    finally:
        store.close()
    assert contents == ["before the restart", "after the restart"]


@pytest.mark.slow
def test_call_while_down_fails_in_time(
    kind: str, server: ThrowawayServer, async_runner: asyncio.Runner
) -> None:
    store = _open(
        kind,
        _faults_dsn(server),
        async_runner,
        min_size=2,
        max_size=2,
        timeout=2.0,
        connect_timeout=2,
    )
    pool_name = store.pool.name
    try:
        conversation_id: UUID = store.create_conversation()
        server.stop()
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError) as caught:
            store.add_message(conversation_id, "user", "lost")
        elapsed = time.monotonic() - started

        server.start()
        # The pool reconnects on its own; the next calls succeed.
        store.add_message(conversation_id, "user", "after the outage")
        contents = [m.content for m in store.get_conversation(conversation_id).messages]
    finally:
        store.close()

    # timeout (2 s) for the pool, then one refused connection attempt.
    assert elapsed < 4.0
    message = str(caught.value)
    assert f"cannot connect to 127.0.0.1:{server.port}/faults" in message
    assert "no pooled connection within 2 s" in message
    assert "Connection refused" in message
    assert contents == ["after the outage"]
    assert threads_named(pool_name) == []
    assert async_runner.run(_tasks_named(pool_name)) == []


async def _tasks_named(prefix: str) -> list[str]:
    """Return the names of the event loop's tasks that start with *prefix*."""
    return [
        t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith(prefix)
    ]


@pytest.mark.slow
def test_store_recovers_after_long_outage(
    kind: str, server: ThrowawayServer, async_runner: asyncio.Runner
) -> None:
    """Calls fail during an outage of 8 s; the first call after it succeeds.

    With psycopg_pool's default reconnect_timeout of 300 s, the pool's attempts
    come 1, 3, 7 and 15 s after the outage began, so the call would time out.
    """
    store = _open(
        kind,
        _faults_dsn(server),
        async_runner,
        min_size=2,
        max_size=2,
        timeout=2.0,
        connect_timeout=2,
    )
    try:
        conversation_id = store.create_conversation()
        server.stop()
        outage_end = time.monotonic() + 8.0
        failed_calls = 0
        while time.monotonic() < outage_end:
            with pytest.raises(ConnectionFailedError):
                store.list_conversations()
            failed_calls += 1
        server.start()
        started = time.monotonic()
        conversation = store.get_conversation(conversation_id)
        recovery = time.monotonic() - started
    finally:
        store.close()
    assert conversation.id == conversation_id
    assert failed_calls >= 3
    assert recovery < 2.0


@pytest.mark.slow
def test_migrate_while_down_fails_clearly(
    kind: str, server: ThrowawayServer, async_runner: asyncio.Runner
) -> None:
    store = _open(
        kind, _faults_dsn(server), async_runner, timeout=2.0, connect_timeout=2
    )
    try:
        server.stop()
        with pytest.raises(ConnectionFailedError) as caught:
            store.run_migrations()
    finally:
        store.close()
    assert f"cannot connect to 127.0.0.1:{server.port}/faults" in str(caught.value)
    assert "Connection refused" in str(caught.value)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never sends a byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_open_silent_server_times_out(
    kind: str, silent_port: int, async_runner: asyncio.Runner
) -> None:
    dsn = f"host=127.0.0.1 port={silent_port} user=postgres dbname=faults"
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught:
        _open(kind, dsn, async_runner, connect_timeout=2)
    elapsed = time.monotonic() - started
    assert elapsed < 5.0
    message = str(caught.value)
    assert f"cannot connect to 127.0.0.1:{silent_port}/faults" in message
    assert "timeout expired" in message
    assert threads_named(f"hwlab_sql 127.0.0.1:{silent_port}") == []


@pytest.mark.slow
def test_open_pool_that_cannot_connect(
    kind: str, server: ThrowawayServer, async_runner: asyncio.Runner
) -> None:
    """The server accepts the first connection, but the pool's settings are invalid."""
    dsn = _faults_dsn(server)
    bad_setting = {"options": "-c work_mem=not-a-size"}
    started = time.monotonic()
    with pytest.raises(ConnectionFailedError) as caught:
        _open(kind, dsn, async_runner, connect_timeout=2, kwargs=bad_setting)
    assert time.monotonic() - started < 6.0
    message = str(caught.value)
    assert f"127.0.0.1:{server.port}/faults" in message
    assert "invalid value for parameter" in message
    assert threads_named("hwlab_sql ") == []
