"""The same jobs done three ways: the Store facade, raw psycopg and SQLAlchemy Core.

Every client reaches the server through a pool of ``pool_size`` autocommit
connections. The facade and raw psycopg share one pool factory (psycopg_pool),
and raw psycopg sends the very query text of ``hwlab_sql.queries``, so the
difference between them is the facade's own work: input checks, aiosql's
dispatch and building typed results. SQLAlchemy uses its own QueuePool of the
same size, in AUTOCOMMIT mode, over the same psycopg driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg
import sqlalchemy as sa
from psycopg_pool import ConnectionPool

from hwlab_sql import NotFoundError, Role, Store, queries

Pair = tuple[Role, str]

FACADE = "facade"
PSYCOPG = "psycopg"
COPY = "psycopg COPY"
SQLALCHEMY = "SQLAlchemy Core"

CONNECT_TIMEOUT = 10


class Client(Protocol):
    """One way of running the benchmarked jobs."""

    label: str

    def add_message(self, conversation_id: UUID, role: Role, content: str) -> UUID:
        """Store one message; raise NotFoundError when the conversation is missing."""
        ...

    def add_messages(self, conversation_id: UUID, pairs: Sequence[Pair]) -> None:
        """Store the pairs in one statement (one transaction)."""
        ...

    def get_conversation(self, conversation_id: UUID) -> object:
        """Read one conversation row and all its messages in order."""
        ...

    def list_conversations(self, limit: int) -> object:
        """Read the newest *limit* conversations with their message counts."""
        ...

    def close(self) -> None:
        """Close the client's pool."""
        ...


def open_pool(dsn: str, pool_size: int) -> ConnectionPool[psycopg.Connection[Any]]:
    """Open a pool of *pool_size* autocommit connections, as Store.open() makes."""
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        dsn,
        kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
        min_size=pool_size,
        max_size=pool_size,
        open=False,
        name=f"bench {pool_size}",
    )
    pool.open(wait=True, timeout=float(CONNECT_TIMEOUT))
    return pool


class FacadeClient:
    """The jobs done through hwlab_sql.Store."""

    label = FACADE

    def __init__(self, dsn: str, pool_size: int) -> None:
        self._pool = open_pool(dsn, pool_size)
        self._store = Store(self._pool)

    def add_message(self, conversation_id: UUID, role: Role, content: str) -> UUID:
        return self._store.add_message(conversation_id, role, content)

    def add_messages(self, conversation_id: UUID, pairs: Sequence[Pair]) -> None:
        self._store.add_messages(conversation_id, pairs)

    def get_conversation(self, conversation_id: UUID) -> object:
        return self._store.get_conversation(conversation_id)

    def list_conversations(self, limit: int) -> object:
        return self._store.list_conversations(limit)

    def close(self) -> None:
        self._pool.close()


class PsycopgClient:
    """The jobs done with psycopg alone, sending the query text of hwlab_sql."""

    label = PSYCOPG

    ADD_MESSAGE: str = queries.add_message.sql
    ADD_MESSAGES: str = queries.add_messages.sql
    GET_CONVERSATION: str = queries.get_conversation.sql
    LIST_MESSAGES: str = queries.list_messages.sql
    LIST_CONVERSATIONS: str = queries.list_conversations.sql

    def __init__(self, dsn: str, pool_size: int) -> None:
        self._pool = open_pool(dsn, pool_size)

    def add_message(self, conversation_id: UUID, role: Role, content: str) -> UUID:
        params = {"conversation_id": conversation_id, "role": role, "content": content}
        with self._pool.connection() as conn:
            row = conn.execute(self.ADD_MESSAGE, params).fetchone()
        if row is None:
            raise NotFoundError(conversation_id)
        message_id: UUID = row[0]
        return message_id

    def add_messages(self, conversation_id: UUID, pairs: Sequence[Pair]) -> None:
        params = {
            "conversation_id": conversation_id,
            "roles": [role for role, _ in pairs],
            "contents": [content for _, content in pairs],
        }
        with self._pool.connection() as conn:
            rows = conn.execute(self.ADD_MESSAGES, params).fetchall()
        if len(rows) != len(pairs):
            raise NotFoundError(conversation_id)

    def get_conversation(self, conversation_id: UUID) -> object:
        params = {"conversation_id": conversation_id}
        with self._pool.connection() as conn:
            row = conn.execute(self.GET_CONVERSATION, params).fetchone()
            if row is None:
                raise NotFoundError(conversation_id)
            messages = conn.execute(self.LIST_MESSAGES, params).fetchall()
        return row, messages

    def list_conversations(self, limit: int) -> object:
        with self._pool.connection() as conn:
            return conn.execute(self.LIST_CONVERSATIONS, {"limit": limit}).fetchall()

    def close(self) -> None:
        self._pool.close()


