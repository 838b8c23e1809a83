"""One text, one embedding; vectors behind the turns written in batches, replies first (issue
19). Counted with the embedder's own counter (`EMBED_STATS`, what GET /metrics reports), never
timed."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from fakes.anthropic import FakeAnthropic, Reply
from harness import running_steward

from memory.clock import FrozenClock
from memory.embed_stats import EMBED_STATS
from memory.longterm import Kind, LongTermMemory, NewMessage, Source, VectorIndex
from memory.longterm.behind import BACKGROUND_NICE, MAX_OWED, QUIET, UPSERT_ROWS, upserts
from memory.onnx_minilm import OnnxMiniLMEmbedder
from memory.people import Identity
from memory.stores import Stores

NOW = datetime(2026, 6, 1, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def fp32() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder.load(variant="fp32")


def counts() -> tuple[int, int]:
    snap = EMBED_STATS.snapshot()
    return snap["calls"], snap["texts"]


async def test_a_turns_message_is_embedded_once(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    replies = iter(range(1, 100))
    fake_model.on_request(lambda request: Reply.text(f"Noted ({next(replies)})."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        memory = h.steward.memory
        assert memory is not None
        await memory.start()
        async with asyncio.timeout(60):
            await memory.wait_hybrid()
        await h.say("The boiler needs its yearly service in October.")
        await memory.store.flush_vectors()
        calls, texts = counts()
        await h.say("My dentist appointment is with a new hygienist.")
        await memory.store.flush_vectors()
        # The message as the recall query (both searches share it) and as its transcript row:
        # one embedding; the reply: one. Before: four (the query twice, the row, the reply).
        assert counts()[1] - texts == 2, counts()
        assert counts()[0] - calls <= 2
        found = await memory.search(1, "tooth doctor booking", 3, kinds=[Kind.MESSAGE])
        assert found.hits[0].memory.text == "My dentist appointment is with a new hygienist."


@dataclass
class World:
    memory: LongTermMemory
    user: int
    chat: int
    busy: list[int]


@pytest.fixture
async def world(tmp_path: Path, fp32: OnnxMiniLMEmbedder) -> AsyncIterator[World]:
    stores = await Stores.open(tmp_path / "steward.db", FrozenClock(NOW))
    user = await stores.people.admit(Identity("test", "alice"), "Alice")
    memory = LongTermMemory.from_stores(stores, FrozenClock(NOW))
    index = VectorIndex.open(path=tmp_path / "chroma", embedder=fp32.name, dim=fp32.dim)
    await memory.attach(fp32, index)
    busy = [0]
    memory.yield_to(lambda: busy[0])
    chat = await memory.create_chat("alice")
    try:
        yield World(memory, user.id, chat, busy)
    finally:
        await memory.close()
        await stores.close()


def said(world: World, text: str, message_id: int) -> NewMessage:
    return NewMessage(
        user_id=world.user,
        chat_id=world.chat,
        text=text,
        speaker="Alice",
        created_at=NOW,
        message_id=message_id,
        source=Source.OWNER_SAID,
    )


TEXTS = [
    "The plumber comes on Tuesday morning.",
    "Buy oat milk and rye bread.",
    "My sister lands in Lisbon on Friday.",
    "The car's MOT is due in March.",
    "Water the tomatoes twice a week in August.",
]


async def unindexed(world: World) -> int:
    return len(await world.memory.records.unindexed_ids(world.user))


async def test_rows_of_several_turns_are_embedded_in_one_call(world: World) -> None:
    world.busy[0] = 3  # chats with turns in flight: the writer waits
    calls, texts = counts()
    for n, text in enumerate(TEXTS, start=1):
        await world.memory.save_messages([said(world, text, n)])
        await asyncio.sleep(0.1)  # the writer had its chances to run
    assert counts() == (calls, texts)  # nothing embedded while turns are in flight
    assert await unindexed(world) == len(TEXTS)
    world.busy[0] = 0
    await world.memory.flush_vectors()
    assert counts() == (calls + 1, texts + len(TEXTS))  # one call for the five turns' rows
    assert await unindexed(world) == 0
    found = await world.memory.search(world.user, "flight to Portugal", 1, mode="vector")
    assert found.hits[0].memory.text == TEXTS[2]


async def test_rows_said_between_quick_turns_wait_for_a_quiet_second(world: World) -> None:
    """No turn in flight, but the next message follows within QUIET: still one batch (a Chroma
    upsert holds the GIL ~6 ms whatever its size, so one per turn stalled the loop)."""
    calls, texts = counts()
    for n, text in enumerate(TEXTS, start=1):
        await world.memory.save_messages([said(world, text, n)])
        await asyncio.sleep(QUIET / 4)  # between two turns: nothing in flight
    assert counts() == (calls, texts)
    async with asyncio.timeout(30):
        while await unindexed(world):  # noqa: ASYNC110 (rows in SQLite: no event to wait on)
            await asyncio.sleep(0.05)
    assert counts() == (calls + 1, texts + len(TEXTS))


async def test_a_query_is_not_queued_behind_the_rows_owed(world: World) -> None:
    world.busy[0] = 1
    for n, text in enumerate(TEXTS, start=1):
        await world.memory.save_messages([said(world, text, n)])
    calls, texts = counts()
    found = await world.memory.search(world.user, "vegetables in the garden", 3, mode="hybrid")
    assert counts() == (calls + 1, texts + 1)  # the query alone: the rows still wait
    assert await unindexed(world) == len(TEXTS)
    assert found.mode == "hybrid"
    # Its vector is kept: the same text said next is not embedded again when indexed.
    await world.memory.save_messages([said(world, "vegetables in the garden", 99)])
    world.busy[0] = 0
    await world.memory.flush_vectors()
    assert counts() == (calls + 2, texts + 1 + len(TEXTS))


async def test_the_writer_runs_anyway_when_too_many_rows_are_owed(world: World) -> None:
    world.busy[0] = 1  # turns in flight for good
    rows = [said(world, f"Note number {n} about the allotment shed.", n) for n in range(MAX_OWED)]
    await world.memory.save_messages(rows)
    async with asyncio.timeout(120):
        while await unindexed(world):  # noqa: ASYNC110 (rows in SQLite: no event to wait on)
            await asyncio.sleep(0.05)


async def test_two_searches_of_one_text_at_once_embed_it_once(world: World) -> None:
    calls, texts = counts()
    await asyncio.gather(
        world.memory.search(world.user, "when is the car inspection", 3, kinds=[Kind.MESSAGE]),
        world.memory.search(world.user, "when is the car inspection", 3),
    )
    assert counts() == (calls + 1, texts + 1)


def test_fp32_vectors_are_the_same_batched_or_alone(fp32: OnnxMiniLMEmbedder) -> None:
    batched = fp32.embed(TEXTS)
    for text, vector in zip(TEXTS, batched, strict=True):
        alone = fp32.embed([text])[0]
        assert float(np.dot(alone, vector)) >= 0.9999


def test_a_chunk_of_rows_is_upserted_a_user_and_a_few_at_a_time() -> None:
    """A Chroma upsert holds the GIL throughout (~0.7 ms a vector into a 50k index): rows owed
    under steady load go in upserts of UPSERT_ROWS, each of one user's rows in order."""
    rows = [(100 + i, 1 + i % 3, f"row {i}") for i in range(300)]
    vectors = np.arange(300 * 4, dtype=np.float32).reshape(300, 4)
    chunks = list(upserts(rows, vectors, UPSERT_ROWS))
    assert max(len(ids) for _, ids, _ in chunks) == UPSERT_ROWS
    assert sorted(i for _, ids, _ in chunks for i in ids) == [r[0] for r in rows]
    for user_id, ids, part in chunks:
        assert all(rows[i - 100][1] == user_id for i in ids)
        assert ids == sorted(ids)
        assert np.array_equal(part, vectors[[i - 100 for i in ids]])
    assert len(chunks) == sum(-(-100 // UPSERT_ROWS) for _ in range(3))


class Seen:
    """The embedder, noting each call's thread and its nice value (Linux: per thread)."""

    def __init__(self, inner: OnnxMiniLMEmbedder) -> None:
        self._inner = inner
        self.calls: list[tuple[str, int, int]] = []  # (thread name, nice, texts)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        self.calls.append((threading.current_thread().name, nice, len(texts)))
        return self._inner.embed(texts)


async def test_the_writer_embeds_at_a_lower_priority_than_queries(
    tmp_path: Path, fp32: OnnxMiniLMEmbedder
) -> None:
    """Vectors written behind are background work: their embeddings run on a thread at nice
    BACKGROUND_NICE, so a turn's query (and the loop) get the CPU first; queries run as is."""
    stores = await Stores.open(tmp_path / "steward.db", FrozenClock(NOW))
    user = await stores.people.admit(Identity("test", "alice"), "Alice")
    memory = LongTermMemory.from_stores(stores, FrozenClock(NOW))
    seen = Seen(fp32)
    await memory.attach(seen, VectorIndex.open(path=tmp_path / "c", embedder=fp32.name, dim=384))
    try:
        world = World(memory, user.id, await memory.create_chat("alice"), [0])
        normal = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        await memory.save_messages([said(world, text, n) for n, text in enumerate(TEXTS, 1)])
        await memory.flush_vectors()
        await memory.search(user.id, "vegetables in the garden", 3, mode="hybrid")
    finally:
        await memory.close()
        await stores.close()
    behind = [(name, nice) for name, nice, texts in seen.calls if texts == len(TEXTS)]
    query = [(name, nice) for name, nice, texts in seen.calls if texts == 1]
    assert behind == [("memory-behind_0", min(19, normal + BACKGROUND_NICE))]
    assert query and all(nice == normal for _, nice in query)
