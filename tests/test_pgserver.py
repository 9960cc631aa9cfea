"""Tests of tools.pgserver against real PostgreSQL servers.

Most tests share one throwaway server. The test of the server on 127.0.0.1:5432 is
skipped when nothing listens there.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import psycopg
import pytest

from tools.pgserver import ThrowawayServer, ThrowawayServerError, reachable_conninfo

SHARED_SERVER_URL = "postgresql://postgres@127.0.0.1:{port}/postgres"


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayServer]:
    with ThrowawayServer() as throwaway:
        yield throwaway


def closed_port() -> int:
    """Return a loopback port that was free a moment ago and has no listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def accepts_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_server_answers_select_1(server: ThrowawayServer) -> None:
    with psycopg.connect(server.conninfo) as connection:
        row = connection.execute("SELECT 1").fetchone()

    assert row == (1,)


def test_server_conninfo_format(server: ThrowawayServer) -> None:
    expected = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"

    assert server.conninfo == expected


def test_server_settings(server: ThrowawayServer) -> None:
    names = [
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "fsync",
        "server_encoding",
        "lc_collate",
    ]
    with psycopg.connect(server.conninfo) as connection:
        rows = connection.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [names]
        )
        settings: dict[str, str] = dict(rows.fetchall())

    assert settings["listen_addresses"] == "127.0.0.1"
    assert settings["port"] == str(server.port)
    assert settings["unix_socket_directories"] == str(server.socket_dir)
    assert settings["fsync"] == "off"
    assert settings["server_encoding"] == "UTF8"
    assert settings["lc_collate"] == "C"


def test_server_socket_in_socket_dir(server: ThrowawayServer) -> None:
    assert (server.socket_dir / f".s.PGSQL.{server.port}").is_socket()


def test_start_when_running_raises(server: ThrowawayServer) -> None:
    with pytest.raises(ThrowawayServerError, match="already running"):
        server.start()


def test_restart_keeps_data(server: ThrowawayServer) -> None:
    port = server.port
    with psycopg.connect(server.conninfo, autocommit=True) as connection:
        connection.execute("CREATE TABLE restart_check (value int)")
        connection.execute("INSERT INTO restart_check VALUES (1), (2)")
        row = connection.execute("SELECT pg_postmaster_start_time()").fetchone()
        assert row is not None
        started_before = row[0]

        server.restart()

        # The connection opened before the restart is broken.
        with pytest.raises(psycopg.OperationalError):
            connection.execute("SELECT 1")

    assert server.port == port
    assert server.running
    with psycopg.connect(server.conninfo) as connection:
        rows = connection.execute("SELECT value FROM restart_check ORDER BY value")
        values = [value for (value,) in rows]
        row = connection.execute("SELECT pg_postmaster_start_time()").fetchone()
        assert row is not None
        started_after = row[0]

    assert values == [1, 2]
    assert started_after > started_before


def test_stop_then_start(server: ThrowawayServer) -> None:
    server.stop()

    assert not server.running
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.conninfo, connect_timeout=2)

    server.start()

    assert server.running
    with psycopg.connect(server.conninfo) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def test_create_database_returns_conninfo(server: ThrowawayServer) -> None:
    conninfo = server.create_database("Created Database")

    with psycopg.connect(conninfo) as connection:
        row = connection.execute("SELECT current_database()").fetchone()

    assert row == ("Created Database",)


def test_directories_removed_after_exit() -> None:
    with ThrowawayServer() as throwaway:
        base_dir = throwaway.data_dir.parent
        socket_dir = throwaway.socket_dir
        port = throwaway.port
        assert base_dir.is_dir()
        assert socket_dir.is_dir()

    assert not base_dir.exists()
    assert not socket_dir.exists()
    assert not accepts_tcp(port)


def test_directories_removed_when_start_fails() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy_port: int = listener.getsockname()[1]
        throwaway = ThrowawayServer(port=busy_port)

        expected = "pg_ctl start failed"
        with pytest.raises(ThrowawayServerError, match=expected) as info, throwaway:
            pass

    message = str(info.value)
    assert "Command: " in message
    assert "could not start server" in message  # pg_ctl's stderr
    assert "could not bind" in message  # the server log's tail
    assert not throwaway.data_dir.parent.exists()
    assert not throwaway.socket_dir.exists()


def test_cleanup_twice_is_harmless() -> None:
    throwaway = ThrowawayServer()
    throwaway.cleanup()
    throwaway.cleanup()

    with pytest.raises(ThrowawayServerError, match="cleaned up"):
        throwaway.start()


def test_reachable_conninfo_database_url_5432(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not accepts_tcp(5432):
        pytest.skip("no server listens on 127.0.0.1:5432")
    url = SHARED_SERVER_URL.format(port=5432)
    monkeypatch.setenv("DATABASE_URL", url)

    conninfo = reachable_conninfo()

    assert conninfo == url
    with psycopg.connect(conninfo) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def test_reachable_conninfo_database_url(
    server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = SHARED_SERVER_URL.format(port=server.port)
    monkeypatch.setenv("DATABASE_URL", url)

    assert reachable_conninfo() == url


def test_reachable_conninfo_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    url = SHARED_SERVER_URL.format(port=closed_port())
    monkeypatch.setenv("DATABASE_URL", url)

    assert reachable_conninfo() is None


def test_reachable_conninfo_missing_database(
    server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{server.port}/no_such_database"
    monkeypatch.setenv("DATABASE_URL", url)

    assert reachable_conninfo() is None


def test_reachable_conninfo_pg_variables(
    server: ThrowawayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(server.port))
    monkeypatch.setenv("PGUSER", "postgres")
    monkeypatch.setenv("PGDATABASE", "postgres")

    assert reachable_conninfo() == ""


def test_reachable_conninfo_pg_variables_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "")
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(closed_port()))

    assert reachable_conninfo() is None


def test_reachable_conninfo_hides_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    password = "secret-password-1234"
    url = f"postgresql://postgres:{password}@127.0.0.1:{closed_port()}/postgres"
    monkeypatch.setenv("DATABASE_URL", url)
    caplog.set_level(logging.INFO, logger="tools.pgserver")

    assert reachable_conninfo() is None
    assert "no PostgreSQL server reachable via DATABASE_URL" in caplog.text
    assert password not in caplog.text


def test_reachable_conninfo_invalid_url(monkeypatch: pytest.MonkeyPatch) -> None:
    password = "secret-password-1234"
    monkeypatch.setenv("DATABASE_URL", f"password={password} host")

    with pytest.raises(ValueError, match="DATABASE_URL is not a valid") as info:
        reachable_conninfo()

    assert password not in str(info.value)


def test_reachable_conninfo_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    # The listener completes the TCP handshake but never sends the PostgreSQL
    # handshake, so only connect_timeout ends the attempt. libpq's minimum is 2 s.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = SHARED_SERVER_URL.format(port=listener.getsockname()[1])
        monkeypatch.setenv("DATABASE_URL", url)
        started = time.monotonic()

        conninfo = reachable_conninfo(timeout=1)

        elapsed = time.monotonic() - started

    assert conninfo is None
    assert elapsed < 5
