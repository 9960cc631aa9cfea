"""The asyncio facade: AsyncStore over a psycopg_pool.AsyncConnectionPool.

It mirrors store.py method for method; the checks, parameters and results
come from the same helpers in _core.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Coroutine, Generator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from time import perf_counter
from types import TracebackType
from typing import Any
from uuid import UUID

import psycopg
from aiosql.types import SQLOperationType
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from . import _core, migrations
from ._conninfo import describe, pool_name, raise_connection_failed
from ._logging import log_query, logger
from ._sql import load_queries
from .models import Conversation, ConversationSummary, Role

async_queries: Any = load_queries(is_async=True)
"""The named queries of ``queries/*.sql``, for psycopg async connections."""


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
            result: Any = [row async for row in query(conn, **params)]
        else:
            result = await query(conn, **params)
        if logger.isEnabledFor(logging.DEBUG):
            log_query(name, perf_counter() - started)
        return result

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
        async with self._connection() as conn:
            row = await self._run(conn, "get_conversation", params)
            _core.require_found(row, params["conversation_id"])
            message_rows = await self._run(conn, "list_messages", params)
        return _core.build_conversation(row, message_rows)

    async def list_conversations(
        self, limit: int = 100, *, before: ConversationSummary | None = None
    ) -> list[ConversationSummary]:
        """Return up to *limit* conversations, newest first.

        *limit* is capped at 100. Pass the last summary of a page as *before*
        to get the next, older page.

        :raises ValueError: when *limit* is below 1.
        """
        name, params = _core.list_query(limit, before)
        async with self._connection() as conn:
            rows = await self._run(conn, name, params)
        return _core.build_summaries(rows)

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
        self._pool = pool
        self._owns_pool = owns_pool
        self._name = pool_name(pool.conninfo, pool.name)

    @classmethod
    def open(
        cls, dsn: str = "", *, connect_timeout: int = 10, **pool_options: Any
    ) -> _OpeningStore:
        """Open a pool on *dsn*, check that the server responds, and wrap it.

        Use it as ``store = await AsyncStore.open(dsn)`` or as
        ``async with AsyncStore.open(dsn) as store:``. An empty *dsn* uses the
        PG* environment variables and libpq's defaults. *pool_options* go to
        psycopg_pool.AsyncConnectionPool.

        :raises ConnectionFailedError: when the server cannot be reached
            within *connect_timeout* seconds or refuses the connection.
        """
        return _OpeningStore(cls._open(dsn, connect_timeout, pool_options))

    @classmethod
    async def _open(
        cls, dsn: str, connect_timeout: int, pool_options: dict[str, Any]
    ) -> AsyncStore:
        # Parsing first keeps a malformed dsn, password and all, out of errors.
        name = describe(dsn)
        await _ping(dsn, connect_timeout)
        kwargs = {"autocommit": True, "connect_timeout": connect_timeout}
        kwargs.update(pool_options.pop("kwargs", {}))
        pool_options.setdefault("name", f"hwlab_sql {name}")
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            dsn, kwargs=kwargs, open=False, **pool_options
        )
        await pool.open(wait=True, timeout=float(connect_timeout))
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
        async with self._pool.connection() as conn:
            # aiosql's async adapter reads rows through the connection's row
            # factory, which an application's pool may have set to dicts.
            if conn.row_factory is not tuple_row:
                conn.row_factory = tuple_row
            yield conn

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
        conninfo = await _resolve(self._pool.conninfo)
        kwargs = await _resolve(self._pool.kwargs) or {}
        return await asyncio.to_thread(_run_migrations_sync, conninfo, kwargs)


async def _resolve(setting: Any) -> Any:
    """Return a pool setting, calling it first when the pool computes it."""
    if callable(setting):
        setting = setting()
    if inspect.isawaitable(setting):
        setting = await setting
    return setting


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
    with psycopg.connect(conninfo, **kwargs) as conn:
        return [script.filename for script in migrations.run_migrations(conn)]


async def _ping(dsn: str, connect_timeout: int) -> None:
    """Connect once and run the ping query, to fail early with a clear cause."""
    try:
        async with await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, connect_timeout=connect_timeout
        ) as conn:
            await async_queries.ping(conn)
    except psycopg.OperationalError as exc:
        raise_connection_failed(dsn, exc)
