"""The benchmark's scratch database and the data sets it loads.

The data sets are made on the server with generate_series, so that loading a
million messages costs no round trips. The messages of one conversation are
spread over the whole table, as concurrent chats interleave them. Reading one
conversation then touches up to one heap page per message, the realistic
worst case.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from hwlab_sql.migrations import run_migrations
from tools.pgserver import ThrowawayServer, reachable_conninfo

# Messages that one INSERT of load_messages() writes.
LOAD_CHUNK = 200_000

# Messages of the conversation that get_conversation reads.
LONG_CONVERSATION_MESSAGES = 1_000


@contextmanager
def admin_server() -> Iterator[str]:
    """Yield the conninfo of the server the run uses, starting one if needed.

    That is the server DATABASE_URL, or else the PG* variables and libpq's
    defaults, reach. When none responds, a throwaway server is started from
    the installed PostgreSQL binaries and removed afterwards.
    """
    conninfo = reachable_conninfo()
    if conninfo is not None:
        yield conninfo
        return
    print("no server responded; starting a throwaway PostgreSQL", file=sys.stderr)
    with ThrowawayServer() as server:
        yield server.conninfo


@contextmanager
def scratch_database(
    admin_dsn: str, purpose: str, settings: Mapping[str, str]
) -> Iterator[str]:
    """Create a migrated database for this run and drop it afterwards.

    Yields its conninfo. The name carries the process id, a random part and
    *purpose*, so that runs sharing a server do not collide. *settings* (such
    as random_page_cost) become the database's defaults, for every session
    the run opens in it, unless a setting of the role overrides them.
    """
    name = f"hwlab_sql_bench_{os.getpid()}_{secrets.token_hex(4)}_{purpose}"
    try:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            for setting, value in settings.items():
                admin.execute(
                    sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                        sql.Identifier(name),
                        sql.Identifier(setting),
                        sql.Literal(value),
                    )
                )
        dsn = make_conninfo(admin_dsn, dbname=name)
        with psycopg.connect(dsn) as conn:
            run_migrations(conn)
        yield dsn
    finally:
        # Also reached when CREATE DATABASE was interrupted or failed, hence
        # IF EXISTS. FORCE ends sessions a failed run may have left behind.
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )


class SettingError(ValueError):
    """A server setting whose value the server rejected."""


def check_settings(admin_dsn: str, settings: Mapping[str, str]) -> None:
    """Try *settings* in a session of the server before a run creates anything.

    :raises SettingError: naming the setting and the server's reason, when
        the server rejects a value.
    """
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for setting, value in settings.items():
            try:
                conn.execute("SELECT set_config(%s, %s, false)", [setting, value])
            except psycopg.errors.DataError as exc:
                raise SettingError(
                    f"{setting}: the server rejected {value!r}:"
                    f" {exc.diag.message_primary}"
                ) from None


def connect(dsn: str) -> psycopg.Connection[Any]:
    """Open an autocommit connection for loading and inspecting data."""
    return psycopg.connect(dsn, autocommit=True)


def reset(conn: psycopg.Connection[Any]) -> None:
    """Remove every conversation and message."""
    conn.execute("TRUNCATE messages, conversations")


def create_conversations(conn: psycopg.Connection[Any], count: int) -> list[UUID]:
    """Create *count* conversations one second apart; return their ids, newest first."""
    rows = conn.execute(
        """
        INSERT INTO conversations (started_at, model)
        SELECT now() - n * interval '1 second', 'model-' || n %% 7
        FROM generate_series(1, %(count)s) AS n
        RETURNING id, started_at
        """,
        {"count": count},
    ).fetchall()
    rows.sort(key=lambda row: row[1], reverse=True)
    return [row[0] for row in rows]


def load_messages(
    conn: psycopg.Connection[Any], conversation_ids: list[UUID], total: int
) -> UUID:
    """Add *total* messages to the conversations and return the long one's id.

    The first conversation (the newest) gets LONG_CONVERSATION_MESSAGES
    messages, one every total / LONG_CONVERSATION_MESSAGES rows; the other
    messages go round-robin to the other conversations. Contents are 80 to
    319 characters long, 200 on average. Ends with VACUUM ANALYZE, as
    autovacuum would after a load this size.
    """
    if total % LONG_CONVERSATION_MESSAGES or len(conversation_ids) < 2:
        raise ValueError(
            f"total: {total} must be a multiple of {LONG_CONVERSATION_MESSAGES},"
            " with at least 2 conversations"
        )
    every = total // LONG_CONVERSATION_MESSAGES
    for first in range(1, total + 1, LOAD_CHUNK):
        last = min(first + LOAD_CHUNK - 1, total)
        conn.execute(
            """
            INSERT INTO messages (conversation_id, role, content)
            SELECT
                (%(ids)s::uuid[])[CASE
                    WHEN g %% %(every)s = 0 THEN 1
                    ELSE 2 + g %% (cardinality(%(ids)s::uuid[]) - 1)
                END],
                (ARRAY['user', 'assistant', 'system'])[1 + g %% 3],
                left(repeat(md5(g::text), 10), 80 + g %% 240)
            FROM generate_series(%(first)s::integer, %(last)s) AS g
            """,
            {"ids": conversation_ids, "every": every, "first": first, "last": last},
        )
    conn.execute("VACUUM ANALYZE conversations")
    conn.execute("VACUUM ANALYZE messages")
    return conversation_ids[0]


def checkpoint(conn: psycopg.Connection[Any]) -> None:
    """Flush dirty pages now, so that no checkpoint lands inside a measurement.

    CHECKPOINT needs superuser or pg_checkpoint; without them this does nothing.
    """
    with suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")


def table_sizes(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Return the number of conversations and of messages."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM conversations), (SELECT count(*) FROM messages)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def server_version(conn: psycopg.Connection[Any]) -> str:
    """Return the server's version string, such as '15.20 (Debian ...)'."""
    return show(conn, "server_version")


def show(conn: psycopg.Connection[Any], setting: str) -> str:
    """Return the value of a server setting in this session, such as '4'."""
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(setting))).fetchone()
    assert row is not None
    return str(row[0])
