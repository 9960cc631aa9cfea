"""Behaviour of the facade, run against Store and AsyncStore alike."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timezone
from typing import Any

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from hwlab_sql import (
    Conversation,
    ConversationSummary,
    ErrNotFound,
    Message,
    NotFoundError,
    Store,
)
from tests.helpers import count_rows

MISSING_ID = uuid.UUID("00000000-0000-4000-8000-000000000000")


def test_create_conversation_returns_uuid(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = store.create_conversation(model="gpt-4o")
    assert isinstance(conversation_id, uuid.UUID)
    row = db.execute(
        "SELECT model, message_count FROM conversations WHERE id = %s",
        [conversation_id],
    ).fetchone()
    assert row == ("gpt-4o", 0)


def test_create_conversation_default_model(store: Any) -> None:
    conversation_id = store.create_conversation()
    assert store.get_conversation(conversation_id).model == ""


def test_add_message_returns_id_and_stores(store: Any) -> None:
    conversation_id = store.create_conversation(model="m")
    message_id = store.add_message(conversation_id, "user", "Hello")
    conversation = store.get_conversation(conversation_id)
    assert isinstance(message_id, uuid.UUID)
    assert [m.id for m in conversation.messages] == [message_id]
    message = conversation.messages[0]
    assert message.conversation_id == conversation_id
    assert message.role == "user"
    assert message.content == "Hello"


def test_add_message_accepts_string_id(store: Any) -> None:
    conversation_id = store.create_conversation()
    store.add_message(str(conversation_id), "system", "Be brief.")
    store.add_message(str(conversation_id).upper(), "user", "Hi")
    assert len(store.get_conversation(conversation_id).messages) == 2


def test_add_messages_keeps_order_and_returns_ids(store: Any) -> None:
    conversation_id = store.create_conversation()
    pairs = [("user", f"message {i}") for i in range(50)]
    ids = store.add_messages(conversation_id, pairs)
    conversation = store.get_conversation(conversation_id)
    assert ids == [m.id for m in conversation.messages]
    assert [m.content for m in conversation.messages] == [c for _, c in pairs]


def test_add_messages_shares_one_transaction(store: Any) -> None:
    """Messages of one add_messages call share created_at, yet keep their order."""
    conversation_id = store.create_conversation()
    store.add_messages(
        conversation_id, [("user", "a"), ("assistant", "b"), ("user", "c")]
    )
    messages = store.get_conversation(conversation_id).messages
    assert len({m.created_at for m in messages}) == 1
    assert [m.content for m in messages] == ["a", "b", "c"]


def test_add_messages_empty_list(store: Any, db: psycopg.Connection[Any]) -> None:
    conversation_id = store.create_conversation()
    assert store.add_messages(conversation_id, []) == []
    assert count_rows(db, "messages") == 0


def test_add_messages_empty_list_missing_conversation(store: Any) -> None:
    with pytest.raises(NotFoundError):
        store.add_messages(MISSING_ID, [])


def test_add_messages_accepts_generator(store: Any) -> None:
    conversation_id = store.create_conversation()
    ids = store.add_messages(conversation_id, ((r, c) for r, c in [("user", "x")]))
    assert len(ids) == 1


def test_get_conversation_types(store: Any) -> None:
    conversation_id = store.create_conversation(model="gpt-4o")
    store.add_message(conversation_id, "user", "Hi")
    conversation = store.get_conversation(conversation_id)
    assert isinstance(conversation, Conversation)
    assert isinstance(conversation.messages, tuple)
    assert isinstance(conversation.messages[0], Message)
    assert conversation.started_at.tzinfo is not None
    assert conversation.messages[0].created_at.utcoffset() is not None
    assert conversation.started_at.astimezone(timezone.utc).year >= 2024


def test_results_are_frozen(store: Any) -> None:
    conversation_id = store.create_conversation()
    conversation = store.get_conversation(conversation_id)
    with pytest.raises(AttributeError):
        conversation.model = "other"


def test_get_conversation_missing(store: Any) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.get_conversation(MISSING_ID)
    assert caught.value.conversation_id == MISSING_ID
    assert str(MISSING_ID) in str(caught.value)


def test_err_not_found_alias() -> None:
    assert ErrNotFound is NotFoundError


def test_delete_conversation_removes_messages(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = store.create_conversation()
    store.add_messages(conversation_id, [("user", "a"), ("assistant", "b")])
    store.delete_conversation(conversation_id)
    assert count_rows(db, "conversations") == 0
    assert count_rows(db, "messages") == 0
    with pytest.raises(NotFoundError):
        store.get_conversation(conversation_id)


def test_delete_conversation_missing(store: Any) -> None:
    with pytest.raises(NotFoundError):
        store.delete_conversation(MISSING_ID)


def test_delete_leaves_other_conversations(store: Any) -> None:
    kept_id = store.create_conversation()
    store.add_message(kept_id, "user", "stay")
    deleted_id = store.create_conversation()
    store.delete_conversation(deleted_id)
    assert [m.content for m in store.get_conversation(kept_id).messages] == ["stay"]


def test_list_conversations_newest_first(store: Any) -> None:
    ids = [store.create_conversation(model=f"m{i}") for i in range(3)]
    summaries = store.list_conversations()
    assert [s.id for s in summaries] == list(reversed(ids))
    assert all(isinstance(s, ConversationSummary) for s in summaries)


def test_list_conversations_counts_messages(store: Any) -> None:
    conversation_id = store.create_conversation()
    store.add_message(conversation_id, "user", "a")
    store.add_messages(conversation_id, [("assistant", "b"), ("user", "c")])
    (summary,) = store.list_conversations()
    assert summary.message_count == 3


def test_list_conversations_limit(store: Any) -> None:
    for _ in range(5):
        store.create_conversation()
    assert len(store.list_conversations(limit=2)) == 2
    assert len(store.list_conversations(limit=1)) == 1


def test_list_conversations_caps_limit_at_100(store: Any) -> None:
    conversation_id = store.create_conversation()
    store.add_messages(conversation_id, [])
    with store.transaction() as tx:
        for _ in range(120):
            tx.create_conversation()
    assert len(store.list_conversations(limit=1000)) == 100
    assert len(store.list_conversations()) == 100


@pytest.mark.parametrize("limit", [0, -1, -100])
def test_list_conversations_limit_below_one(store: Any, limit: int) -> None:
    with pytest.raises(ValueError, match=f"limit: {limit} is below 1"):
        store.list_conversations(limit=limit)


@pytest.mark.parametrize("limit", ["10", 2.5, None, True])
def test_list_conversations_limit_not_int(store: Any, limit: Any) -> None:
    with pytest.raises(ValueError, match=r"limit: .* is not an int"):
        store.list_conversations(limit=limit)


def test_list_conversations_keyset_paging(store: Any) -> None:
    with store.transaction() as tx:
        # One transaction: every started_at is equal, so the id breaks ties.
        created = {tx.create_conversation() for _ in range(7)}
    created |= {store.create_conversation() for _ in range(5)}
    seen: list[uuid.UUID] = []
    page = store.list_conversations(limit=5)
    while page:
        seen.extend(s.id for s in page)
        page = store.list_conversations(limit=5, before=page[-1])
    assert len(seen) == 12
    assert set(seen) == created
    keys = [(s.started_at, s.id) for s in _summaries_by_id(store, seen)]
    assert keys == sorted(keys, reverse=True)


def _summaries_by_id(store: Any, ids: list[uuid.UUID]) -> list[ConversationSummary]:
    every = {s.id: s for s in store.list_conversations()}
    return [every[i] for i in ids]


def test_list_conversations_before_rejects_other_types(store: Any) -> None:
    with pytest.raises(ValueError, match="before: expected a ConversationSummary"):
        store.list_conversations(before=str(MISSING_ID))


def test_list_conversations_empty(store: Any) -> None:
    assert store.list_conversations() == []


def test_transaction_commits_together(store: Any, db: psycopg.Connection[Any]) -> None:
    with store.transaction() as tx:
        conversation_id = tx.create_conversation(model="m")
        tx.add_message(conversation_id, "user", "one")
        tx.add_messages(conversation_id, [("assistant", "two")])
        assert count_rows(db, "conversations") == 0  # not visible before commit
    assert count_rows(db, "conversations") == 1
    assert count_rows(db, "messages") == 2


def test_transaction_rolls_back_on_error(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as tx:
        conversation_id = tx.create_conversation()
        tx.add_message(conversation_id, "user", "lost")
        raise RuntimeError("boom")
    assert count_rows(db, "conversations") == 0
    assert count_rows(db, "messages") == 0


def test_transaction_rolls_back_on_not_found(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(NotFoundError), store.transaction() as tx:
        tx.create_conversation()
        tx.add_message(MISSING_ID, "user", "nowhere")
    assert count_rows(db, "conversations") == 0


def test_transaction_order_with_equal_timestamps(store: Any) -> None:
    with store.transaction() as tx:
        conversation_id = tx.create_conversation()
        for i in range(20):
            tx.add_message(conversation_id, "user", str(i))
    messages = store.get_conversation(conversation_id).messages
    assert len({m.created_at for m in messages}) == 1
    assert [m.content for m in messages] == [str(i) for i in range(20)]


def test_transaction_reads_own_writes(store: Any) -> None:
    with store.transaction() as tx:
        conversation_id = tx.create_conversation()
        tx.add_message(conversation_id, "user", "visible")
        assert [m.content for m in tx.get_conversation(conversation_id).messages] == [
            "visible"
        ]
        assert tx.list_conversations()[0].message_count == 1
        tx.delete_conversation(conversation_id)


def test_transaction_unusable_after_block(store: Any) -> None:
    with store.transaction() as tx:
        pass
    with pytest.raises(RuntimeError, match="used after its"):
        tx.create_conversation()


def test_store_wraps_application_pool(dsn: str, db: psycopg.Connection[Any]) -> None:
    with ConnectionPool(dsn, min_size=1, max_size=2, open=True) as pool:
        store = Store(pool)
        conversation_id = store.create_conversation(model="own pool")
        store.add_message(conversation_id, "user", "hi")
        assert store.pool is pool
        store.close()
        assert not pool.closed  # the application owns it
        assert store.get_conversation(conversation_id).model == "own pool"
    assert count_rows(db, "messages") == 1


def test_store_open_closes_its_pool(dsn: str) -> None:
    with Store.open(dsn, min_size=1) as store:
        pool = store.pool
        assert not pool.closed
    assert pool.closed


def test_store_repr_names_server_not_dsn(dsn: str) -> None:
    with Store.open(dsn, min_size=1) as store:
        text = repr(store)
    assert text.startswith("<Store ")
    assert "password" not in text


def test_store_run_migrations_is_repeatable(store: Any) -> None:
    # The template database is migrated already: nothing is left to apply.
    assert store.run_migrations() == []
    assert store.run_migrations() == []


def test_add_message_loses_race_with_delete(
    sync_store: Store, dsn: str, db: psycopg.Connection[Any]
) -> None:
    """A delete committed while the insert waits on its row gives NotFoundError."""
    conversation_id = sync_store.create_conversation()
    outcome: list[BaseException | uuid.UUID] = []

    with psycopg.connect(dsn) as deleter:
        deleter.execute("DELETE FROM conversations WHERE id = %s", [conversation_id])

        def add() -> None:
            try:
                outcome.append(sync_store.add_message(conversation_id, "user", "late"))
            except BaseException as exc:  # inspected below
                outcome.append(exc)

        # The insert finds the row, then its foreign key check waits for the
        # deleting transaction, which commits and removes the row.
        writer = threading.Thread(target=add)
        writer.start()
        _wait_for_lock_wait(db)
        deleter.commit()
        writer.join(timeout=30)

    assert len(outcome) == 1
    assert isinstance(outcome[0], NotFoundError)
    assert isinstance(outcome[0].__cause__, psycopg.errors.ForeignKeyViolation)
    assert count_rows(db, "messages") == 0


def _wait_for_lock_wait(db: psycopg.Connection[Any]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = db.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
        if row is not None and row[0] > 0:
            return
        time.sleep(0.02)
    raise AssertionError("the insert never waited for the delete's lock")
