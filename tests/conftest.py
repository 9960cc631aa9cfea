"""Fixtures that give every test a fresh, migrated database on a real server.

The server is the one DATABASE_URL, or else the PG* variables and libpq's
defaults, reach when one responds. Otherwise pytest-postgresql starts a
throwaway server from the installed binaries; as root, where PostgreSQL
refuses to run, tools.pgserver starts one as an unprivileged user instead.
Each test gets its own database, cloned from a template that the schema
runner migrated once per session.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from pytest_postgresql import factories
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from hwlab_sql import AsyncStore, Store
from hwlab_sql.migrations import run_migrations
from tests.helpers import AsyncAsSync
from tools.pgserver import ThrowawayServer, reachable_conninfo

# Unique per run: parallel runs on one server, or a template left behind by a
# killed run, must not collide.
TEST_DBNAME = f"hwlab_sql_tests_{os.getpid()}"


def apply_schema(**connect_kwargs: Any) -> None:
    """Migrate the template database with the library's own runner."""
    with psycopg.connect(**connect_kwargs) as conn:
        run_migrations(conn)


def _server_of(conninfo: str) -> dict[str, Any]:
    with psycopg.connect(conninfo) as conn:
        info = conn.info
        return {
            "host": info.host,
            "port": info.port,
            "user": info.user,
            "password": info.password or None,
        }


_REACHABLE = reachable_conninfo()

if _REACHABLE is not None:
    postgresql_server = factories.postgresql_noproc(
        **_server_of(_REACHABLE), dbname=TEST_DBNAME, load=[apply_schema]
    )
elif os.geteuid() != 0:
    postgresql_server = factories.postgresql_proc(
        executable=shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl",
        dbname=TEST_DBNAME,
        load=[apply_schema],
    )
else:

    @pytest.fixture(scope="session")
    def postgresql_server() -> Iterator[NoopExecutor]:
        with ThrowawayServer() as server:
            executor = NoopExecutor(
                host="127.0.0.1",
                port=server.port,
                user="postgres",
                options="",
                password=None,
                dbname=TEST_DBNAME,
            )
            janitor = DatabaseJanitor(
                user="postgres",
                host="127.0.0.1",
                port=server.port,
                dbname=executor.template_dbname,
                as_template=True,
            )
            with janitor:
                janitor.load(apply_schema)
                yield executor


postgresql = factories.postgresql("postgresql_server")


@pytest.fixture
def dsn(postgresql: psycopg.Connection[Any]) -> str:
    """The conninfo of this test's fresh, migrated database."""
    info = postgresql.info
    return make_conninfo(
        host=info.host,
        port=info.port,
        user=info.user,
        dbname=info.dbname,
        password=info.password or None,
    )


@pytest.fixture
def db(postgresql: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """A connection to this test's database, for checks that bypass the library."""
    postgresql.autocommit = True
    return postgresql


@pytest.fixture
def sync_store(dsn: str) -> Iterator[Store]:
    with Store.open(dsn, min_size=1, max_size=4) as store:
        yield store


@pytest.fixture
def async_runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture
def async_store_as_sync(dsn: str, async_runner: asyncio.Runner) -> Iterator[Any]:
    async def open_store() -> AsyncStore:
        return await AsyncStore.open(dsn, min_size=1, max_size=4)

    store = async_runner.run(open_store())
    try:
        yield AsyncAsSync(store, async_runner)
    finally:
        async_runner.run(store.close())


@pytest.fixture(params=["sync", "async"])
def store(request: pytest.FixtureRequest) -> Any:
    """A Store, or an AsyncStore driven through the same blocking calls."""
    if request.param == "sync":
        return request.getfixturevalue("sync_store")
    return request.getfixturevalue("async_store_as_sync")
