"""Server plans of the benchmarked reads, from EXPLAIN ANALYZE.

The clients run their queries as prepared statements: psycopg prepares a
statement after a few executions, and PostgreSQL then settles on a custom or
a generic plan. Timing from the client shows how long a call took; the plan
shows why a data set is faster or slower than another. The two can disagree
between data sets, since the planner may pick another plan as the tables grow.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Executions of a prepared statement after which PostgreSQL weighs the generic
# plan against custom ones (plan_cache_mode = auto).
CUSTOM_PLAN_EXECUTIONS = 5
# EXPLAIN ANALYZE runs whose times give the medians.
EXPLAIN_RUNS = 15
# A named placeholder of psycopg, as aiosql writes the queries for it, or the
# escaped percent sign "%%", which the scan must step over.
PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


@dataclass(frozen=True)
class ServerPlan:
    """The plan one prepared statement ran, and its cost on the server."""

    nodes: str
    kind: str
    rows: int
    buffers: int
    planning_ms: float
    execution_ms: float


def explain_prepared(
    conn: psycopg.Connection[Any], query: str, params: Mapping[str, Any]
) -> ServerPlan:
    """Prepare *query* on *conn* and EXPLAIN ANALYZE it once it has settled.

    *query* is a psycopg query with named placeholders, as aiosql hands it
    out, and *conn* a connection that has prepared nothing yet. *kind* of the
    result is "generic" when the EXPLAIN runs used the generic plan, else
    "custom". The times are medians of EXPLAIN_RUNS runs without per-node
    timing, whose overhead would swamp a fast query.

    :raises ValueError: when *params* does not name exactly the placeholders
        of *query*, or *conn* already has a prepared statement.
    """
    names = placeholder_names(query)
    if set(params) != set(names):
        raise ValueError(
            f"params: expected the names {names} of the query's placeholders,"
            f" got {sorted(params)}"
        )
    # psycopg prepares a statement at the execution after prepare_threshold
    # (5 by default) unprepared ones. prepare=True does it at the first one.
    for _ in range(CUSTOM_PLAN_EXECUTIONS + 1):
        conn.execute(query, params, prepare=True)
    statement = _prepared_statement(conn)
    arguments: sql.Composable = sql.SQL("")
    if names:
        arguments = sql.SQL("({})").format(
            sql.SQL(", ").join(sql.Literal(params[name]) for name in names)
        )
    explain = sql.SQL(
        "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) EXECUTE {}{}"
    ).format(sql.Identifier(statement), arguments)
    generic_before = _generic_plans(conn, statement)
    documents = []
    for _ in range(EXPLAIN_RUNS):
        row = conn.execute(explain, prepare=False).fetchone()
        assert row is not None
        documents.append(row[0][0])
    generic = _generic_plans(conn, statement) - generic_before == EXPLAIN_RUNS
    top = documents[-1]["Plan"]
    return ServerPlan(
        nodes=" > ".join(_node_names(top)),
        kind="generic" if generic else "custom",
        rows=int(top["Actual Rows"]),
        buffers=int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"]),
        planning_ms=statistics.median(d["Planning Time"] for d in documents),
        execution_ms=statistics.median(d["Execution Time"] for d in documents),
    )


def placeholder_names(query: str) -> list[str]:
    """Return the names of *query*'s placeholders in the order psycopg numbers them.

    psycopg numbers the names by their first appearance: a name used twice
    is one parameter.
    """
    names = [name for name in PLACEHOLDER.findall(query) if name]
    return list(dict.fromkeys(names))


def _prepared_statement(conn: psycopg.Connection[Any]) -> str:
    rows = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
    if len(rows) != 1:
        raise ValueError(
            f"conn: expected one prepared statement, the query's, and found"
            f" {len(rows)}; pass a connection that has run nothing else"
        )
    return str(rows[0][0])


def _generic_plans(conn: psycopg.Connection[Any], statement: str) -> int:
    row = conn.execute(
        "SELECT generic_plans FROM pg_prepared_statements WHERE name = %s",
        [statement],
        prepare=False,
    ).fetchone()
    assert row is not None
    return int(row[0])


def _node_names(node: dict[str, Any]) -> list[str]:
    """Name *node* and its first children down to a leaf, top first."""
    names = []
    while True:
        name = str(node["Node Type"])
        if node.get("Scan Direction") == "Backward":
            name += " Backward"
        names.append(name)
        children = node.get("Plans")
        if not children:
            return names
        node = children[0]
