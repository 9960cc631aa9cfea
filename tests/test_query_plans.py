"""Plans of the reading and inserting queries on tables large enough for indexes.

Each query is explained twice, with the text of hwlab_sql.queries:

- bound by psycopg with real values, which gives the custom plan that the
  server makes for a statement's first executions;
- PREPAREd and explained with plan_cache_mode = force_generic_plan, which
  gives the generic plan. psycopg prepares a statement after 5 executions on
  a connection, and the server may then switch to the generic plan, which is
  made without the parameters' values.

The tables are loaded once per module and ANALYZEd, so that the planner
compares an index scan with a sequential scan on realistic statistics. The
last test reads the plan of the message count trigger through auto_explain,
and is skipped where the role cannot LOAD it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from pytest_postgresql.janitor import DatabaseJanitor

from hwlab_sql import queries

CONVERSATIONS = 5_000
MESSAGES = 40_000
LONG_CONVERSATION_MESSAGES = 1_000

# PostgreSQL types of the queries' parameters, for PREPARE.
PARAMETER_TYPES = {
    "conversation_id": "uuid",
    "role": "text",
    "content": "text",
    "limit": "bigint",
    "before_started_at": "timestamptz",
    "before_id": "uuid",
}

INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}


@dataclass(frozen=True)
class LoadedDatabase:
    """A connection to the module's database and ids worth querying."""

    conn: psycopg.Connection[Any]
    long_conversation: UUID
    short_conversation: UUID
    middle_started_at: datetime
    middle_id: UUID


