"""Run the test suite as an ordinary role: no superuser, allowed to create databases.

Usage: ``python -m tools.least_privilege [pytest arguments]``

The schema must need no extension and no superuser right, and the owner of
the database must be enough to migrate and use it. This starts a throwaway
server, creates the role ``hwlab_sql_least_privilege`` (LOGIN NOSUPERUSER
CREATEDB NOCREATEROLE) on it, checks that the role really is ordinary, and
runs pytest with DATABASE_URL naming that role. The role creates the test
databases, so it owns them and the schema in them.

The server runs with autovacuum off. pytest-postgresql ends every session in
a database before it clones or drops it. An ordinary role may not end an
autovacuum worker, which runs as superuser, so a worker in a test database
would fail that test's setup or teardown.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tools.pgserver import ThrowawayServer

ROLE = "hwlab_sql_least_privilege"
ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


class LeastPrivilegeError(RuntimeError):
    """The ordinary role could not be set up as intended."""


def main(pytest_args: Sequence[str]) -> int:
    """Run pytest as the ordinary role on a throwaway server; return its exit status."""
    with ThrowawayServer() as server:
        with psycopg.connect(server.conninfo, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET autovacuum = off")
            admin.execute("SELECT pg_reload_conf()")
            admin.execute(
                sql.SQL("CREATE ROLE {} " + ROLE_ATTRIBUTES).format(
                    sql.Identifier(ROLE)
                )
            )
        role_conninfo = make_conninfo(
            host="127.0.0.1", port=server.port, user=ROLE, dbname="postgres"
        )
        _check_ordinary(role_conninfo)
        print(
            f"least_privilege: running pytest as role {ROLE} ({ROLE_ATTRIBUTES})"
            f" on 127.0.0.1:{server.port}",
            flush=True,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["DATABASE_URL"] = role_conninfo
        command = [sys.executable, "-m", "pytest", *pytest_args]
        return subprocess.run(command, env=env, check=False).returncode


def _check_ordinary(role_conninfo: str) -> None:
    with psycopg.connect(role_conninfo) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, current_setting('autovacuum')"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    expected = (False, False, True, "off")
    if row != expected:
        raise LeastPrivilegeError(
            f"role {ROLE}: (superuser, createrole, createdb, autovacuum) is {row},"
            f" expected {expected}"
        )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
