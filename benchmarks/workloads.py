"""The benchmarked workloads, each given open clients and returning measurements."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from hwlab_sql import Role

from .clients import Client, Pair
from .measure import LatencyRun, ThreadedRun, run_threads, time_round_robin

ROLES: tuple[Role, ...] = ("user", "assistant")
# The contents are made of these words, in random order.
SENTENCE = (
    "the model answered with a short summary of the request and asked which"
    " format the user wanted for the table of results before it went on"
)
WORDS = SENTENCE.split()
# About one message in ten contains text outside ASCII, which the facade's
# input check encodes to UTF-8; ASCII text skips that step.
NON_ASCII_WORDS = ("café", "naïve", "Größe", "日本語", "résumé", "🙂")


def make_content(rng: random.Random) -> str:
    """Return a message of 80 to 319 characters, 200 on average."""
    length = rng.randrange(80, 320)
    words = [rng.choice(WORDS) for _ in range(length // 4)]
    if rng.random() < 0.1:
        # The first half of the words ends well before the cut at length,
        # so the replacement stays in the message.
        words[rng.randrange(len(words) // 2)] = rng.choice(NON_ASCII_WORDS)
    return " ".join(words)[:length]


def make_batches(
    conversation_ids: Sequence[UUID], per_conversation: int, seed: int
) -> list[tuple[UUID, list[Pair]]]:
    """Return one batch of (role, content) pairs per conversation, the same per seed."""
    rng = random.Random(seed)
    return [
        (
            conversation_id,
            [(ROLES[i % 2], make_content(rng)) for i in range(per_conversation)],
        )
        for conversation_id in conversation_ids
    ]


@dataclass(frozen=True)
class IngestRun:
    """Rows stored by one client in one repetition and the time it took."""

    rows: int
    seconds: float
    stopped_early: bool

    @property
    def rows_per_second(self) -> float:
        """Ingest throughput."""
        return self.rows / self.seconds


def ingest(
    client: Client, batches: Sequence[tuple[UUID, list[Pair]]], deadline: float
) -> IngestRun:
    """Store every batch with one add_messages call (one transaction) each."""
    rows = 0
    started = time.perf_counter()
    for conversation_id, pairs in batches:
        if time.monotonic() > deadline:
            return IngestRun(rows, time.perf_counter() - started, True)
        client.add_messages(conversation_id, pairs)
        rows += len(pairs)
    return IngestRun(rows, time.perf_counter() - started, False)


def ingests(
    clients: Sequence[Client],
    batches: dict[str, list[tuple[UUID, list[Pair]]]],
    deadline: float,
) -> LatencyRun:
    """Time add_messages of each client's batches, one call per batch."""

    def caller(client: Client) -> Callable[[int], object]:
        def call(round_number: int) -> object:
            conversation_id, pairs = batches[client.label][round_number]
            client.add_messages(conversation_id, pairs)
            return None

        return call

    calls = {client.label: caller(client) for client in clients}
    count = min(len(client_batches) for client_batches in batches.values())
    return time_round_robin(calls, count, 0, deadline)


def single_adds(
    clients: Sequence[Client],
    conversation_ids: Sequence[UUID],
    count: int,
    warmup: int,
    deadline: float,
) -> LatencyRun:
    """Time single add_message calls, cycling through the conversations."""
    rng = random.Random(1)
    contents = [make_content(rng) for _ in range(256)]

    def caller(client: Client) -> Callable[[int], object]:
        def call(round_number: int) -> object:
            conversation_id = conversation_ids[round_number % len(conversation_ids)]
            content = contents[round_number % len(contents)]
            return client.add_message(conversation_id, "user", content)

        return call

    calls = {client.label: caller(client) for client in clients}
    return time_round_robin(calls, count, warmup, deadline)


def gets(
    targets: dict[str, tuple[Client, UUID]], count: int, warmup: int, deadline: float
) -> LatencyRun:
    """Time get_conversation through each (client, conversation id) of *targets*.

    The keys of *targets* name the series in the result.
    """

    def caller(client: Client, conversation_id: UUID) -> Callable[[int], object]:
        return lambda _: client.get_conversation(conversation_id)

    calls = {key: caller(*target) for key, target in targets.items()}
    return time_round_robin(calls, count, warmup, deadline)


def lists(
    clients: dict[str, Client], limit: int, count: int, warmup: int, deadline: float
) -> LatencyRun:
    """Time list_conversations(limit) through each client; keys name the series."""

    def caller(client: Client) -> Callable[[int], object]:
        return lambda _: client.list_conversations(limit)

    calls = {key: caller(client) for key, client in clients.items()}
    return time_round_robin(calls, count, warmup, deadline)


def threaded_adds(
    client: Client,
    conversation_ids: Sequence[UUID],
    per_thread: int,
    deadline: float,
) -> ThreadedRun:
    """Add messages from one thread per conversation through one client's pool."""
    rng = random.Random(2)
    contents = [make_content(rng) for _ in range(256)]

    def call(thread_number: int, i: int) -> object:
        content = contents[(thread_number * 31 + i) % len(contents)]
        return client.add_message(conversation_ids[thread_number], "user", content)

    return run_threads(call, len(conversation_ids), per_thread, deadline)
