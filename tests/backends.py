"""Find, block and end the server sessions of a test's database, and wait for them.

Each test owns its database, so the sessions in it other than the checking
connection's own are the store's pooled connections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None], description: str, timeout: float = 10.0
) -> T:
    """Call *probe* until it returns something other than None, or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {description}"
            )
        time.sleep(0.02)


def pool_backends(db: psycopg.Connection[Any]) -> list[int]:
    """Return the process ids of the other client sessions in db's database."""
    rows = db.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
    ).fetchall()
    return sorted(row[0] for row in rows)


def terminate(db: psycopg.Connection[Any], pids: list[int]) -> None:
    """End the sessions *pids* and wait until their processes have exited."""
    for pid in pids:
        row = db.execute("SELECT pg_terminate_backend(%s, 10000)", [pid]).fetchone()
        assert row == (True,), f"session {pid} did not end within 10 s"


def backend_waiting(
    db: psycopg.Connection[Any], wait_event_type: str, wait_event: str | None = None
) -> int | None:
    """Return a session of db's database waiting on this event, or None."""
    row = db.execute(
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND wait_event_type = %s AND (%s::text IS NULL OR wait_event = %s)"
        " ORDER BY pid LIMIT 1",
        [wait_event_type, wait_event, wait_event],
    ).fetchone()
    return None if row is None else int(row[0])


@contextmanager
def table_locked(dsn: str, table: str) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on *table*, so that any query on it waits."""
    assert table in {"conversations", "messages"}
    with psycopg.connect(dsn) as locker:
        locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield
        finally:
            locker.rollback()


class Background:
    """Run one call in a thread and keep its result or exception."""

    def __init__(self, call: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._call = call
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # handed to the test by join()
            self.error = exc

    def join(self, timeout: float = 20.0) -> Any:
        """Wait for the call; return its result or raise its exception."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"call still running after {timeout:g} s")
        if self.error is not None:
            raise self.error
        return self.result


def threads_named(prefix: str) -> list[str]:
    """Return the names of live threads whose name starts with *prefix*."""
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
