"""Locate the SQL files and load the named queries with aiosql."""

from __future__ import annotations

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
    try:
        if is_async:
            return aiosql.from_path(directory, "apsycopg")
        return aiosql.from_path(directory, "psycopg", kwargs={"row_factory": tuple_row})
    except (SQLLoadException, SQLParseException) as exc:
        raise QueryFileError(f"{directory}: {exc}") from exc
