"""AsyncStore beyond the shared behaviour tests: API parity and concurrency."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from hwlab_sql import AsyncStore, AsyncTransaction, NotFoundError, Store, Transaction
from tests.helpers import count_rows


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member)
    }


def _without_annotations(signature: inspect.Signature) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(
    ("sync_cls", "async_cls"), [(Store, AsyncStore), (Transaction, AsyncTransaction)]
)
def test_async_twin_has_same_methods(sync_cls: type, async_cls: type) -> None:
    sync_methods = _public_methods(sync_cls)
    async_methods = _public_methods(async_cls)
    assert sorted(sync_methods) == sorted(async_methods)
    for name, signature in sync_methods.items():
        assert _without_annotations(signature) == _without_annotations(
            async_methods[name]
        ), name


def test_async_conversation_methods_are_coroutines() -> None:
    for name in [
        "create_conversation",
        "add_message",
        "add_messages",
        "get_conversation",
        "list_conversations",
        "delete_conversation",
        "run_migrations",
        "close",
    ]:
        assert inspect.iscoroutinefunction(getattr(AsyncStore, name)), name


def test_async_open_as_context_manager(dsn: str) -> None:
    async def scenario() -> AsyncConnectionPool[Any]:
        async with AsyncStore.open(dsn, min_size=1) as store:
            conversation_id = await store.create_conversation(model="ctx")
            assert (await store.get_conversation(conversation_id)).model == "ctx"
            assert await store.run_migrations() == []
            return store.pool

    pool = asyncio.run(scenario())
    assert pool.closed


def test_async_store_wraps_pool_with_dict_rows(
    dsn: str, db: psycopg.Connection[Any]
) -> None:
    """A pool that hands out dict rows still gives typed results."""

    async def scenario() -> None:
        async with AsyncConnectionPool(
            dsn, min_size=1, kwargs={"row_factory": dict_row}, open=False
        ) as pool:
            store = AsyncStore(pool)
            conversation_id = await store.create_conversation(model="dict rows")
            await store.add_messages(conversation_id, [("user", "a"), ("user", "b")])
            conversation = await store.get_conversation(conversation_id)
            assert [m.content for m in conversation.messages] == ["a", "b"]
            (summary,) = await store.list_conversations()
            assert summary.message_count == 2
            await store.close()
            assert not pool.closed

    asyncio.run(scenario())
    assert count_rows(db, "messages") == 2


def test_50_concurrent_tasks_keep_count_and_order(dsn: str) -> None:
    tasks_count = 50
    per_task = 20

    async def writer(store: AsyncStore, conversation_id: Any, task: int) -> None:
        for index in range(per_task):
            await store.add_message(conversation_id, "user", f"{task}:{index}")

    async def scenario() -> list[str]:
        async with AsyncStore.open(dsn, min_size=2, max_size=8) as store:
            conversation_id = await store.create_conversation()
            await asyncio.wait_for(
                asyncio.gather(
                    *(writer(store, conversation_id, t) for t in range(tasks_count))
                ),
                timeout=120,
            )
            conversation = await store.get_conversation(conversation_id)
            (summary,) = await store.list_conversations()
            assert summary.message_count == tasks_count * per_task
            return [m.content for m in conversation.messages]

    contents = asyncio.run(scenario())
    assert len(contents) == tasks_count * per_task
    assert len(set(contents)) == len(contents)
    for task in range(tasks_count):
        mine = [c for c in contents if c.startswith(f"{task}:")]
        assert mine == [f"{task}:{index}" for index in range(per_task)]


def test_async_transaction_rolls_back(dsn: str, db: psycopg.Connection[Any]) -> None:
    async def scenario() -> None:
        async with AsyncStore.open(dsn, min_size=1) as store:
            with pytest.raises(NotFoundError):
                async with store.transaction() as tx:
                    conversation_id = await tx.create_conversation()
                    await tx.add_message(conversation_id, "user", "kept?")
                    await tx.delete_conversation(conversation_id)
                    await tx.delete_conversation(conversation_id)

    asyncio.run(scenario())
    assert count_rows(db, "conversations") == 0
    assert count_rows(db, "messages") == 0


def test_async_open_never_awaited_is_harmless() -> None:
    opening = AsyncStore.open("host=127.0.0.1 port=1")
    # Closing the pending coroutine avoids a "never awaited" warning.
    opening._opening.close()
