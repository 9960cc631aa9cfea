"""Property tests: text round-trips byte for byte, or is rejected and not stored.

PostgreSQL text cannot hold NUL, and UTF-8 cannot encode a lone surrogate;
those two are the only texts the store may reject, with a ValueError. Ids in
any form other than a UUID or its 36- or 32-character text are rejected before
a query is sent.

The stores and their database are shared by the examples of a module, because
hypothesis runs many examples per test function.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolClosed

from hwlab_sql import AsyncStore, Store
from hwlab_sql.migrations import run_migrations
from tests.helpers import AsyncAsSync

# Fragments with a special meaning in SQL, string formatting, Unicode or terminals.
FRAGMENTS = [
    "'",
    "''",
    '"',
    "\\",
    "\\x00",
    "'; DROP TABLE messages; --",
    "') OR ('1'='1",
    "$$",
    "$tag$",
    "$1",
    "%s",
    "%(content)s",
    ":content",
    "?",
    "/*",
    "*/",
    "--",
    ";",
    "\x00",
    "\u200f",  # right-to-left mark
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\ufeff",  # byte order mark
    "\u0085",  # next line
    "\u2028",  # line separator
    "e\u0301",  # combining acute accent
    "\ufffe",  # noncharacter
    "\U0010ffff",
    "\U0001f916",
    "\ud800",  # lone high surrogate
    "\udfff",  # lone low surrogate
    "\r\n",
    "\x1b[31m",  # terminal escape
]

ANY_CHARACTER = st.characters(exclude_categories=())
HOSTILE_TEXT = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(ANY_CHARACTER, max_size=20)),
    max_size=12,
).map("".join)

MEGABYTE = 1_000_000
BIG_TEXTS = [
    ("€ab\U0001f916\u202e'--" * (MEGABYTE // 7))[:MEGABYTE],
    "x" * (MEGABYTE - 1) + "\x00",
    "y" * (MEGABYTE - 1) + "\ud83d",
]

EXAMPLES = 60
ROLES = ["user", "assistant", "system"]


def _storable(text: str) -> bool:
    """Tell whether PostgreSQL text can hold *text* unchanged."""
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@pytest.fixture(scope="module")
def hostile_dsn(postgresql_server: Any) -> Iterator[str]:
    """A migrated database of this module's own, dropped at its end."""
    server = {
        "host": postgresql_server.host,
        "port": postgresql_server.port,
        "user": postgresql_server.user,
        "password": postgresql_server.password or None,
    }
    name = f"hwlab_sql_hostile_{uuid.uuid4().hex[:12]}"
    identifier = sql.Identifier(name)
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(identifier))
        try:
            with psycopg.connect(dbname=name, **server) as conn:
                run_migrations(conn)
            yield psycopg.conninfo.make_conninfo(dbname=name, **server)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(identifier))


@pytest.fixture(scope="module")
def hostile_db(hostile_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(hostile_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module", params=["sync", "async"])
def shared_store(request: pytest.FixtureRequest, hostile_dsn: str) -> Iterator[Any]:
    """A Store, or an AsyncStore driven through blocking calls, for a whole module."""
    if request.param == "sync":
        with Store.open(hostile_dsn, min_size=1, max_size=2) as store:
            yield store
        return
    with asyncio.Runner() as runner:

        async def open_async() -> AsyncStore:
            return await AsyncStore.open(hostile_dsn, min_size=1, max_size=2)

        async_store = runner.run(open_async())
        try:
            yield AsyncAsSync(async_store, runner)
        finally:
            runner.run(async_store.close())


def _stored_bytes(
    db: psycopg.Connection[Any], conversation_id: uuid.UUID
) -> list[bytes]:
    """Return the UTF-8 bytes the server holds for a conversation's messages."""
    rows = db.execute(
        "SELECT convert_to(content, 'UTF8') FROM messages"
        " WHERE conversation_id = %s ORDER BY seq",
        [conversation_id],
    ).fetchall()
    return [bytes(row[0]) for row in rows]


@settings(max_examples=EXAMPLES, deadline=None)
@given(text=HOSTILE_TEXT)
@example(text=BIG_TEXTS[0])
@example(text=BIG_TEXTS[1])
@example(text=BIG_TEXTS[2])
def test_message_round_trips_or_rejected(
    shared_store: Any, hostile_db: psycopg.Connection[Any], text: str
) -> None:
    conversation_id = shared_store.create_conversation()
    if not _storable(text):
        with pytest.raises(ValueError, match=r"^content: contains (a NUL|the lone)"):
            shared_store.add_message(conversation_id, "user", text)
        assert _stored_bytes(hostile_db, conversation_id) == []
        return
    message_id = shared_store.add_message(conversation_id, "user", text)
    (message,) = shared_store.get_conversation(conversation_id).messages
    assert message.id == message_id
    assert message.content == text
    assert message.content.encode("utf-8") == text.encode("utf-8")
    assert _stored_bytes(hostile_db, conversation_id) == [text.encode("utf-8")]


@settings(max_examples=EXAMPLES, deadline=None)
@given(texts=st.lists(HOSTILE_TEXT, min_size=1, max_size=8), data=st.data())
def test_batch_round_trips_or_stores_none(
    shared_store: Any,
    hostile_db: psycopg.Connection[Any],
    texts: list[str],
    data: st.DataObject,
) -> None:
    roles = [data.draw(st.sampled_from(ROLES)) for _ in texts]
    conversation_id = shared_store.create_conversation()
    pairs = list(zip(roles, texts, strict=True))
    first_bad = next((i for i, t in enumerate(texts) if not _storable(t)), None)
    if first_bad is not None:
        with pytest.raises(ValueError, match=rf"^messages\[{first_bad}\] content: "):
            shared_store.add_messages(conversation_id, pairs)
        assert _stored_bytes(hostile_db, conversation_id) == []
        return
    shared_store.add_messages(conversation_id, pairs)
    messages = shared_store.get_conversation(conversation_id).messages
    assert [(m.role, m.content) for m in messages] == pairs
    assert _stored_bytes(hostile_db, conversation_id) == [
        t.encode("utf-8") for t in texts
    ]


@settings(max_examples=EXAMPLES, deadline=None)
@given(model=HOSTILE_TEXT)
def test_model_round_trips_or_rejected(
    shared_store: Any, hostile_db: psycopg.Connection[Any], model: str
) -> None:
    before = hostile_db.execute("SELECT count(*) FROM conversations").fetchone()
    if not _storable(model):
        with pytest.raises(ValueError, match=r"^model: contains (a NUL|the lone)"):
            shared_store.create_conversation(model=model)
        after = hostile_db.execute("SELECT count(*) FROM conversations").fetchone()
        assert after == before
        return
    conversation_id = shared_store.create_conversation(model=model)
    assert shared_store.get_conversation(conversation_id).model == model


# Ids. The library's own pattern is not reused here: this is the contract.
VALID_ID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}"
)


