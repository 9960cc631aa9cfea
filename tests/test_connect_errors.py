"""Connection failures name the server and the cause, never the password."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Iterator

import pytest

from hwlab_sql import AsyncStore, ConnectionFailedError, Store
from tools.pgserver import ThrowawayServer, find_free_port

PASSWORD = "s3cret-Pa55word-for-tests"
WRONG_PASSWORD = "wr0ng-Pa55word-for-tests"


@pytest.fixture(scope="module")
def password_server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer(password=PASSWORD) as server:
        yield server


def _everything_printed(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


async def _open_async(dsn: str) -> None:
    async with AsyncStore.open(dsn):
        pass


def _assert_secret_free(text: str) -> None:
    assert PASSWORD not in text
    assert WRONG_PASSWORD not in text


def test_open_with_right_password(password_server: ThrowawayServer) -> None:
    with Store.open(password_server.conninfo, min_size=1) as store:
        store.run_migrations()
        conversation_id = store.create_conversation()
        assert store.get_conversation(conversation_id).messages == ()
        assert PASSWORD not in repr(store)


@pytest.mark.parametrize("form", ["keywords", "uri"])
def test_open_with_wrong_password(
    password_server: ThrowawayServer, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    port = password_server.port
    if form == "uri":
        dsn = f"postgresql://postgres:{WRONG_PASSWORD}@127.0.0.1:{port}/postgres"
    else:
        dsn = f"host=127.0.0.1 port={port} user=postgres password={WRONG_PASSWORD}"
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectionFailedError) as caught:
        Store.open(dsn)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "password authentication failed" in message
    _assert_secret_free(_everything_printed(caught.value))
    _assert_secret_free(caplog.text)


def test_open_unreachable_host(caplog: pytest.LogCaptureFixture) -> None:
    port = find_free_port()
    dsn = f"host=127.0.0.1 port={port} user=postgres password={PASSWORD}"
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG), pytest.raises(ConnectionFailedError) as caught:
        Store.open(dsn, connect_timeout=3)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "Connection refused" in message
    assert "check that the server is running" in message
    _assert_secret_free(_everything_printed(caught.value))
    _assert_secret_free(caplog.text)


def test_async_open_with_wrong_password(password_server: ThrowawayServer) -> None:
    dsn = (
        f"host=127.0.0.1 port={password_server.port} user=postgres"
        f" password={WRONG_PASSWORD}"
    )
    with pytest.raises(ConnectionFailedError) as caught:
        asyncio.run(_open_async(dsn))
    assert "password authentication failed" in str(caught.value)
    _assert_secret_free(_everything_printed(caught.value))


def test_async_open_unreachable_host() -> None:
    port = find_free_port()
    with pytest.raises(ConnectionFailedError) as caught:
        asyncio.run(_open_async(f"postgresql://u:{PASSWORD}@127.0.0.1:{port}/db"))
    assert f"127.0.0.1:{port}/db" in str(caught.value)
    _assert_secret_free(_everything_printed(caught.value))


def test_unparsable_dsn_hides_password() -> None:
    with pytest.raises(ValueError, match="dsn: cannot be parsed") as caught:
        Store.open(f"postgresql//postgres:{PASSWORD}@127.0.0.1 = =")
    _assert_secret_free(_everything_printed(caught.value))


def test_wrong_password_keeps_no_psycopg_error(
    password_server: ThrowawayServer,
) -> None:
    """psycopg's error keeps the password in its pgconn, so none is attached."""
    dsn = (
        f"host=127.0.0.1 port={password_server.port} user=postgres"
        f" password={WRONG_PASSWORD}"
    )
    with pytest.raises(ConnectionFailedError) as caught:
        Store.open(dsn)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


def test_open_password_in_pool_kwargs(password_server: ThrowawayServer) -> None:
    dsn = f"host=127.0.0.1 port={password_server.port} user=postgres"
    with Store.open(dsn, min_size=1, kwargs={"password": PASSWORD}) as store:
        assert store.run_migrations() is not None
    with pytest.raises(ConnectionFailedError) as caught:
        Store.open(dsn, kwargs={"password": WRONG_PASSWORD})
    _assert_secret_free(_everything_printed(caught.value))
