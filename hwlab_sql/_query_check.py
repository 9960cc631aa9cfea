"""Prepare the named queries on a server to find those that do not fit its schema.

The server parses and analyses each statement (PREPARE) but never executes it.
Parameters are sent without types, so the server infers each one from its
context, as it does for the strings that psycopg sends untyped. psycopg sends
other values, such as UUIDs and ints, with their types, so a query that
prepares here can still reject a value of the wrong type when it runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any, Literal

import psycopg
from aiosql.types import SQLOperationType
from psycopg.pq import DiagnosticField, ExecStatus
from psycopg.pq.abc import PGresult

from ._sql import load_queries

Outcome = Literal["prepared", "failed", "skipped"]

SCRIPT_SKIPPED = (
    "skipped: a script query (#) may hold DDL, which PREPARE does not take,"
    " and check executes nothing"
)

# psycopg's placeholders: %(name)s (or %(name)b, %(name)t) and %% for a literal %.
_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]+)\))?(?P<format>.?)", re.DOTALL)
# The line that starts a named query in aiosql's file format.
_NAME_LINE = re.compile(r"--\s*name\s*:\s*(?P<name>[\w-]+)")
# aiosql drops every line that starts with a comment from a query's SQL.
_COMMENT_LINE = re.compile(r"\s*--")
# The suffix aiosql adds to the cursor twin of each SELECT query.
_CURSOR_SUFFIX = "_cursor"


@dataclass(frozen=True, slots=True)
class QueryCheck:
    """The outcome of preparing one named query.

    ``line`` is the line the server's error points at when it gives a
    position, else the query's ``-- name:`` line. ``message`` is empty for a
    prepared query.
    """

    name: str
    path: Path
    line: int
    outcome: Outcome
    message: str


def check_queries(conn: psycopg.Connection[Any], directory: Path) -> list[QueryCheck]:
    """Prepare every named query of *directory* on *conn*, in file and line order.

    Script queries (``#``) are reported as skipped.

    :raises QueryFileError: when the directory is missing or a query cannot be
        parsed.
    """
    queries = load_queries(directory)
    checks = []
    for name in queries.available_queries:
        if _is_cursor_twin(queries, name):
            continue
        query = reduce(getattr, name.split("."), queries)
        checks.append(_check_query(conn, name, query))
    return sorted(checks, key=lambda check: (str(check.path), check.line, check.name))


def numbered_placeholders(sql: str) -> str:
    """Return *sql* with psycopg's ``%(name)s`` placeholders as ``$1``, ``$2``...

    A name used twice gets one number, as psycopg sends it once.

    :raises ValueError: when a ``%`` is neither a placeholder nor ``%%``, which
        psycopg also rejects.
    """
    numbers: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        if match[0] == "%%":
            return "%"
        name = match["name"]
        if name is None or match["format"] not in {"s", "b", "t"}:
            raise ValueError(
                f"invalid placeholder {match[0]!r}: psycopg takes %(name)s for a"
                " parameter and %% for a literal %, so write % as %% in queries"
            )
        return f"${numbers.setdefault(name, len(numbers) + 1)}"

    return _PLACEHOLDER.sub(replace, sql)


def _is_cursor_twin(queries: Any, name: str) -> bool:
    if not name.endswith(_CURSOR_SUFFIX):
        return False
    base = name.removesuffix(_CURSOR_SUFFIX)
    return base in queries.available_queries


def _check_query(conn: psycopg.Connection[Any], name: str, query: Any) -> QueryCheck:
    path = Path(query.__code__.co_filename)
    lines = _read_lines(path)
    name_index = _find_name_line(lines, name.rsplit(".", 1)[-1])
    name_line = query.__code__.co_firstlineno if name_index is None else name_index + 1

    if query.operation is SQLOperationType.SCRIPT:
        return QueryCheck(name, path, name_line, "skipped", SCRIPT_SKIPPED)
    try:
        statement = numbered_placeholders(query.sql)
    except ValueError as exc:
        return QueryCheck(name, path, name_line, "failed", str(exc))

    encoding = conn.info.encoding
    # The unnamed statement, which the next prepare replaces and closing the
    # connection drops, so no DEALLOCATE is needed.
    result = conn.pgconn.prepare(b"", statement.encode(encoding))
    if result.status == ExecStatus.COMMAND_OK:
        return QueryCheck(name, path, name_line, "prepared", "")

    message = _error_message(result, encoding)
    line = name_line
    position = result.error_field(DiagnosticField.STATEMENT_POSITION)
    if position is not None and name_index is not None:
        # The server counts characters from 1.
        statement_line = statement[: int(position) - 1].count("\n")
        file_line = _file_line(lines, name_index, statement_line)
        if file_line is not None:
            line = file_line
    return QueryCheck(name, path, line, "failed", message)


def _error_message(result: PGresult, encoding: str) -> str:
    primary = result.error_field(DiagnosticField.MESSAGE_PRIMARY)
    if primary is None:
        # A broken connection sets only the whole message.
        return " ".join(result.get_error_message(encoding).split())
    message: str = primary.decode(encoding, "replace")
    hint = result.error_field(DiagnosticField.MESSAGE_HINT)
    if hint is not None:
        message += f" (hint: {hint.decode(encoding, 'replace')})"
    return message


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _find_name_line(lines: list[str], name: str) -> int | None:
    """Return the 0-based index of the ``-- name:`` line of query *name*."""
    for index, line in enumerate(lines):
        match = _NAME_LINE.match(line)
        if match and match["name"].replace("-", "_") == name:
            return index
    return None


def _file_line(lines: list[str], name_index: int, statement_line: int) -> int | None:
    """Return the 1-based file line of line *statement_line* (0-based) of a query.

    aiosql builds a query's SQL from the lines after its ``-- name:`` line,
    without comment lines and leading blank lines, so counting the other lines
    finds the one the server points at.
    """
    seen = -1
    for index in range(name_index + 1, len(lines)):
        line = lines[index]
        if _NAME_LINE.match(line):
            break
        if "/*" in line:
            # aiosql also removes block comments, which can span lines; the
            # count would be off, so the caller falls back to the name line.
            return None
        if _COMMENT_LINE.match(line) or (seen < 0 and not line.strip()):
            continue
        seen += 1
        if seen == statement_line:
            return index + 1
    return None
