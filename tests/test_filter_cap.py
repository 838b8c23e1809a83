"""A vector search filtered by kind first asks SQLite which ids pass (memory/longterm/retrieval.py);
past FILTER_IDS it searches unfiltered and filters what comes back. That a filter passes too many
is remembered for a while (counting read 3,001 ids every turn), and the search still answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from memory_support import open_index

from memory.clock import FrozenClock
from memory.embedder import MiniLMEmbedder
from memory.longterm import Kind, LongTermMemory, NewMemory
from memory.longterm.retrieval import FILTER_IDS
from memory.people import Identity
from memory.stores import Stores

FILTERED = "SELECT id FROM memories WHERE user_id = "  # traced with its values


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder.load()


class World:
    def __init__(self, stores: Stores, memory: LongTermMemory, owner: int) -> None:
        self.stores, self.memory, self.owner = stores, memory, owner
        self.statements: list[str] = []

    def counted(self) -> int:
        return sum(s.startswith(FILTERED) for s in self.statements)


@pytest.fixture
async def world(tmp_path: Path, embedder: MiniLMEmbedder) -> AsyncIterator[World]:
    clock = FrozenClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    stores = await Stores.open(tmp_path / "steward.db", clock)
    owner = await stores.people.admit(Identity("test", "owner"), "Owner")
    memory = LongTermMemory.from_stores(stores, clock)
    index = open_index("embedded", embedder, path=tmp_path / "chroma", url=None)
    await memory.attach(embedder, index)
    facts = [NewMemory(owner.id, f"Filler fact number {i}.") for i in range(FILTER_IDS + 10)]
    noise = np.random.default_rng(3).standard_normal((len(facts), embedder.dim))
    await memory.save_many(facts, vectors=noise.astype(np.float32))
    await memory.save(NewMemory(owner.id, "The spare key is under the blue flowerpot."))
    await memory.save(NewMemory(owner.id, "Keep the receipts in the green folder.", kind=Kind.NOTE))
    out = World(stores, memory, owner.id)
    await stores.db._conn.set_trace_callback(out.statements.append)
    try:
        yield out
    finally:
        await memory.close()
        await stores.close()


async def test_a_filter_passing_too_many_is_counted_once_and_still_answers(world: World) -> None:
    m = world.memory
    for _ in range(3):
        found = await m.search(
            world.owner, "where is the spare key", 3, mode="vector", kinds=[Kind.FACT]
        )
        assert found.memories[0].text == "The spare key is under the blue flowerpot."
    assert world.counted() == 1
    # a filter under the cap is asked each time: its ids are the search's
    for _ in range(2):
        notes = await m.search(world.owner, "receipts", 3, mode="vector", kinds=[Kind.NOTE])
        assert [x.text for x in notes.memories] == ["Keep the receipts in the green folder."]
    assert world.counted() == 3
