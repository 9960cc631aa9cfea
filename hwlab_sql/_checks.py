"""Checks of caller input, run before any query is sent."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeGuard
from uuid import UUID

from .models import ROLES, Role

MAX_LIST_LIMIT = 100

# The 36-character form with hyphens, or the 32 hex digits alone; uuid.UUID()
# also accepts braces, "urn:uuid:" and stray whitespace, which we do not.
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32}"
)


def _show(value: object) -> str:
    """Return a repr of *value* short enough for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def to_uuid(value: object, name: str = "conversation_id") -> UUID:
    """Return *value* as a UUID, accepting a UUID or its string form."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID_TEXT.fullmatch(value):
        return UUID(value)
    raise ValueError(
        f"{name}: {_show(value)} is not a UUID; pass a uuid.UUID or its string"
        " form, such as '0b7a7d8e-4c1f-4d5a-9a57-2f1c6f3e8d10'"
    )


def is_role(value: object) -> TypeGuard[Role]:
    """Tell whether *value* is one of the roles a message can have."""
    return value in ROLES


def check_role(value: object, name: str = "role") -> Role:
    """Return *value* when it is a message role."""
    if isinstance(value, str) and is_role(value):
        return value
    allowed = ", ".join(repr(role) for role in ROLES)
    raise ValueError(
        f"{name}: {_show(value)} is not a valid role; use one of {allowed}"
    )


def check_text(value: object, name: str) -> str:
    """Return *value* when PostgreSQL can store it as text unchanged."""
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(
            f"{name}: contains a NUL character at index {value.index(chr(0))},"
            " which PostgreSQL text cannot store; remove or escape it"
        )
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{name}: contains the lone surrogate {value[exc.start]!r} at index"
            f" {exc.start}, which is not valid UTF-8; decode the text with"
            " errors='replace' or fix its source"
        ) from None
    return value


def check_messages(
    messages: Iterable[tuple[str, str]],
) -> tuple[list[Role], list[str]]:
    """Split (role, content) pairs into two checked lists of equal length."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Iterable):
        raise ValueError(
            f"messages: {_show(messages)} is not a list of (role, content) pairs"
        )
    roles: list[Role] = []
    contents: list[str] = []
    for index, pair in enumerate(messages):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(
                f"messages[{index}]: {_show(pair)} is not a (role, content) pair"
            )
        role, content = pair
        roles.append(check_role(role, f"messages[{index}] role"))
        contents.append(check_text(content, f"messages[{index}] content"))
    return roles, contents


def check_limit(value: object) -> int:
    """Return *value* capped at MAX_LIST_LIMIT, when it is a positive int."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"limit: {_show(value)} is not an int; pass 1 to 100")
    if value < 1:
        raise ValueError(f"limit: {value} is below 1; pass 1 to 100")
    return min(value, MAX_LIST_LIMIT)


def check_open_options(dsn: object, connect_timeout: object, timeout: object) -> str:
    """Check the arguments of Store.open and AsyncStore.open; return the dsn."""
    if not isinstance(dsn, str):
        raise ValueError(
            f"dsn: expected a str, got {type(dsn).__name__}; pass '' to use the"
            " PG* environment variables"
        )
    # libpq waits forever for a connect_timeout of 0 or below.
    if (
        not isinstance(connect_timeout, int)
        or isinstance(connect_timeout, bool)
        or not 1 <= connect_timeout <= 86_400
    ):
        raise ValueError(
            f"connect_timeout: {_show(connect_timeout)} is not a whole number of"
            " seconds from 1 to 86400"
        )
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0 < timeout <= 86_400
    ):
        raise ValueError(
            f"timeout: {_show(timeout)} is not a number of seconds above 0 and"
            " at most 86400"
        )
    return dsn
