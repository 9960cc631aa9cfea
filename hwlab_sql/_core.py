"""Input checks, query parameters and typed results shared by every facade.

Store, AsyncStore and their transactions run the same named queries. What a
method sends and what it builds from the rows is defined here once, so the
facades differ only in how they reach a connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.array import ListBinaryDumper

from . import _checks
from .errors import NotFoundError
from .models import Conversation, ConversationSummary, Message

Params = dict[str, Any]
Row = Sequence[Any]

_MESSAGES_FKEY = "messages_conversation_id_fkey"


class BinaryTextArray(list[str]):
    """A list of str that psycopg sends as a binary text[] parameter.

    psycopg 3.3 escapes and quotes each element of a text-format array in
    Python. With 100 messages of 200 characters that took 0.9 ms of a 5 ms
    add_messages call (benchmarks/, 2 CPUs, Python 3.11). The binary format
    sends the elements unchanged.
    """


# A %s placeholder uses the dumper registered last for the value's type. The
# type is private to hwlab_sql, so no other value changes format.
psycopg.adapters.register_dumper(BinaryTextArray, ListBinaryDumper)


def conversation_params(model: object) -> Params:
    """Return the parameters of create_conversation."""
    return {"model": _checks.check_text(model, "model")}


def id_params(conversation_id: object) -> Params:
    """Return the parameters of a query about one conversation."""
    return {"conversation_id": _checks.to_uuid(conversation_id)}


def message_params(conversation_id: object, role: object, content: object) -> Params:
    """Return the parameters of add_message."""
    return {
        "conversation_id": _checks.to_uuid(conversation_id),
        "role": _checks.check_role(role),
        "content": _checks.check_text(content, "content"),
    }


def messages_params(
    conversation_id: object, messages: Iterable[tuple[str, str]]
) -> Params:
    """Return the parameters of add_messages."""
    conversation_uuid = _checks.to_uuid(conversation_id)
    roles, contents = _checks.check_messages(messages)
    return {
        "conversation_id": conversation_uuid,
        "roles": BinaryTextArray(roles),
        "contents": BinaryTextArray(contents),
    }


def list_query(limit: object, before: object) -> tuple[str, Params]:
    """Return the name and parameters of the listing query for one page.

    *before* is None for the first page, or the last ConversationSummary (or
    Conversation) of the previous page.
    """
    checked_limit = _checks.check_limit(limit)
    if before is None:
        return "list_conversations", {"limit": checked_limit}
    if not isinstance(before, ConversationSummary | Conversation):
        raise ValueError(
            f"before: expected a ConversationSummary from the previous page,"
            f" got {type(before).__name__}"
        )
    if not isinstance(before.started_at, datetime) or before.started_at.tzinfo is None:
        raise ValueError(
            f"before: started_at {before.started_at!r} is not a timezone-aware"
            " datetime; pass a summary returned by list_conversations"
        )
    return "list_conversations_before", {
        "before_started_at": before.started_at,
        "before_id": _checks.to_uuid(before.id, "before.id"),
        "limit": checked_limit,
    }


def require_found(value: Any, conversation_id: UUID) -> Any:
    """Return *value*, or raise NotFoundError when the query found no row."""
    if value is None:
        raise NotFoundError(conversation_id)
    return value


def require_deleted(count: int, conversation_id: UUID) -> None:
    """Raise NotFoundError when a delete removed no row."""
    if count == 0:
        raise NotFoundError(conversation_id)


def require_ids(
    rows: Sequence[Row], expected: int, conversation_id: UUID
) -> list[UUID]:
    """Return the ids add_messages returned, or raise when nothing was stored."""
    if len(rows) != expected:
        # The statement inserts every message or none: none means no conversation.
        raise NotFoundError(conversation_id)
    return [row[0] for row in rows]


@contextmanager
def missing_conversation_as_not_found(conversation_id: UUID) -> Iterator[None]:
    """Raise NotFoundError when an insert loses a race with a delete.

    The insert queries check that the conversation exists, but it can be
    deleted between that check and the foreign key's. The server then rejects
    the insert, and nothing is stored.
    """
    try:
        yield
    except psycopg.errors.ForeignKeyViolation as exc:
        if exc.diag.constraint_name != _MESSAGES_FKEY:
            raise
        raise NotFoundError(conversation_id) from exc


def build_conversation(row: Row, message_rows: Iterable[Row]) -> Conversation:
    """Return a Conversation from get_conversation's row and its messages."""
    messages = tuple(Message(*message_row) for message_row in message_rows)
    return Conversation(id=row[0], started_at=row[1], model=row[2], messages=messages)


def build_summaries(rows: Iterable[Row]) -> list[ConversationSummary]:
    """Return the summaries of list_conversations' rows."""
    return [ConversationSummary(*row) for row in rows]