def _id_variants(value: uuid.UUID) -> st.SearchStrategy[str]:
    """Return near misses of *value*'s text: each one character or form away."""
    text = str(value)
    positions = st.integers(min_value=0, max_value=len(text) - 1)
    return st.one_of(
        positions.map(lambda i: text[:i] + text[i + 1 :]),  # one character short
        st.tuples(positions, ANY_CHARACTER).map(
            lambda p: text[: p[0]] + p[1] + text[p[0] :]  # one character more
        ),
        st.tuples(positions, ANY_CHARACTER).map(
            lambda p: text[: p[0]] + p[1] + text[p[0] + 1 :]  # one character swapped
        ),
        st.sampled_from(
            [
                "{" + text + "}",
                "urn:uuid:" + text,
                " " + text,
                text + "\n",
                text.replace("-", "", 1),  # one hyphen missing
                text.replace("-", ""),
                text.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
                text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
                text + "; DROP TABLE messages",
                text + "\x00",
            ]
        ),
    )


MALFORMED_ID = st.one_of(
    st.uuids().flatmap(_id_variants),
    st.text(ANY_CHARACTER, max_size=40),
    st.sampled_from(FRAGMENTS),
    st.integers(),
    st.floats(),
    st.binary(max_size=16),
    st.uuids().map(lambda u: u.bytes),
    st.uuids().map(lambda u: u.int),
    st.none(),
    st.booleans(),
).filter(lambda v: not (isinstance(v, str) and VALID_ID_TEXT.fullmatch(v)))

CALLS = {
    "get_conversation": lambda s, i: s.get_conversation(i),
    "delete_conversation": lambda s, i: s.delete_conversation(i),
    "add_message": lambda s, i: s.add_message(i, "user", "x"),
    "add_messages": lambda s, i: s.add_messages(i, [("user", "x")]),
}


@pytest.fixture(scope="module")
def closed_stores() -> Iterator[list[Any]]:
    """A Store and an AsyncStore on pools never opened: any query raises PoolClosed."""
    runner = asyncio.Runner()
    sync_pool: ConnectionPool[Any] = ConnectionPool("host=127.0.0.1 port=1", open=False)
    async_pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        "host=127.0.0.1 port=1", open=False
    )
    with runner:
        yield [Store(sync_pool), AsyncAsSync(AsyncStore(async_pool), runner)]


@settings(max_examples=EXAMPLES * 3, deadline=None)
@given(value=MALFORMED_ID, call=st.sampled_from(sorted(CALLS)))
def test_malformed_id_rejected_before_query(
    closed_stores: list[Any], value: Any, call: str
) -> None:
    for store in closed_stores:
        with pytest.raises(ValueError, match=r"^conversation_id: .* is not a UUID"):
            CALLS[call](store, value)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    value=st.uuids().flatmap(
        lambda u: st.sampled_from([u, str(u), str(u).upper(), u.hex, u.hex.upper()])
    ),
    call=st.sampled_from(sorted(CALLS)),
)
def test_well_formed_id_reaches_pool(
    closed_stores: list[Any], value: Any, call: str
) -> None:
    """The check is not simply rejecting everything: valid ids go on to the pool."""
    for store in closed_stores:
        with pytest.raises(PoolClosed):
            CALLS[call](store, value)
