"""Parsing and writing OpenAI-style chat transcripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hwlab_sql import Store
from hwlab_sql.transcripts import import_transcript, parse_transcript, transcript_json
from tests.helpers import count_rows

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "chat.json"


def test_parse_example() -> None:
    transcript = parse_transcript(EXAMPLE.read_bytes())
    assert transcript.model == "gpt-4o"
    assert len(transcript.messages) == 6
    assert transcript.messages[0][0] == "system"


def test_parse_text_parts_are_joined() -> None:
    text = json.dumps(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Hello, "},
                        {"type": "text", "text": "world"},
                    ],
                }
            ]
        }
    )
    transcript = parse_transcript(text)
    assert transcript.model == ""
    assert transcript.messages == (("user", "Hello, world"),)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", r"chat.json: invalid JSON"),
        (b"\xff\xfe{}", r"chat.json: (invalid JSON|not UTF-8)"),
        ("[]", r"chat.json: expected a JSON object"),
        ('{"model": "m"}', r"chat.json: messages: expected a list"),
        ('{"messages": [1]}', r"chat.json: messages\[0\]: expected an object"),
        ('{"messages": [{"content": "x"}]}', r"messages\[0\]: role is missing"),
        (
            '{"messages": [{"role": "tool", "content": "x"}]}',
            r"messages\[0\].role: 'tool' is not a valid role",
        ),
        (
            '{"messages": [{"role": "assistant", "content": null}]}',
            r"messages\[0\].content: expected a str",
        ),
        (
            '{"messages": [{"role": "user", "content": "a\\u0000b"}]}',
            r"messages\[0\].content: contains a NUL",
        ),
        ('{"model": 4, "messages": []}', r"chat.json: model: expected a str"),
        (
            '{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
            r"messages\[0\].content\[0\]: only text parts can be stored",
        ),
    ],
)
def test_parse_rejects_bad_transcripts(text: str | bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_transcript(text, source="chat.json")


def test_import_then_export_round_trips(dsn: str, db: psycopg.Connection[Any]) -> None:
    original = EXAMPLE.read_text(encoding="utf-8")
    with Store.open(dsn, min_size=1) as store:
        conversation_id = import_transcript(store, parse_transcript(original))
        exported = transcript_json(store.get_conversation(conversation_id))
    assert json.loads(exported) == json.loads(original)
    assert count_rows(db, "messages") == 6


def test_import_is_all_or_nothing(dsn: str, db: psycopg.Connection[Any]) -> None:
    transcript = parse_transcript(EXAMPLE.read_bytes())
    with Store.open(dsn, min_size=1) as store:
        db.execute(
            "ALTER TABLE messages ADD CONSTRAINT messages_short_check"
            " CHECK (length(content) < 100)"
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            import_transcript(store, transcript)
    assert count_rows(db, "conversations") == 0
    assert count_rows(db, "messages") == 0
