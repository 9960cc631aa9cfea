"""The asyncio facade: AsyncStore over a psycopg_pool.AsyncConnectionPool.

It mirrors store.py method for method; the checks, parameters and results
come from the same helpers in _core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from time import monotonic, perf_counter
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from aiosql.types import SQLOperationType
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from . import _checks, _core, _pooling, migrations
from ._conninfo import describe, merge_kwargs, pool_name, raise_connection_failed
from ._logging import log_query, logger
from ._sql import load_queries
from .models import Conversation, ConversationSummary, Role

async_queries: Any = load_queries(is_async=True)
"""The named queries of ``queries/*.sql``, for psycopg async connections."""

_T = TypeVar("_T")
_AsyncRead = Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]]


class _AsyncConversationMethods:
    """The conversation methods, awaited, given a way to reach a connection."""

    def _connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        raise NotImplementedError

    async def _run(
        self, conn: psycopg.AsyncConnection[Any], name: str, params: _core.Params
    ) -> Any:
        query = getattr(async_queries, name)
        started = perf_counter()
        if query.operation is SQLOperationType.SELECT:
            # As in Store: one fetchall() rather than an async generator per row.
            opening = getattr(async_queries, f"{name}_cursor")(conn, **params)
            async with opening as cursor:
                result: Any = await cursor.fetchall()
        else:
            result = await query(conn, **params)
        if logger.isEnabledFor(logging.DEBUG):
            log_query(name, perf_counter() - started)
        return result

    async def _read(self, name: str, read: _AsyncRead[_T]) -> _T:
        """Run *read*, which only reads, on a connection; *name* is for logs."""
        async with self._connection() as conn:
            return await read(conn)

    async def create_conversation(self, model: str = "") -> UUID:
        """Start a conversation and return its id."""
        params = _core.conversation_params(model)
        async with self._connection() as conn:
            new_id: UUID = await self._run(conn, "create_conversation", params)
        return new_id

    async def add_message(
        self, conversation_id: UUID | str, role: Role, content: str
    ) -> UUID:
        """Store one message at the end of a conversation and return its id.

        :raises NotFoundError: when the conversation does not exist; nothing is
            stored then.
        """
        params = _core.message_params(conversation_id, role, content)
        conversation_uuid = params["conversation_id"]
        async with self._connection() as conn:
            with _core.missing_conversation_as_not_found(conversation_uuid):
                new_id = await self._run(conn, "add_message", params)
        return _core.require_found(new_id, conversation_uuid)  # type: ignore[no-any-return]

    async def add_messages(
        self, conversation_id: UUID | str, messages: Iterable[tuple[Role, str]]
    ) -> list[UUID]:
        """Store (role, content) pairs in order, in one statement; return their ids.

        Either every message is stored or none is.

        :raises NotFoundError: when the conversation does not exist.
        """
        params = _core.messages_params(conversation_id, messages)
        conversation_uuid = params["conversation_id"]
        async with self._connection() as conn:
            with _core.missing_conversation_as_not_found(conversation_uuid):
                if not params["roles"]:
                    # An empty list inserts nothing: only check the conversation exists.
                    row = await self._run(
                        conn, "get_conversation", _core.id_params(conversation_uuid)
                    )
                    _core.require_found(row, conversation_uuid)
                    return []
                rows = await self._run(conn, "add_messages", params)
        return _core.require_ids(rows, len(params["roles"]), conversation_uuid)

    async def get_conversation(self, conversation_id: UUID | str) -> Conversation:
        """Return a conversation with its messages in the order they were added.

        :raises NotFoundError: when no conversation has this id.
        """
        params = _core.id_params(conversation_id)

        async def read(conn: psycopg.AsyncConnection[Any]) -> Conversation:
            # Messages first: a delete committed between the two statements
            # then raises NotFoundError instead of returning no messages.
            message_rows = await self._run(conn, "list_messages", params)
            row = await self._run(conn, "get_conversation", params)
            _core.require_found(row, params["conversation_id"])
            return _core.build_conversation(row, message_rows)

        return await self._read("get_conversation", read)

    async def list_conversations(
        self, limit: int = 100, *, before: ConversationSummary | None = None
    ) -> list[ConversationSummary]:
        """Return up to *limit* conversations, newest first.

        *limit* is capped at 100. Pass the last summary of a page as *before*
        to get the next, older page.

        :raises ValueError: when *limit* is below 1.
        """
        name, params = _core.list_query(limit, before)

        async def read(conn: psycopg.AsyncConnection[Any]) -> list[ConversationSummary]:
            return _core.build_summaries(await self._run(conn, name, params))

        return await self._read(name, read)

    async def delete_conversation(self, conversation_id: UUID | str) -> None:
        """Delete a conversation and its messages.

        :raises NotFoundError: when no conversation has this id.
        """
        params = _core.id_params(conversation_id)
        async with self._connection() as conn:
            count = await self._run(conn, "delete_conversation", params)
        _core.require_deleted(count, params["conversation_id"])


class AsyncTransaction(_AsyncConversationMethods):
    """The conversation methods on one connection, inside one transaction.

    Made by AsyncStore.transaction(); valid until its ``async with`` block ends.
    """

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn: psycopg.AsyncConnection[Any] | None = conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._conn is None:
            raise RuntimeError(
                "transaction: used after its async with block ended; open a new"
                " one with store.transaction()"
            )
        yield self._conn

    def _end(self) -> None:
        self._conn = None


class AsyncStore(_AsyncConversationMethods):
    """Conversations and messages in PostgreSQL, over an asyncio connection pool.

    ``await AsyncStore.open(dsn)`` opens a pool that the store owns and
    closes; ``AsyncStore(pool)`` wraps a pool the application owns and leaves
    it open.
    """

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, owns_pool: bool = False
    ) -> None:
        if not isinstance(pool, AsyncConnectionPool):
            raise TypeError(
                f"AsyncStore(pool): expected a psycopg_pool.AsyncConnectionPool,"
                f" got {type(pool).__name__}; use AsyncStore.open(dsn) to open one"
                " from a connection string"
            )
        self._pool = pool
        self._owns_pool = owns_pool
        self._name = pool_name(pool.conninfo, pool.name)

    @classmethod
    def open(
        cls,
        dsn: str = "",
        *,
        connect_timeout: int = 10,
        timeout: float = 30.0,
        **pool_options: Any,
    ) -> _OpeningStore:
        """Open a pool on *dsn*, check that the server responds, and wrap it.

        Use it as ``store = await AsyncStore.open(dsn)`` or as
        ``async with AsyncStore.open(dsn) as store:``. An empty *dsn* uses the
        PG* environment variables and libpq's defaults. *connect_timeout*,
        *timeout* and the default reconnect_timeout are as for Store.open.
        *pool_options* go to psycopg_pool.AsyncConnectionPool.

        :raises ConnectionFailedError: when the server cannot be reached
            within *connect_timeout* seconds or refuses the connection.
        """
        return _OpeningStore(cls._open(dsn, connect_timeout, timeout, pool_options))

    @classmethod
    async def _open(
        cls,
        dsn: str,
        connect_timeout: int,
        timeout: float,
        pool_options: dict[str, Any],
    ) -> AsyncStore:
        _checks.check_open_options(dsn, connect_timeout, timeout)
        # Parsing first keeps a malformed dsn, password and all, out of errors.
        name = describe(dsn)
        kwargs = {"autocommit": True, "connect_timeout": connect_timeout}
        kwargs.update(pool_options.pop("kwargs", {}))
        await _ping(dsn, kwargs)
        pool_options.setdefault("name", f"hwlab_sql {name}")
        pool_options.setdefault("reconnect_timeout", _pooling.RECONNECT_TIMEOUT)
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn, kwargs=kwargs, open=False, timeout=timeout, **pool_options
        )
        try:
            await pool.open(wait=True, timeout=float(connect_timeout))
        except PoolTimeout as exc:
            # wait() closes the pool on a timeout; closing again is harmless
            # and makes sure that no pool task outlives the failed open().
            await pool.close()
            await _pooling.raise_timeout_async(pool, exc, waited=float(connect_timeout))
        logger.info("pool %s opened", pool.name)
        return cls(pool, owns_pool=True)

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        """The connection pool under this store."""
        return self._pool

    async def close(self) -> None:
        """Close the pool when the store opened it; a wrapped pool stays open."""
        if self._owns_pool and not self._pool.closed:
            await self._pool.close()
            logger.info("pool %s closed", self._pool.name)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name}>"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        # As AsyncConnectionPool.connection(), with _getconn's checks.
        conn = await self._getconn()
        try:
            async with conn:
                # aiosql's async adapter reads rows through the connection's row
                # factory, which an application's pool may have set to dicts.
                # The pool's own factory comes back before the connection does.
                row_factory = conn.row_factory
                conn.row_factory = tuple_row
                try:
                    yield conn
                finally:
                    if not conn.closed:
                        conn.row_factory = row_factory
        finally:
            await self._pool.putconn(conn)

    async def _getconn(self) -> psycopg.AsyncConnection[Any]:
        """Take a connection from the pool, replacing those the server closed.

        The same as Store._getconn, whose documentation explains the design.
        """
        pool = self._pool
        deadline = monotonic() + pool.timeout
        replaced = 0
        while True:
            try:
                conn: psycopg.AsyncConnection[Any] = await pool.getconn(
                    timeout=deadline - monotonic()
                )
            except PoolTimeout as exc:
                await _pooling.raise_timeout_async(pool, exc)
            if not _pooling.connection_lost(conn):
                break
            await pool.putconn(conn)
            replaced += 1
        if replaced:
            _pooling.log_replaced(pool.name, replaced)
        return conn

    async def _read(self, name: str, read: _AsyncRead[_T]) -> _T:
        # Reads run again once when their connection breaks mid-query, and
        # writes do not. Store._read explains why.
        async with self._connection() as conn:
            try:
                return await read(conn)
            except psycopg.OperationalError as exc:
                if not _pooling.lost_mid_query(exc, conn):
                    raise
                _pooling.log_read_retry(self._pool.name, name, exc)
        async with self._connection() as conn:
            return await read(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction]:
        """Run several calls on one connection, committed together.

        The transaction commits when the ``async with`` block ends and rolls
        back when it raises.
        """
        async with self._connection() as conn, conn.transaction():
            tx = AsyncTransaction(conn)
            try:
                yield tx
            finally:
                tx._end()

    async def run_migrations(self) -> list[str]:
        """Apply the schema scripts not applied yet; return their file names.

        Safe to call on every start-up, from many processes at once.
        """
        # The runner is synchronous; it runs in a worker thread on a connection
        # of its own, made with the pool's settings.
        conninfo = await _pooling.resolve_setting(self._pool.conninfo)
        kwargs = await _pooling.resolve_setting(self._pool.kwargs) or {}
        return await asyncio.to_thread(_run_migrations_sync, conninfo, kwargs)


class _OpeningStore:
    """The result of AsyncStore.open(): await it, or use it with async with."""

    def __init__(self, opening: Coroutine[Any, Any, AsyncStore]) -> None:
        self._opening = opening
        self._store: AsyncStore | None = None

    def __await__(self) -> Generator[Any, None, AsyncStore]:
        return self._opening.__await__()

    async def __aenter__(self) -> AsyncStore:
        self._store = await self._opening
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.close()


def _run_migrations_sync(conninfo: str, kwargs: dict[str, Any]) -> list[str]:
    try:
        conn = psycopg.connect(conninfo, **kwargs)
    except psycopg.OperationalError as exc:
        raise_connection_failed(merge_kwargs(conninfo, kwargs), exc)
    with conn:
        return [script.filename for script in migrations.run_migrations(conn)]


async def _ping(dsn: str, kwargs: dict[str, Any]) -> None:
    """Connect once as the pool will and ping, to fail early with a clear cause."""
    try:
        async with await psycopg.AsyncConnection.connect(dsn, **kwargs) as conn:
            await async_queries.ping(conn)
    except psycopg.OperationalError as exc:
        raise_connection_failed(merge_kwargs(dsn, kwargs), exc)
