"""The synchronous facade: Store over a psycopg_pool.ConnectionPool."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from time import monotonic, perf_counter
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from aiosql.types import SQLOperationType
from psycopg_pool import ConnectionPool, PoolTimeout

from . import _checks, _core, _pooling, migrations
from ._conninfo import describe, merge_kwargs, pool_name, raise_connection_failed
from ._logging import log_query, logger
from ._sql import load_queries
from .models import Conversation, ConversationSummary, Role

queries: Any = load_queries()
"""The named queries of ``queries/*.sql``, for psycopg connections."""

_T = TypeVar("_T")


class _ConversationMethods:
    """The conversation methods, given a way to reach a connection."""

    def _connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    def _run(
        self, conn: psycopg.Connection[Any], name: str, params: _core.Params
    ) -> Any:
        query = getattr(queries, name)
        started = perf_counter()
        if query.operation is SQLOperationType.SELECT:
            # fetchall() converts all rows in one call. Iterating query() passes
            # each row through two generators: 2 ms more per 1,000 rows.
            with getattr(queries, f"{name}_cursor")(conn, **params) as cursor:
                result = cursor.fetchall()
        else:
            result = query(conn, **params)
        if logger.isEnabledFor(logging.DEBUG):
            log_query(name, perf_counter() - started)
        return result

    def _read(self, name: str, read: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run *read*, which only reads, on a connection; *name* is for logs."""
        with self._connection() as conn:
            return read(conn)

    def create_conversation(self, model: str = "") -> UUID:
        """Start a conversation and return its id."""
        params = _core.conversation_params(model)
        with self._connection() as conn:
            new_id: UUID = self._run(conn, "create_conversation", params)
        return new_id

    def add_message(
        self, conversation_id: UUID | str, role: Role, content: str
    ) -> UUID:
        """Store one message at the end of a conversation and return its id.

        :raises NotFoundError: when the conversation does not exist; nothing is
            stored then.
        """
        params = _core.message_params(conversation_id, role, content)
        conversation_uuid = params["conversation_id"]
        with (
            self._connection() as conn,
            _core.missing_conversation_as_not_found(conversation_uuid),
        ):
            new_id = self._run(conn, "add_message", params)
        return _core.require_found(new_id, conversation_uuid)  # type: ignore[no-any-return]

    def add_messages(
        self, conversation_id: UUID | str, messages: Iterable[tuple[Role, str]]
    ) -> list[UUID]:
        """Store (role, content) pairs in order, in one statement; return their ids.

        Either every message is stored or none is.

        :raises NotFoundError: when the conversation does not exist.
        """
        params = _core.messages_params(conversation_id, messages)
        conversation_uuid = params["conversation_id"]
        with (
            self._connection() as conn,
            _core.missing_conversation_as_not_found(conversation_uuid),
        ):
            if not params["roles"]:
                # An empty list inserts nothing: only check the conversation exists.
                row = self._run(
                    conn, "get_conversation", _core.id_params(conversation_uuid)
                )
                _core.require_found(row, conversation_uuid)
                return []
            rows = self._run(conn, "add_messages", params)
        return _core.require_ids(rows, len(params["roles"]), conversation_uuid)

    def get_conversation(self, conversation_id: UUID | str) -> Conversation:
        """Return a conversation with its messages in the order they were added.

        :raises NotFoundError: when no conversation has this id.
        """
        params = _core.id_params(conversation_id)

        def read(conn: psycopg.Connection[Any]) -> Conversation:
            # Messages first: a delete committed between the two statements
            # then raises NotFoundError instead of returning no messages.
            message_rows = self._run(conn, "list_messages", params)
            row = self._run(conn, "get_conversation", params)
            _core.require_found(row, params["conversation_id"])
            return _core.build_conversation(row, message_rows)

        return self._read("get_conversation", read)

    def list_conversations(
        self, limit: int = 100, *, before: ConversationSummary | None = None
    ) -> list[ConversationSummary]:
        """Return up to *limit* conversations, newest first.

        *limit* is capped at 100. Pass the last summary of a page as *before*
        to get the next, older page.

        :raises ValueError: when *limit* is below 1.
        """
        name, params = _core.list_query(limit, before)

        def read(conn: psycopg.Connection[Any]) -> list[ConversationSummary]:
            return _core.build_summaries(self._run(conn, name, params))

        return self._read(name, read)

    def delete_conversation(self, conversation_id: UUID | str) -> None:
        """Delete a conversation and its messages.

        :raises NotFoundError: when no conversation has this id.
        """
        params = _core.id_params(conversation_id)
        with self._connection() as conn:
            count = self._run(conn, "delete_conversation", params)
        _core.require_deleted(count, params["conversation_id"])


class Transaction(_ConversationMethods):
    """The conversation methods on one connection, inside one transaction.

    Made by Store.transaction(); valid until its ``with`` block ends.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn: psycopg.Connection[Any] | None = conn

    def _connection(self) -> AbstractContextManager[psycopg.Connection[Any]]:
        if self._conn is None:
            raise RuntimeError(
                "transaction: used after its with block ended; open a new one"
                " with store.transaction()"
            )
        return nullcontext(self._conn)

    def _end(self) -> None:
        self._conn = None


class Store(_ConversationMethods):
    """Conversations and messages in PostgreSQL, over a connection pool.

    ``Store.open(dsn)`` opens a pool that the store owns and closes;
    ``Store(pool)`` wraps a pool the application owns and leaves it open.
    """

    def __init__(self, pool: ConnectionPool[Any], *, owns_pool: bool = False) -> None:
        if not isinstance(pool, ConnectionPool):
            raise TypeError(
                f"Store(pool): expected a psycopg_pool.ConnectionPool, got"
                f" {type(pool).__name__}; use Store.open(dsn) to open one from a"
                " connection string"
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
    ) -> Store:
        """Open a pool on *dsn*, check that the server responds, and wrap it.

        An empty *dsn* uses the PG* environment variables and libpq's
        defaults. *connect_timeout* bounds each new connection, in whole
        seconds (libpq raises 1 to 2). *timeout* bounds, in seconds, how long
        a call waits for a pooled connection. A call made while the server is
        down raises ConnectionFailedError after at most about timeout +
        connect_timeout seconds. *pool_options* go to
        psycopg_pool.ConnectionPool, with reconnect_timeout set to 5 seconds
        unless given, so that the pool reconnects promptly after an outage.

        :raises ConnectionFailedError: when the server cannot be reached
            within *connect_timeout* seconds or refuses the connection.
        """
        _checks.check_open_options(dsn, connect_timeout, timeout)
        # Parsing first keeps a malformed dsn, password and all, out of errors.
        name = describe(dsn)
        kwargs = {"autocommit": True, "connect_timeout": connect_timeout}
        kwargs.update(pool_options.pop("kwargs", {}))
        _ping(dsn, kwargs)
        pool_options.setdefault("name", f"hwlab_sql {name}")
        pool_options.setdefault("reconnect_timeout", _pooling.RECONNECT_TIMEOUT)
        pool: ConnectionPool[Any] = ConnectionPool(
            dsn, kwargs=kwargs, open=False, timeout=timeout, **pool_options
        )
        try:
            pool.open(wait=True, timeout=float(connect_timeout))
        except PoolTimeout as exc:
            # wait() closes the pool on a timeout; closing again is harmless
            # and makes sure that no pool thread outlives the failed open().
            pool.close()
            _pooling.raise_timeout(pool, exc, waited=float(connect_timeout))
        logger.info("pool %s opened", pool.name)
        return cls(pool, owns_pool=True)

    @property
    def pool(self) -> ConnectionPool[Any]:
        """The connection pool under this store."""
        return self._pool

    def close(self) -> None:
        """Close the pool when the store opened it; a wrapped pool stays open."""
        if self._owns_pool and not self._pool.closed:
            self._pool.close()
            logger.info("pool %s closed", self._pool.name)

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._name}>"

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        # As ConnectionPool.connection(), with _getconn's checks.
        conn = self._getconn()
        try:
            with conn:
                yield conn
        finally:
            self._pool.putconn(conn)

    def _getconn(self) -> psycopg.Connection[Any]:
        """Take a connection from the pool, replacing those the server closed.

        A connection that died while idle in the pool (server restart,
        pg_terminate_backend) is found here without a round trip and handed
        back, so that the pool closes and replaces it, and no statement is ever
        sent on it. That makes any call safe to run on the next connection, a
        write included, while costing one poll() per checkout rather than the
        round trip of ConnectionPool.check_connection.

        :raises ConnectionFailedError: when no connection is free within the
            pool's timeout and the server cannot be reached.
        :raises PoolTimeout: when no connection is free within the pool's
            timeout although the server accepts new connections.
        """
        pool = self._pool
        deadline = monotonic() + pool.timeout
        replaced = 0
        while True:
            try:
                conn: psycopg.Connection[Any] = pool.getconn(
                    timeout=deadline - monotonic()
                )
            except PoolTimeout as exc:
                _pooling.raise_timeout(pool, exc)
            if not _pooling.connection_lost(conn):
                break
            pool.putconn(conn)
            replaced += 1
        if replaced:
            _pooling.log_replaced(pool.name, replaced)
        return conn

    def _read(self, name: str, read: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        # A connection can still die between _getconn's check and the query.
        # Reads run again once on another connection then. Writes do not,
        # because the server may have committed one before the connection
        # broke, and a second run would store it twice.
        with self._connection() as conn:
            try:
                return read(conn)
            except psycopg.OperationalError as exc:
                if not _pooling.lost_mid_query(exc, conn):
                    raise
                _pooling.log_read_retry(self._pool.name, name, exc)
        with self._connection() as conn:
            return read(conn)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Run several calls on one connection, committed together.

        The transaction commits when the ``with`` block ends and rolls back
        when it raises.
        """
        with self._connection() as conn, conn.transaction():
            tx = Transaction(conn)
            try:
                yield tx
            finally:
                tx._end()

    def run_migrations(self) -> list[str]:
        """Apply the schema scripts not applied yet; return their file names.

        Safe to call on every start-up, from many processes at once.
        """
        with self._connection() as conn:
            return [script.filename for script in migrations.run_migrations(conn)]


def _ping(dsn: str, kwargs: dict[str, Any]) -> None:
    """Connect once as the pool will and ping, to fail early with a clear cause."""
    try:
        with psycopg.connect(dsn, **kwargs) as conn:
            queries.ping(conn)
    except psycopg.OperationalError as exc:
        raise_connection_failed(merge_kwargs(dsn, kwargs), exc)
