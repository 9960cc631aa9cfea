"""Checks on pooled connections and pool errors, shared by Store and AsyncStore.

Connections that the server closed while they sat idle in the pool (after a
restart, ``pg_terminate_backend`` or ``idle_session_timeout``) are found at
checkout without a round trip, and replaced. Reads that lose their connection
mid-query run once more; Store._read explains why writes do not.
"""

from __future__ import annotations

import inspect
import select
from typing import Any, NoReturn

import psycopg
from psycopg import pq
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from ._conninfo import merge_kwargs, raise_connection_failed
from ._logging import logger

# Bound on the reads of one check: a server that ends a session sends one
# ErrorResponse and then closes the socket, which takes two reads to see.
_MAX_READS = 4

# Seconds a diagnostic connection may take when the pool sets no connect_timeout.
_DIAGNOSTIC_CONNECT_TIMEOUT = 10

# Default reconnect_timeout of the pools that Store.open makes, in seconds.
# psycopg_pool 3.3 retries a failed connection after 1, 2, 4, 8 s and so on, for
# up to reconnect_timeout (300 s by default). Measured on loopback with
# timeout=2, a store waited 12 s more after an outage of 15 s. Series of 5 s
# keep the gaps near 2 s, and once a series ends, a caller that finds no
# connection makes the pool start a new one.
RECONNECT_TIMEOUT = 5.0


def connection_lost(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
) -> bool:
    """Tell whether the server has closed an idle connection, without a round trip.

    An idle connection has nothing to read unless the server sent something on
    its own. When it ends the session, that is a FATAL error followed by end of
    file, which libpq turns into a BAD connection status once it reads both.
    NOTIFY messages and parameter changes are read and leave the connection
    usable.

    NOTE: a server that ends the session between this check and the next query
    still fails that query; Store retries reads once for that reason.
    """
    if conn.closed:
        return True
    pgconn = conn.pgconn
    for _ in range(_MAX_READS):
        if not _has_input(pgconn.socket):
            break
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:
            return True
    return pgconn.status == pq.ConnStatus.BAD


def _has_input(fileno: int) -> bool:
    """Tell whether a read on *fileno* would not block, waiting for nothing."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fileno, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fileno], [], [], 0)
    return bool(readable)


def lost_mid_query(exc: BaseException, conn: Any) -> bool:
    """Tell whether *exc* means the connection broke while a query ran on it."""
    return isinstance(exc, psycopg.OperationalError) and bool(conn.closed)


def log_replaced(pool_name: str, count: int) -> None:
    """Log at WARNING that checkout replaced connections the server had closed."""
    logger.warning(
        "pool %s: replaced %d connection(s) that the server had closed",
        pool_name,
        count,
    )


def log_read_retry(pool_name: str, query: str, exc: BaseException) -> None:
    """Log at WARNING that a read lost its connection and runs again."""
    sqlstate = getattr(exc, "sqlstate", None) or "no SQLSTATE"
    logger.warning(
        "pool %s: %s lost its connection (%s, %s); retrying once on another",
        pool_name,
        query,
        type(exc).__name__,
        sqlstate,
    )


def raise_timeout(
    pool: ConnectionPool[Any], exc: PoolTimeout, waited: float | None = None
) -> NoReturn:
    """Raise the error for a caller that *pool* had no connection for.

    *waited* is how many seconds the caller waited, the pool's timeout unless
    given.

    One direct connection attempt distinguishes a server that cannot be
    reached (ConnectionFailedError, with libpq's cause) from a pool whose
    connections are all in use (PoolTimeout). The attempt takes at most the
    pool's connect_timeout, so a caller waits up to timeout + connect_timeout.
    """
    conninfo = pool.conninfo() if callable(pool.conninfo) else pool.conninfo
    kwargs = dict((pool.kwargs() if callable(pool.kwargs) else pool.kwargs) or {})
    kwargs.setdefault("connect_timeout", _DIAGNOSTIC_CONNECT_TIMEOUT)
    try:
        psycopg.connect(conninfo, **kwargs).close()
    except psycopg.OperationalError as connect_error:
        _raise_unreachable(conninfo, kwargs, connect_error, waited or pool.timeout)
    _raise_busy(pool.name, waited or pool.timeout, pool.max_size, exc)


async def raise_timeout_async(
    pool: AsyncConnectionPool[Any], exc: PoolTimeout, waited: float | None = None
) -> NoReturn:
    """Raise the error for a caller that *pool* had no connection for.

    The same as raise_timeout, for an asyncio pool.
    """
    conninfo = await resolve_setting(pool.conninfo)
    kwargs = dict(await resolve_setting(pool.kwargs) or {})
    kwargs.setdefault("connect_timeout", _DIAGNOSTIC_CONNECT_TIMEOUT)
    try:
        conn = await psycopg.AsyncConnection.connect(conninfo, **kwargs)
        await conn.close()
    except psycopg.OperationalError as connect_error:
        _raise_unreachable(conninfo, kwargs, connect_error, waited or pool.timeout)
    _raise_busy(pool.name, waited or pool.timeout, pool.max_size, exc)


async def resolve_setting(setting: Any) -> Any:
    """Return a pool setting, calling it first when the pool computes it."""
    if callable(setting):
        setting = setting()
    if inspect.isawaitable(setting):
        setting = await setting
    return setting


def _raise_unreachable(
    conninfo: str,
    kwargs: dict[str, Any],
    connect_error: psycopg.OperationalError,
    waited: float,
) -> NoReturn:
    raise_connection_failed(
        merge_kwargs(conninfo, kwargs),
        connect_error,
        waited=f"no pooled connection within {waited:g} s",
    )


def _raise_busy(name: str, timeout: float, max_size: int, exc: PoolTimeout) -> NoReturn:
    raise PoolTimeout(
        f"pool {name}: no connection free within {timeout:g} s, although the server"
        f" accepts new connections, so all {max_size} are in use or the pool is"
        " still reconnecting after an outage; raise max_size or timeout, or hold"
        " connections for less time"
    ) from exc
