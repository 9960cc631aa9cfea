"""Messages come back in the order they were added, whatever their timestamps are.

created_at is the start time of the inserting transaction, with microsecond
resolution, so messages of one transaction share it and messages of separate
transactions can share it too; a clock stepped back can even reverse it.
The tests rewrite created_at to create those cases on demand.
"""

from __future__ import annotations

from typing import Any

import psycopg

COUNT = 50


def _contents(store: Any, conversation_id: Any) -> list[str]:
    return [m.content for m in store.get_conversation(conversation_id).messages]


def test_one_transaction_keeps_order(store: Any) -> None:
    conversation_id = store.create_conversation()
    with store.transaction() as tx:
        for i in range(COUNT // 2):
            tx.add_message(conversation_id, "user", f"single {i}")
        tx.add_messages(
            conversation_id, [("assistant", f"batch {i}") for i in range(COUNT // 2)]
        )
    messages = store.get_conversation(conversation_id).messages
    assert len({m.created_at for m in messages}) == 1
    expected = [f"single {i}" for i in range(COUNT // 2)]
    expected += [f"batch {i}" for i in range(COUNT // 2)]
    assert [m.content for m in messages] == expected


def test_same_microsecond_keeps_order(store: Any, db: psycopg.Connection[Any]) -> None:
    conversation_id = store.create_conversation()
    for i in range(COUNT):
        store.add_message(conversation_id, "user", str(i))
    # As if every call had started in the same microsecond.
    db.execute(
        "UPDATE messages SET created_at = '2025-01-01 12:00:00.123456+00'"
        " WHERE conversation_id = %s",
        [conversation_id],
    )
    assert _contents(store, conversation_id) == [str(i) for i in range(COUNT)]


def test_clock_stepped_back_keeps_order(
    store: Any, db: psycopg.Connection[Any]
) -> None:
    conversation_id = store.create_conversation()
    store.add_messages(conversation_id, [("user", str(i)) for i in range(COUNT)])
    for i in range(COUNT, 2 * COUNT):
        store.add_message(conversation_id, "assistant", str(i))
    # Each later message looks one second older than the one before it.
    db.execute(
        "UPDATE messages SET created_at = '2025-01-01 12:00:00+00'::timestamptz"
        " - seq * interval '1 second' WHERE conversation_id = %s",
        [conversation_id],
    )
    assert _contents(store, conversation_id) == [str(i) for i in range(2 * COUNT)]
