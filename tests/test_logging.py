"""What the library logs, at which level; the application adds the handlers."""

from __future__ import annotations

import ast
import asyncio
import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest

import hwlab_sql
from hwlab_sql import AsyncStore, Store

PACKAGE_DIR = Path(hwlab_sql.__file__).parent
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}

CONTENT = "secret-ish message content 7f3a"
MODEL = "model-name-9c1e"


def _library_loggers() -> list[logging.Logger]:
    names = [
        name
        for name in logging.root.manager.loggerDict
        if name == "hwlab_sql" or name.startswith("hwlab_sql.")
    ]
    return [logging.getLogger(name) for name in sorted(names)]


def _use_sync(dsn: str) -> None:
    with Store.open(dsn, min_size=1) as store:
        store.run_migrations()
        conversation_id = store.create_conversation(model=MODEL)
        store.add_message(conversation_id, "user", CONTENT)
        store.get_conversation(conversation_id)


async def _use_async(dsn: str) -> None:
    async with AsyncStore.open(dsn, min_size=1) as store:
        await store.run_migrations()
        conversation_id = await store.create_conversation(model=MODEL)
        await store.add_message(conversation_id, "user", CONTENT)
        await store.get_conversation(conversation_id)


def test_library_adds_no_handlers(dsn: str) -> None:
    _use_sync(dsn)
    asyncio.run(_use_async(dsn))
    loggers = _library_loggers()
    assert [lg.name for lg in loggers][:2] == ["hwlab_sql", "hwlab_sql.migrations"]
    for logger in loggers:
        assert logger.handlers == [], logger.name
        assert logger.propagate, logger.name
        assert logger.level == logging.NOTSET, logger.name


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_levels_and_loggers(
    kind: str, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="hwlab_sql")
    if kind == "sync":
        _use_sync(dsn)
    else:
        asyncio.run(_use_async(dsn))

    ours = [r for r in caplog.records if r.name.startswith("hwlab_sql")]
    infos = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    debugs = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    assert any(m.startswith("pool hwlab_sql ") and m.endswith(" opened") for m in infos)
    assert any(m.startswith("pool hwlab_sql ") and m.endswith(" closed") for m in infos)
    for name in ("create_conversation", "add_message", "list_messages"):
        assert any(m.startswith(f"query {name} took ") for m in debugs), name
    assert {r.name for r in ours} <= {"hwlab_sql", "hwlab_sql.migrations"}
    assert [r for r in ours if r.levelno >= logging.WARNING] == []


def test_applied_scripts_logged_at_info(
    postgresql: psycopg.Connection[Any], dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    postgresql.autocommit = True
    postgresql.execute(
        "DROP TABLE messages, conversations, hwlab_sql_migrations CASCADE;"
        " DROP FUNCTION messages_update_message_count()"
    )
    caplog.set_level(logging.DEBUG, logger="hwlab_sql")
    with Store.open(dsn, min_size=1) as store:
        applied = store.run_migrations()
    records = [r for r in caplog.records if r.name == "hwlab_sql.migrations"]
    assert [r.getMessage() for r in records] == [f"applied schema/{f}" for f in applied]
    assert {r.levelno for r in records} == {logging.INFO}


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_logs_leave_out_values(
    kind: str, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    if kind == "sync":
        _use_sync(dsn)
    else:
        asyncio.run(_use_async(dsn))
    assert caplog.records
    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r}"
        assert CONTENT not in text
        assert MODEL not in text


def _log_calls(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id.endswith("logger")
        ):
            calls.append(node)
    return calls


def test_log_calls_pass_arguments_lazily() -> None:
    """Messages are %-templates with arguments, never f-strings or pre-formatted."""
    checked = 0
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for call in _log_calls(ast.parse(path.read_text(encoding="utf-8"))):
            position = 1 if call.func.attr == "log" else 0  # type: ignore[attr-defined]
            template = call.args[position]
            where = f"{path.name}:{call.lineno}"
            assert isinstance(template, ast.Constant), where
            assert isinstance(template.value, str), where
            assert (
                template.value.count("%") - 2 * template.value.count("%%")
                == len(call.args) - position - 1
            ), where
            checked += 1
    assert checked >= 5
