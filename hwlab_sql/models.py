"""Typed, immutable results of the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

Role = Literal["user", "assistant", "system"]
ROLES: tuple[Role, ...] = ("user", "assistant", "system")


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation."""

    id: UUID
    conversation_id: UUID
    role: Role
    content: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation with its messages in the order they were added."""

    id: UUID
    started_at: datetime
    model: str
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as listed: without its messages, with their number."""

    id: UUID
    started_at: datetime
    model: str
    message_count: int
