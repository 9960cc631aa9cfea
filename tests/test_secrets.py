"""No error, repr or log record carries the password, whatever fails and when.

Log records are captured at DEBUG from every logger, psycopg's pool included,
because the pool logs its name and the errors of its connection attempts.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hwlab_sql import AsyncStore, ConnectionFailedError, Store
from hwlab_sql.migrations import run_migrations
from tests.helpers import AsyncAsSync
from tools.pgserver import ThrowawayServer, find_free_port

# Every test runs on a server of this module's own.
pytestmark = pytest.mark.slow

PASSWORD = "s3cret-Pa55word-of-faults"
ROTATED_PASSWORD = "r0tated-Pa55word-of-faults"
SECRETS = (PASSWORD, ROTATED_PASSWORD)


@pytest.fixture(scope="module")
def password_server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer(password=PASSWORD) as server:
        with psycopg.connect(server.create_database("secrets")) as conn:
            run_migrations(conn)
        yield server


@pytest.fixture
def server(password_server: ThrowawayServer) -> Iterator[ThrowawayServer]:
    """The module's server, running, with the password it started with."""
    if not password_server.running:
        password_server.start()
    yield password_server
    if not password_server.running:
        password_server.start()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _uri(port: int, password: str = PASSWORD) -> str:
    return f"postgresql://postgres:{password}@127.0.0.1:{port}/secrets"


def _open(kind: str, dsn: str, runner: asyncio.Runner, **options: Any) -> Any:
    if kind == "sync":
        return Store.open(dsn, **options)

    async def open_async() -> AsyncStore:
        return await AsyncStore.open(dsn, **options)

    return AsyncAsSync(runner.run(open_async()), runner)


def _error_texts(exc: BaseException) -> list[str]:
    """Return the traceback, str and repr of *exc* and of every exception it chains."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current)]
        pending += [current.__cause__, current.__context__]
    return texts


def _log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    texts = [caplog.text]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    return texts


def _assert_secret_free(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_calls_while_down_hide_password(
    kind: str,
    server: ThrowawayServer,
    async_runner: asyncio.Runner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    store = _open(kind, _uri(server.port), async_runner, timeout=2, connect_timeout=2)
    texts = [repr(store), repr(store.pool), store.pool.name]
    try:
        conversation_id = store.create_conversation()
        server.stop()
        with pytest.raises(ConnectionFailedError) as write_error:
            store.add_message(conversation_id, "user", "lost")
        with pytest.raises(ConnectionFailedError) as read_error:
            store.get_conversation(conversation_id)
    finally:
        store.close()

    assert "Connection refused" in str(write_error.value)
    assert "Connection refused" in str(read_error.value)
    query_logs = [r for r in caplog.records if r.name == "hwlab_sql"]
    assert any(r.levelno == logging.DEBUG for r in query_logs)
    assert any(r.name == "psycopg.pool" for r in caplog.records)
    _assert_secret_free(texts)
    _assert_secret_free(_error_texts(write_error.value))
    _assert_secret_free(_error_texts(read_error.value))
    _assert_secret_free(_log_texts(caplog))


def test_rotated_password_hides_both(
    kind: str,
    server: ThrowawayServer,
    async_runner: asyncio.Runner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server's password changes under a running store, as in a rotation."""
    caplog.set_level(logging.DEBUG)
    store = _open(kind, _uri(server.port), async_runner, timeout=2, connect_timeout=2)
    admin = psycopg.connect(_uri(server.port), autocommit=True)
    try:
        store.create_conversation()
        admin.execute(f"ALTER ROLE postgres PASSWORD '{ROTATED_PASSWORD}'")
        admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE datname = 'secrets' AND pid <> pg_backend_pid()"
        )
        with pytest.raises(ConnectionFailedError) as caught:
            store.list_conversations()
    finally:
        admin.execute(f"ALTER ROLE postgres PASSWORD '{PASSWORD}'")
        admin.close()
        store.close()

    assert "password authentication failed" in str(caught.value)
    assert f"127.0.0.1:{server.port}/secrets" in str(caught.value)
    _assert_secret_free(_error_texts(caught.value))
    _assert_secret_free(_log_texts(caplog))


@pytest.mark.parametrize("form", ["uri", "keywords"])
def test_open_unreachable_hides_password(
    kind: str, form: str, async_runner: asyncio.Runner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = find_free_port()
    dsn = _uri(port)
    if form == "keywords":
        dsn = f"host=127.0.0.1 port={port} user=postgres password={PASSWORD}"
    with pytest.raises(ConnectionFailedError) as caught:
        _open(kind, dsn, async_runner, connect_timeout=2)
    assert f"127.0.0.1:{port}" in str(caught.value)
    _assert_secret_free(_error_texts(caught.value))
    _assert_secret_free(_log_texts(caplog))


def test_open_wrong_password_hides_it(
    kind: str,
    server: ThrowawayServer,
    async_runner: asyncio.Runner,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConnectionFailedError) as caught:
        _open(kind, _uri(server.port, ROTATED_PASSWORD), async_runner)
    assert "password authentication failed" in str(caught.value)
    _assert_secret_free(_error_texts(caught.value))
    _assert_secret_free(_log_texts(caplog))
