"""Read and write chat transcripts in the OpenAI chat format.

A transcript is a JSON object ``{"model": ..., "messages": [{"role": ...,
"content": ...}, ...]}``, the shape of a chat completion request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from . import _checks
from .models import ROLES, Conversation, Role
from .store import Store


@dataclass(frozen=True, slots=True)
class Transcript:
    """A conversation to import: its model and (role, content) pairs in order."""

    model: str
    messages: tuple[tuple[Role, str], ...]


def parse_transcript(text: str | bytes, *, source: str = "transcript") -> Transcript:
    """Parse and check a transcript; errors name *source* and the bad field.

    Content given as a list of ``{"type": "text", "text": ...}`` parts is
    joined into one string.

    :raises ValueError: when the JSON is invalid or a field is missing or wrong.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: invalid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{source}: not UTF-8 text: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object with a messages list")
    model = data.get("model", "")
    if model is None:
        model = ""
    model = _checks.check_text(model, f"{source}: model")
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list):
        raise ValueError(f"{source}: messages: expected a list of messages")
    messages = tuple(
        _parse_message(item, f"{source}: messages[{index}]")
        for index, item in enumerate(raw_messages)
    )
    return Transcript(model=model, messages=messages)


def _parse_message(item: Any, where: str) -> tuple[Role, str]:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object with role and content")
    if "role" not in item:
        raise ValueError(f"{where}: role is missing; use one of {', '.join(ROLES)}")
    role = _checks.check_role(item["role"], f"{where}.role")
    content = item.get("content")
    if isinstance(content, list):
        content = _join_text_parts(content, f"{where}.content")
    return role, _checks.check_text(content, f"{where}.content")


def _join_text_parts(parts: Sequence[Any], where: str) -> str:
    texts = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise ValueError(
                f"{where}[{index}]: only text parts can be stored;"
                " drop images, audio and tool calls before importing"
            )
        texts.append(_checks.check_text(part.get("text"), f"{where}[{index}].text"))
    return "".join(texts)


def import_transcript(store: Store, transcript: Transcript) -> UUID:
    """Store a transcript as a new conversation, all or nothing; return its id."""
    with store.transaction() as tx:
        conversation_id = tx.create_conversation(model=transcript.model)
        tx.add_messages(conversation_id, transcript.messages)
    return conversation_id


def transcript_json(conversation: Conversation) -> str:
    """Return a conversation as transcript JSON, ready to import again."""
    data = {
        "model": conversation.model,
        "messages": [
            {"role": message.role, "content": message.content}
            for message in conversation.messages
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
