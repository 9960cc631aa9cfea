"""Small checks that tests run directly against the database."""

from __future__ import annotations

from typing import Any

import psycopg


def count_rows(conn: psycopg.Connection[Any], table: str) -> int:
    """Return the number of rows in *table* (conversations or messages)."""
    assert table in {"conversations", "messages"}
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])