def _load(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """
        INSERT INTO conversations (started_at, model)
        SELECT now() - n * interval '1 second', 'model'
        FROM generate_series(1, %(count)s) AS n
        """,
        {"count": CONVERSATIONS},
    )
    # The newest conversation gets one message in every MESSAGES /
    # LONG_CONVERSATION_MESSAGES; the rest go round-robin to the others, so
    # that every conversation's messages are spread over the table.
    conn.execute(
        """
        WITH numbered AS (
            SELECT array_agg(id ORDER BY started_at DESC) AS ids FROM conversations
        )
        INSERT INTO messages (conversation_id, role, content)
        SELECT
            ids[CASE
                WHEN g %% %(every)s = 0 THEN 1
                ELSE 2 + g %% (cardinality(ids) - 1)
            END],
            'user',
            repeat('x', 100 + g %% 200)
        FROM numbered, generate_series(1, %(count)s) AS g
        """,
        {"count": MESSAGES, "every": MESSAGES // LONG_CONVERSATION_MESSAGES},
    )
    conn.execute("ANALYZE conversations")
    conn.execute("ANALYZE messages")


@pytest.fixture(scope="module")
def loaded(postgresql_server: Any) -> Iterator[LoadedDatabase]:
    """A database of its own, cloned from the migrated template and loaded."""
    server = postgresql_server
    dbname = f"hwlab_sql_plans_{os.getpid()}"
    janitor = DatabaseJanitor(
        user=server.user,
        host=server.host,
        port=server.port,
        dbname=dbname,
        template_dbname=server.template_dbname,
        password=server.password,
    )
    with janitor:
        conn = psycopg.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            dbname=dbname,
            autocommit=True,
        )
        with conn:
            _load(conn)
            rows = conn.execute(
                "SELECT id, started_at, message_count FROM conversations"
                " ORDER BY started_at DESC, id DESC"
            ).fetchall()
            middle = rows[len(rows) // 2]
            yield LoadedDatabase(
                conn=conn,
                long_conversation=rows[0][0],
                short_conversation=rows[1][0],
                middle_started_at=middle[1],
                middle_id=middle[0],
            )


def _plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


def _explain_json(conn: psycopg.Connection[Any], statement: Any, params: Any) -> Any:
    row = conn.execute(statement, params).fetchone()
    assert row is not None
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return document[0]["Plan"]


def custom_plan(
    conn: psycopg.Connection[Any], name: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return the plan nodes of query *name* bound to *params* by psycopg."""
    text = getattr(queries, name).sql
    plan = _explain_json(conn, "EXPLAIN (FORMAT JSON) " + text, params)
    return list(_plan_nodes(plan))


def generic_plan(
    conn: psycopg.Connection[Any], name: str, params: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return the plan nodes of query *name* as a generic prepared statement."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    text = re.sub(r"%\((\w+)\)s", number, getattr(queries, name).sql)
    types = ", ".join(PARAMETER_TYPES[n] for n in names)
    conn.execute("DEALLOCATE ALL")
    conn.execute(f"PREPARE plan_check ({types}) AS {text}".encode())
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        statement = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE plan_check ({})").format(
            sql.SQL(", ").join(sql.Literal(params[n]) for n in names)
        )
        plan = _explain_json(conn, statement, None)
    finally:
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE plan_check")
    return list(_plan_nodes(plan))


PLANNERS = {"custom": custom_plan, "generic": generic_plan}


def _describe(nodes: list[dict[str, Any]]) -> str:
    return "; ".join(
        " ".join(
            str(node[key])
            for key in ("Node Type", "Operation", "Relation Name", "Index Name")
            if key in node
        )
        for node in nodes
    )


def _seq_scanned(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"}


def _indexes_used(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["Index Name"] for n in nodes if n["Node Type"] in INDEX_SCANS}


def _node_types(nodes: list[dict[str, Any]]) -> set[str]:
    return {n["Node Type"] for n in nodes}


@pytest.mark.parametrize("mode", PLANNERS)
def test_list_conversations_plan(loaded: LoadedDatabase, mode: str) -> None:
    nodes = PLANNERS[mode](loaded.conn, "list_conversations", {"limit": 100})
    plan = _describe(nodes)
    assert "conversations_started_at_id_idx" in _indexes_used(nodes), plan
    assert _seq_scanned(nodes) == set(), plan
    # Rows come in index order, so no Sort reads every conversation.
    assert "Sort" not in _node_types(nodes), plan


@pytest.mark.parametrize("mode", PLANNERS)
def test_list_conversations_before_plan(loaded: LoadedDatabase, mode: str) -> None:
    params = {
        "before_started_at": loaded.middle_started_at,
        "before_id": loaded.middle_id,
        "limit": 100,
    }
    nodes = PLANNERS[mode](loaded.conn, "list_conversations_before", params)
    plan = _describe(nodes)
    assert "conversations_started_at_id_idx" in _indexes_used(nodes), plan
    assert _seq_scanned(nodes) == set(), plan
    assert "Sort" not in _node_types(nodes), plan


@pytest.mark.parametrize("mode", PLANNERS)
def test_get_conversation_plan(loaded: LoadedDatabase, mode: str) -> None:
    params = {"conversation_id": loaded.long_conversation}
    nodes = PLANNERS[mode](loaded.conn, "get_conversation", params)
    plan = _describe(nodes)
    assert "conversations_pkey" in _indexes_used(nodes), plan
    assert _seq_scanned(nodes) == set(), plan


@pytest.mark.parametrize("mode", PLANNERS)
@pytest.mark.parametrize("conversation", ["long", "short"])
def test_list_messages_plan(
    loaded: LoadedDatabase, mode: str, conversation: str
) -> None:
    conversation_id = (
        loaded.long_conversation
        if conversation == "long"
        else loaded.short_conversation
    )
    params = {"conversation_id": conversation_id}
    nodes = PLANNERS[mode](loaded.conn, "list_messages", params)
    plan = _describe(nodes)
    assert "messages_conversation_id_seq_idx" in _indexes_used(nodes), plan
    assert _seq_scanned(nodes) == set(), plan


@pytest.mark.parametrize("mode", PLANNERS)
def test_add_message_plan(loaded: LoadedDatabase, mode: str) -> None:
    params = {
        "conversation_id": loaded.short_conversation,
        "role": "user",
        "content": "hello",
    }
    nodes = PLANNERS[mode](loaded.conn, "add_message", params)
    plan = _describe(nodes)
    inserts = [n for n in nodes if n.get("Operation") == "Insert"]
    assert [n["Relation Name"] for n in inserts] == ["messages"], plan
    assert "conversations_pkey" in _indexes_used(nodes), plan
    assert _seq_scanned(nodes) == set(), plan


def _nested_plans(notices: list[str]) -> list[dict[str, Any]]:
    """Return the JSON plans that auto_explain sent as notices."""
    plans = []
    for notice in notices:
        _, separator, document = notice.partition("plan:\n")
        if separator:
            plans.append(json.loads(document))
    return plans


def test_message_count_trigger_plan_by_key(
    loaded: LoadedDatabase, postgresql_server: Any
) -> None:
    """The trigger updates conversations by key after a large first insert.

    PL/pgSQL keeps the plan of the trigger's statements for the session, so
    the first insert of a session must not leave a plan that scans all of
    conversations for every later insert.
    """
    server = postgresql_server
    conn = psycopg.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        dbname=loaded.conn.info.dbname,
        autocommit=True,
    )
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with conn:
        try:
            conn.execute("LOAD 'auto_explain'")
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFile):
            pytest.skip("auto_explain cannot be loaded by this role on this server")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = notice")
        conn.execute("SET auto_explain.log_format = json")
        with conn.transaction(force_rollback=True):
            # The session's first insert, with many rows, plans the trigger.
            rows = queries.add_messages(
                conn,
                conversation_id=loaded.long_conversation,
                roles=["user"] * 2_000,
                contents=["bulk"] * 2_000,
            )
            assert len(list(rows)) == 2_000
            conn.execute("SET auto_explain.log_min_duration = 0")
            queries.add_message(
                conn,
                conversation_id=loaded.short_conversation,
                role="user",
                content="single",
            )
    updates = [
        plan
        for plan in _nested_plans(notices)
        if plan["Query Text"].lstrip().startswith("UPDATE conversations")
    ]
    assert len(updates) == 1, notices
    nodes = list(_plan_nodes(updates[0]["Plan"]))
    plan = _describe(nodes)
    assert "conversations_pkey" in _indexes_used(nodes), plan
    assert _seq_scanned(nodes) == set(), plan
