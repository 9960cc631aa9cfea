"""Many writers through one store: every message stored once, in each writer's order.

Eight threads (and eight asyncio tasks) share one pool of four connections.
Writers 0 to 3 write into one shared conversation and writers 4 to 7 into one
conversation each. Even writers add one message per call and odd writers add
batches, so that checkouts and multi-row inserts interleave.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any
from uuid import UUID

import psycopg

from hwlab_sql import AsyncStore, Store
from tests.helpers import count_rows

WRITERS = 8
MESSAGES_PER_WRITER = 2_000
BATCH_SIZE = 25
POOL_SIZE = 4
# Generous bounds: a deadlocked pool fails the test instead of hanging CI.
JOIN_TIMEOUT = 120.0


def _content(writer: int, index: int) -> str:
    return f"writer {writer} message {index}"


def _batches(writer: int) -> list[list[tuple[str, str]]]:
    pairs = [("user", _content(writer, i)) for i in range(MESSAGES_PER_WRITER)]
    size = 1 if writer % 2 == 0 else BATCH_SIZE
    return [pairs[i : i + size] for i in range(0, len(pairs), size)]


def _targets(shared: UUID, own: list[UUID]) -> list[UUID]:
    """Return the conversation each writer writes into."""
    return [
        shared if w < WRITERS // 2 else own[w - WRITERS // 2] for w in range(WRITERS)
    ]


def _check_stored(
    store: Any, db: psycopg.Connection[Any], targets: list[UUID], ids: list[list[UUID]]
) -> None:
    expected_total = WRITERS * MESSAGES_PER_WRITER
    assert count_rows(db, "messages") == expected_total
    returned = [message_id for writer_ids in ids for message_id in writer_ids]
    assert len(returned) == expected_total
    assert len(set(returned)) == expected_total

    counts = {s.id: s.message_count for s in store.list_conversations()}
    stored_ids: set[UUID] = set()
    for conversation_id in set(targets):
        messages = store.get_conversation(conversation_id).messages
        writers = [w for w in range(WRITERS) if targets[w] == conversation_id]
        assert counts[conversation_id] == len(messages)
        assert len(messages) == len(writers) * MESSAGES_PER_WRITER
        contents = [m.content for m in messages]
        duplicates = [c for c, n in Counter(contents).items() if n > 1]
        assert duplicates == []
        for writer in writers:
            prefix = f"writer {writer} "
            mine = [c for c in contents if c.startswith(prefix)]
            expected = [_content(writer, i) for i in range(MESSAGES_PER_WRITER)]
            assert mine == expected, f"writer {writer}: order or content differs"
        stored_ids.update(m.id for m in messages)
    assert stored_ids == set(returned)


def test_threads_share_one_store(dsn: str, db: psycopg.Connection[Any]) -> None:
    with Store.open(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE) as store:
        shared = store.create_conversation(model="shared")
        own = [store.create_conversation(model="own") for _ in range(WRITERS // 2)]
        targets = _targets(shared, own)
        ids: list[list[UUID]] = [[] for _ in range(WRITERS)]
        errors: list[BaseException] = []
        start = threading.Barrier(WRITERS)

        def write(writer: int) -> None:
            try:
                start.wait(timeout=30)
                for batch in _batches(writer):
                    if len(batch) == 1:
                        role, content = batch[0]
                        ids[writer].append(
                            store.add_message(targets[writer], role, content)
                        )
                    else:
                        ids[writer] += store.add_messages(targets[writer], batch)
            except BaseException as exc:  # reported by the assert below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT)
        assert [t.name for t in threads if t.is_alive()] == []
        assert errors == []
        _check_stored(store, db, targets, ids)


def test_tasks_share_one_async_store(dsn: str, db: psycopg.Connection[Any]) -> None:
    async def run() -> tuple[AsyncStore, list[UUID], list[list[UUID]]]:
        store = await AsyncStore.open(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE)
        shared = await store.create_conversation(model="shared")
        own = [await store.create_conversation(model="own") for _ in range(4)]
        targets = _targets(shared, own)
        ids: list[list[UUID]] = [[] for _ in range(WRITERS)]
        start = asyncio.Event()

        async def write(writer: int) -> None:
            await start.wait()
            for batch in _batches(writer):
                if len(batch) == 1:
                    role, content = batch[0]
                    ids[writer].append(
                        await store.add_message(targets[writer], role, content)
                    )
                else:
                    ids[writer] += await store.add_messages(targets[writer], batch)

        tasks = [asyncio.create_task(write(w)) for w in range(WRITERS)]
        start.set()
        await asyncio.wait_for(asyncio.gather(*tasks), JOIN_TIMEOUT)
        return store, targets, ids

    with asyncio.Runner() as runner:
        store, targets, ids = runner.run(run())
        try:
            _check_stored(_Blocking(store, runner), db, targets, ids)
        finally:
            runner.run(store.close())


class _Blocking:
    """The two read methods of an AsyncStore, run to completion."""

    def __init__(self, store: AsyncStore, runner: asyncio.Runner) -> None:
        self._store = store
        self._runner = runner

    def list_conversations(self) -> Any:
        return self._runner.run(self._store.list_conversations())

    def get_conversation(self, conversation_id: UUID) -> Any:
        return self._runner.run(self._store.get_conversation(conversation_id))