class CopyClient(PsycopgClient):
    """Raw psycopg, with add_messages done by COPY: the bulk-ingest baseline.

    Each COPY runs on an autocommit connection, so it is one transaction, as
    one add_messages call is. COPY checks no conversation and returns no ids,
    so it does less than add_messages; the foreign key and the message_count
    triggers still run.
    """

    label = COPY

    COPY_MESSAGES = "COPY messages (conversation_id, role, content) FROM STDIN"

    def add_messages(self, conversation_id: UUID, pairs: Sequence[Pair]) -> None:
        with (
            self._pool.connection() as conn,
            conn.cursor() as cursor,
            cursor.copy(self.COPY_MESSAGES) as copy,
        ):
            for role, content in pairs:
                copy.write_row((conversation_id, role, content))


_metadata = sa.MetaData()

conversations_table = sa.Table(
    "conversations",
    _metadata,
    sa.Column(
        "id", sa.Uuid, primary_key=True, server_default=sa.func.gen_random_uuid()
    ),
    sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("model", sa.Text, server_default=""),
    sa.Column("message_count", sa.BigInteger, server_default="0"),
)

messages_table = sa.Table(
    "messages",
    _metadata,
    sa.Column(
        "id", sa.Uuid, primary_key=True, server_default=sa.func.gen_random_uuid()
    ),
    sa.Column("conversation_id", sa.Uuid, sa.ForeignKey("conversations.id")),
    sa.Column("role", sa.Text),
    sa.Column("content", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("seq", sa.BigInteger, sa.Identity(always=True)),
)


def _sqlalchemy_statements() -> dict[str, Any]:
    """Build the Core statements once, with bound parameters, as an app would."""
    c = conversations_table.c
    m = messages_table.c
    conversation_id = sa.bindparam("conversation_id", type_=sa.Uuid)
    add_message = (
        sa.insert(messages_table)
        .from_select(
            ["conversation_id", "role", "content"],
            sa.select(
                c.id,
                sa.bindparam("role", type_=sa.Text),
                sa.bindparam("content", type_=sa.Text),
            ).where(c.id == conversation_id),
        )
        .returning(m.id)
    )
    return {
        "add_message": add_message,
        # Core's batch INSERT: one multi-row VALUES statement per call.
        "add_messages": sa.insert(messages_table).returning(m.id),
        "get_conversation": sa.select(c.id, c.started_at, c.model).where(
            c.id == conversation_id
        ),
        "list_messages": sa.select(
            m.id, m.conversation_id, m.role, m.content, m.created_at
        )
        .where(m.conversation_id == conversation_id)
        .order_by(m.seq),
        "list_conversations": sa.select(c.id, c.started_at, c.model, c.message_count)
        .order_by(c.started_at.desc(), c.id.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer)),
    }


class SqlAlchemyClient:
    """The jobs done with SQLAlchemy 2 Core statements over the psycopg driver."""

    label = SQLALCHEMY

    def __init__(self, dsn: str, pool_size: int) -> None:
        def connect() -> psycopg.Connection[Any]:
            return psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT)

        self._engine = sa.create_engine(
            "postgresql+psycopg://",
            creator=connect,
            pool_size=pool_size,
            max_overflow=0,
            isolation_level="AUTOCOMMIT",
        )
        self._statements = _sqlalchemy_statements()

    def add_message(self, conversation_id: UUID, role: Role, content: str) -> UUID:
        params = {"conversation_id": conversation_id, "role": role, "content": content}
        with self._engine.connect() as conn:
            message_id: UUID | None = conn.execute(
                self._statements["add_message"], params
            ).scalar_one_or_none()
        if message_id is None:
            raise NotFoundError(conversation_id)
        return message_id

    def add_messages(self, conversation_id: UUID, pairs: Sequence[Pair]) -> None:
        rows = [
            {"conversation_id": conversation_id, "role": role, "content": content}
            for role, content in pairs
        ]
        # A missing conversation fails the foreign key, so nothing is stored.
        with self._engine.connect() as conn:
            conn.execute(self._statements["add_messages"], rows).all()

    def get_conversation(self, conversation_id: UUID) -> object:
        params = {"conversation_id": conversation_id}
        with self._engine.connect() as conn:
            row = conn.execute(self._statements["get_conversation"], params).first()
            if row is None:
                raise NotFoundError(conversation_id)
            messages = conn.execute(self._statements["list_messages"], params).all()
        return row, messages

    def list_conversations(self, limit: int) -> object:
        with self._engine.connect() as conn:
            return conn.execute(
                self._statements["list_conversations"], {"limit": limit}
            ).all()

    def close(self) -> None:
        self._engine.dispose()


CLIENT_TYPES: dict[str, type[FacadeClient | PsycopgClient | SqlAlchemyClient]] = {
    FACADE: FacadeClient,
    PSYCOPG: PsycopgClient,
    COPY: CopyClient,
    SQLALCHEMY: SqlAlchemyClient,
}


def open_client(label: str, dsn: str, pool_size: int) -> Client:
    """Open the client called *label* with a pool of *pool_size* connections."""
    return CLIENT_TYPES[label](dsn, pool_size)
