"""Bad input gets a clear ValueError or NotFoundError, and nothing is stored."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from hwlab_sql import NotFoundError, Store
from tests.helpers import count_rows

MISSING_ID = uuid.UUID("00000000-0000-4000-8000-000000000000")

BAD_IDS = [
    "not-a-uuid",
    "",
    "1234",
    "00000000-0000-4000-8000-00000000000",  # one digit short
    "00000000-0000-4000-8000-0000000000000",  # one digit long
    "g0000000-0000-4000-8000-000000000000",
    " 00000000-0000-4000-8000-000000000000",
    "{00000000-0000-4000-8000-000000000000}",
    "urn:uuid:00000000-0000-4000-8000-000000000000",
    "00000000-0000-4000-8000-000000000000; DROP TABLE messages",
    "'; DELETE FROM conversations; --",
    12345,
    None,
    b"\x00" * 16,
    3.5,
]


@pytest.mark.parametrize(
    "role", ["robot", "USER", "User", "", " user", "tool", None, 1]
)
def test_add_message_bad_role(
    store: Any, db: psycopg.Connection[Any], role: Any
) -> None:
    conversation_id = store.create_conversation()
    with pytest.raises(ValueError, match=r"role: .* is not a valid role") as caught:
        store.add_message(conversation_id, role, "text")
    message = str(caught.value)
    assert repr(role) in message
    for allowed in ("'user'", "'assistant'", "'system'"):
        assert allowed in message
    assert count_rows(db, "messages") == 0


def test_add_messages_bad_role_stores_none(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = store.create_conversation()
    pairs = [("user", "fine"), ("assistant", "fine too"), ("wizard", "bad")]
    with pytest.raises(ValueError, match=r"messages\[2\] role: 'wizard'"):
        store.add_messages(conversation_id, pairs)
    assert count_rows(db, "messages") == 0


def test_database_check_rejects_bad_role(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    """The CHECK constraint stops a bad role that bypasses the library."""
    conversation_id = store.create_conversation()
    with pytest.raises(psycopg.errors.CheckViolation) as caught:
        db.execute(
            "INSERT INTO messages (conversation_id, role, content)"
            " VALUES (%s, 'robot', 'x')",
            [conversation_id],
        )
    assert caught.value.diag.constraint_name == "messages_role_check"
    assert count_rows(db, "messages") == 0


@pytest.mark.parametrize(
    "text", ["\x00", "before\x00after", "é\x00", "x" * 1000 + "\x00"]
)
def test_add_message_content_with_nul(
    store: Any, db: psycopg.Connection[Any], text: str
) -> None:
    conversation_id = store.create_conversation()
    with pytest.raises(ValueError, match=r"content: contains a NUL character at index"):
        store.add_message(conversation_id, "user", text)
    assert count_rows(db, "messages") == 0


def test_add_messages_content_with_nul_stores_none(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = store.create_conversation()
    with pytest.raises(ValueError, match=r"messages\[1\] content: contains a NUL"):
        store.add_messages(conversation_id, [("user", "ok"), ("user", "bad\x00")])
    assert count_rows(db, "messages") == 0


def test_create_conversation_model_with_nul(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(ValueError, match=r"model: contains a NUL character at index 3"):
        store.create_conversation(model="gpt\x00-4o")
    assert count_rows(db, "conversations") == 0


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "emoji \ud83d alone"])
def test_add_message_lone_surrogate(
    store: Any, db: psycopg.Connection[Any], text: str
) -> None:
    conversation_id = store.create_conversation()
    with pytest.raises(ValueError, match=r"content: contains the lone surrogate"):
        store.add_message(conversation_id, "user", text)
    assert count_rows(db, "messages") == 0


@pytest.mark.parametrize("value", [None, 42, b"bytes"])
def test_add_message_content_not_str(
    store: Any, db: psycopg.Connection[Any], value: Any
) -> None:
    conversation_id = store.create_conversation()
    with pytest.raises(ValueError, match=r"content: expected a str"):
        store.add_message(conversation_id, "user", value)
    assert count_rows(db, "messages") == 0


@pytest.mark.parametrize("bad_id", BAD_IDS, ids=repr)
@pytest.mark.parametrize(
    "call",
    [
        lambda s, i: s.get_conversation(i),
        lambda s, i: s.delete_conversation(i),
        lambda s, i: s.add_message(i, "user", "x"),
        lambda s, i: s.add_messages(i, [("user", "x")]),
    ],
    ids=["get", "delete", "add_message", "add_messages"],
)
def test_bad_id_rejected_before_any_query(bad_id: Any, call: Any) -> None:
    # A pool that was never opened fails any query, so a ValueError proves
    # that none was sent.
    pool = ConnectionPool("host=127.0.0.1 port=1", open=False)
    store = Store(pool)
    with pytest.raises(
        ValueError, match=r"conversation_id: .* is not a UUID"
    ) as caught:
        call(store, bad_id)
    assert repr(bad_id)[:40] in str(caught.value)


def test_bad_id_leaves_data(store: Any, db: psycopg.Connection[Any]) -> None:
    conversation_id = store.create_conversation()
    with pytest.raises(ValueError, match="is not a UUID"):
        store.delete_conversation(f"{conversation_id}' OR '1'='1")
    assert count_rows(db, "conversations") == 1


def test_add_message_missing_conversation(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.add_message(MISSING_ID, "user", "nowhere")
    assert caught.value.conversation_id == MISSING_ID
    assert count_rows(db, "messages") == 0


def test_add_messages_missing_conversation(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(NotFoundError):
        store.add_messages(MISSING_ID, [("user", "a"), ("assistant", "b")])
    assert count_rows(db, "messages") == 0


@pytest.mark.parametrize("pair", ["user", ("user",), ("user", "a", "b"), None])
def test_add_messages_not_pairs(
    store: Any, db: psycopg.Connection[Any], pair: Any
) -> None:
    conversation_id = store.create_conversation()
    with pytest.raises(
        ValueError, match=r"messages\[1\]: .* is not a \(role, content\) pair"
    ):
        store.add_messages(conversation_id, [("user", "ok"), pair])
    assert count_rows(db, "messages") == 0


HOSTILE_TEXTS = [
    "'; DROP TABLE messages; --",
    "Robert'); DELETE FROM conversations WHERE ('1'='1",
    "%(content)s %s %% :conversation_id $1 ?",
    "\"double\" 'single' `back` \\backslash\\",
    "emoji 🤖👩‍💻🇫🇷 and ZWJ",
    "\u202eright-to-left override\u202c and \u200f mark",
    "tab\tnewline\nreturn\r\nbell\x07",
    "∀x ∈ ℝ: x² ≥ 0; 中文; العربية",
    "",
    " ",
    "$$ dollar $$ quoted $tag$",
    "/* comment */ -- comment",
]


@pytest.mark.parametrize("text", HOSTILE_TEXTS, ids=range(len(HOSTILE_TEXTS)))
def test_hostile_text_round_trips(store: Any, text: str) -> None:
    conversation_id = store.create_conversation(model=text)
    store.add_message(conversation_id, "user", text)
    store.add_messages(conversation_id, [("assistant", text)])
    conversation = store.get_conversation(conversation_id)
    assert conversation.model == text
    assert [m.content for m in conversation.messages] == [text, text]
    assert [m.content.encode() for m in conversation.messages] == [text.encode()] * 2


def test_one_megabyte_round_trips(store: Any) -> None:
    text = ("0123456789abcdef€🤖" * 60_000)[:1_048_576]
    conversation_id = store.create_conversation()
    store.add_message(conversation_id, "assistant", text)
    store.add_messages(conversation_id, [("user", text), ("assistant", text)])
    messages = store.get_conversation(conversation_id).messages
    assert len(messages) == 3
    for message in messages:
        assert len(message.content) == len(text)
        assert message.content == text
