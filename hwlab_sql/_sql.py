"""Locate the SQL files and load the named queries with aiosql."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiosql
from aiosql.utils import SQLLoadException, SQLParseException
from psycopg.rows import tuple_row

from .errors import QueryFileError

_PACKAGE_DIR = Path(__file__).resolve().parent


def _sql_root() -> Path:
    # A wheel carries the files under hwlab_sql/sql/; a source checkout keeps
    # them at the top level, where DBAs read them.
    packaged = _PACKAGE_DIR / "sql"
    if (packaged / "queries").is_dir():
        return packaged
    return _PACKAGE_DIR.parent


QUERIES_DIR = _sql_root() / "queries"
SCHEMA_DIR = _sql_root() / "schema"


def load_queries(directory: Path = QUERIES_DIR, *, is_async: bool = False) -> Any:
    """Load every named query under *directory* for psycopg connections.

    Rows come back as tuples whatever row factory the connection has.

    :raises QueryFileError: when the directory is missing or a query cannot be
        parsed.
    """
    if directory.is_dir():
        _check_unique_names(directory)
    try:
        if is_async:
            return aiosql.from_path(directory, "apsycopg")
        return aiosql.from_path(directory, "psycopg", kwargs={"row_factory": tuple_row})
    except (SQLLoadException, SQLParseException) as exc:
        raise QueryFileError(f"{directory}: {exc}") from exc


# The "-- name:" line as aiosql reads it; a dash in a name becomes "_".
_NAME_LINE = re.compile(r"--\s*name\s*:\s*(?P<name>[\w-]+)")


def _check_unique_names(directory: Path) -> None:
    """Raise QueryFileError when two queries share a name.

    aiosql keeps the last one it reads, so the other would vanish unseen.
    """
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            match = _NAME_LINE.match(line)
            if match is None:
                continue
            name = match["name"].replace("-", "_")
            place = f"{path.name}:{number}"
            if name in seen:
                raise QueryFileError(
                    f"{place}: query {name} is already defined at {seen[name]};"
                    " rename one of them"
                )
            seen[name] = place
