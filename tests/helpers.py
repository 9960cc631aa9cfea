"""Helpers shared by the tests: direct database checks and the async adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


def count_rows(conn: psycopg.Connection[Any], table: str) -> int:
    """Return the number of rows in *table* (conversations or messages)."""
    assert table in {"conversations", "messages"}
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    assert row is not None
    return int(row[0])


class AsyncAsSync:
    """Drive an AsyncStore (or AsyncTransaction) through a plain, blocking API.

    The same behavioural test then runs against both facades: coroutine
    methods are run to completion on one event loop, and async context
    managers become plain ones.
    """

    def __init__(self, target: Any, runner: asyncio.Runner) -> None:
        self._target = target
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute
        return self._wrap(attribute)

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if asyncio.iscoroutine(result):
                return self._runner.run(result)
            if hasattr(result, "__aenter__"):
                return self._sync_context(result)
            return result

        return call

    @contextmanager
    def _sync_context(self, manager: Any) -> Iterator[Any]:
        entered = self._runner.run(manager.__aenter__())
        try:
            yield AsyncAsSync(entered, self._runner)
        except BaseException as exc:
            if not self._runner.run(
                manager.__aexit__(type(exc), exc, exc.__traceback__)
            ):
                raise
        else:
            self._runner.run(manager.__aexit__(None, None, None))

    def __repr__(self) -> str:
        return repr(self._target)
