"""The triggers keep conversations.message_count equal to the number of messages.

These statements bypass the library, as a DBA's or an import script's would.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest


def _create(db: psycopg.Connection[Any], count: int) -> list[UUID]:
    rows = db.execute(
        "INSERT INTO conversations (model) SELECT 'm' FROM generate_series(1, %s)"
        " RETURNING id",
        [count],
    ).fetchall()
    return [row[0] for row in rows]


def _insert(db: psycopg.Connection[Any], conversation_id: UUID, count: int) -> None:
    db.execute(
        "INSERT INTO messages (conversation_id, role, content)"
        " SELECT %s, 'user', 'text ' || n FROM generate_series(1, %s) AS n",
        [conversation_id, count],
    )


def _scalar(db: psycopg.Connection[Any], query: str, conversation_id: UUID) -> int:
    row = db.execute(query, [conversation_id]).fetchone()
    assert row is not None
    return int(row[0])


def _stored_counts(db: psycopg.Connection[Any], ids: list[UUID]) -> list[int]:
    query = "SELECT message_count FROM conversations WHERE id = %s"
    return [_scalar(db, query, i) for i in ids]


def _actual_counts(db: psycopg.Connection[Any], ids: list[UUID]) -> list[int]:
    query = "SELECT count(*) FROM messages WHERE conversation_id = %s"
    return [_scalar(db, query, i) for i in ids]


def test_counts_after_one_insert_into_several(db: psycopg.Connection[Any]) -> None:
    ids = _create(db, 3)
    db.execute(
        "INSERT INTO messages (conversation_id, role, content)"
        " SELECT c, 'user', 'x' FROM unnest(%s::uuid[]) AS c,"
        " generate_series(1, 4) AS n",
        [[ids[0], ids[1], ids[1]]],
    )
    assert _stored_counts(db, ids) == [4, 8, 0]
    assert _actual_counts(db, ids) == [4, 8, 0]


def test_counts_after_copy(db: psycopg.Connection[Any]) -> None:
    ids = _create(db, 2)
    with (
        db.cursor() as cursor,
        cursor.copy(
            "COPY messages (conversation_id, role, content) FROM STDIN"
        ) as copy,
    ):
        for n in range(5):
            copy.write_row((ids[n % 2], "user", f"copied {n}"))
    assert _stored_counts(db, ids) == [3, 2]


def test_counts_after_delete(db: psycopg.Connection[Any]) -> None:
    ids = _create(db, 2)
    _insert(db, ids[0], 5)
    _insert(db, ids[1], 3)
    db.execute(
        "DELETE FROM messages WHERE content IN ('text 1', 'text 2')"
        " AND conversation_id = ANY(%s)",
        [ids],
    )
    assert _stored_counts(db, ids) == [3, 1]
    assert _actual_counts(db, ids) == [3, 1]


def test_counts_after_moving_messages(db: psycopg.Connection[Any]) -> None:
    ids = _create(db, 3)
    _insert(db, ids[0], 4)
    _insert(db, ids[1], 2)
    db.execute(
        "UPDATE messages SET conversation_id = %s WHERE conversation_id = ANY(%s)"
        " AND content IN ('text 1', 'text 2')",
        [ids[2], [ids[0], ids[1]]],
    )
    assert _stored_counts(db, ids) == [2, 0, 4]
    assert _actual_counts(db, ids) == [2, 0, 4]


def test_counts_after_update_in_place(db: psycopg.Connection[Any]) -> None:
    ids = _create(db, 1)
    _insert(db, ids[0], 3)
    db.execute("UPDATE messages SET content = content || '!'")
    assert _stored_counts(db, ids) == [3]


def test_counts_after_truncate(db: psycopg.Connection[Any]) -> None:
    ids = _create(db, 2)
    _insert(db, ids[0], 2)
    _insert(db, ids[1], 1)
    db.execute("TRUNCATE messages")
    assert _stored_counts(db, ids) == [0, 0]


@pytest.mark.parametrize("first_rows", [1, 2_000])
def test_counts_after_first_insert_of_session(
    db: psycopg.Connection[Any], dsn: str, first_rows: int
) -> None:
    """The size of a session's first insert does not change later counts."""
    ids = _create(db, 50)
    with psycopg.connect(dsn, autocommit=True) as session:
        _insert(session, ids[0], first_rows)
        for conversation_id in ids[1:]:
            _insert(session, conversation_id, 1)
    assert _stored_counts(db, ids) == [first_rows] + [1] * 49
