"""Server plans of the benchmarked reads, from EXPLAIN ANALYZE.

The clients run their queries as prepared statements: psycopg prepares a
statement after a few executions, and PostgreSQL then settles on a custom or
a generic plan. Timing from the client shows how long a call took; the plan
shows why a data set is faster or slower than another. The two can disagree
between data sets, since the planner may pick another plan as the tables grow.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Executions before PostgreSQL weighs the generic plan against custom ones.
CUSTOM_PLAN_EXECUTIONS = 5
# EXPLAIN ANALYZE runs whose execution times give the median.
EXPLAIN_RUNS = 15


@dataclass(frozen=True)
class ServerPlan:
    """The plan one prepared statement ran, and its cost on the server."""

    nodes: str
    buffers: int
    milliseconds: float


def explain_prepared(
    conn: psycopg.Connection[Any], query: str, params: dict[str, Any]
) -> ServerPlan:
    """EXPLAIN ANALYZE *query* as a warmed-up prepared statement runs it.

    *query* is a psycopg query with named placeholders, as aiosql hands it
    out, and *conn* a fresh connection: the statement prepared here must be
    its only one. The execution time is the median of EXPLAIN_RUNS runs
    without per-node timing, whose overhead would swamp a fast query.
    """
    for _ in range(CUSTOM_PLAN_EXECUTIONS + 1):
        conn.execute(query, params, prepare=True)
    names = conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
    if len(names) != 1:
        raise ValueError(
            f"conn: expected one prepared statement, the query's, and found"
            f" {len(names)}; pass a connection that has run nothing else"
        )
    # psycopg numbers the placeholders in the order the names first appear.
    # Dicts keep that order, so the literals below line up with them.
    explain = sql.SQL(
        "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) EXECUTE {}({})"
    ).format(
        sql.Identifier(names[0][0]),
        sql.SQL(", ").join(sql.Literal(value) for value in params.values()),
    )
    outputs = [
        conn.execute(explain, prepare=False).fetchone() for _ in range(EXPLAIN_RUNS)
    ]
    documents = [output[0][0] for output in outputs if output is not None]
    top = documents[-1]["Plan"]
    return ServerPlan(
        nodes=" > ".join(_node_names(top)),
        buffers=int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"]),
        milliseconds=statistics.median(
            float(document["Execution Time"]) for document in documents
        ),
    )


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
