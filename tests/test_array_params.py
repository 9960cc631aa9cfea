"""add_messages sends its roles and contents as binary text[] parameters."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

from hwlab_sql._core import BinaryTextArray, messages_params

# Texts that mean something in the text format of arrays: a bare NULL is a
# null element, braces nest, commas and quotes delimit, backslashes escape.
ARRAY_SYNTAX_TEXTS = [
    "NULL",
    "null",
    "{}",
    "{a,b}",
    "a,b",
    '"quoted"',
    "back\\slash",
    "\\",
    '"',
    " padded ",
    "",
]


def test_messages_params_binary_arrays(db: psycopg.Connection[Any]) -> None:
    params = messages_params(
        "0b7a7d8e-4c1f-4d5a-9a57-2f1c6f3e8d10", [("user", "hi"), ("assistant", "yo")]
    )
    assert isinstance(params["roles"], BinaryTextArray)
    assert isinstance(params["contents"], BinaryTextArray)
    assert params["roles"] == ["user", "assistant"]
    assert params["contents"] == ["hi", "yo"]
    dumper = Transformer(db).get_dumper(params["contents"], PyFormat.AUTO)
    assert dumper.format == pq.Format.BINARY


@pytest.mark.parametrize("text", ARRAY_SYNTAX_TEXTS, ids=range(len(ARRAY_SYNTAX_TEXTS)))
def test_add_messages_array_syntax_round_trips(store: Any, text: str) -> None:
    conversation_id = store.create_conversation()
    store.add_messages(conversation_id, [("user", text), ("assistant", text)])
    messages = store.get_conversation(conversation_id).messages
    assert [m.content for m in messages] == [text, text]
    assert [m.role for m in messages] == ["user", "assistant"]
