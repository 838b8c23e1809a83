"""A vector search filtered by kind first asks SQLite which ids pass (memory/longterm/retrieval.py);
past FILTER_IDS it searches unfiltered and filters what comes back. That a filter passes too many
is remembered for a while (counting read 3,001 ids every turn), and the search still answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from memory_support import Traced, traced_memory

from memory.embedder import MiniLMEmbedder
from memory.longterm import Kind, NewMemory
from memory.longterm.retrieval import FILTER_IDS

FILTERED = "SELECT id FROM memories WHERE user_id = "  # traced with its values


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder.load()


@pytest.fixture
async def world(tmp_path: Path, embedder: MiniLMEmbedder) -> AsyncIterator[Traced]:
    async with traced_memory(tmp_path, embedder) as out:
        facts = [NewMemory(out.owner, f"Filler fact number {i}.") for i in range(FILTER_IDS + 10)]
        noise = np.random.default_rng(3).standard_normal((len(facts), embedder.dim))
        await out.memory.save_many(facts, vectors=noise.astype(np.float32))
        await out.memory.save(NewMemory(out.owner, "The spare key is under the blue flowerpot."))
        note = NewMemory(out.owner, "Keep the receipts in the green folder.", kind=Kind.NOTE)
        await out.memory.save(note)
        await out.trace()
        yield out


async def test_a_filter_passing_too_many_is_counted_once_and_still_answers(world: Traced) -> None:
    m = world.memory
    for _ in range(3):
        found = await m.search(
            world.owner, "where is the spare key", 3, mode="vector", kinds=[Kind.FACT]
        )
        assert found.memories[0].text == "The spare key is under the blue flowerpot."
    assert world.count(FILTERED) == 1
    # a filter under the cap is asked each time: its ids are the search's
    for _ in range(2):
        notes = await m.search(world.owner, "receipts", 3, mode="vector", kinds=[Kind.NOTE])
        assert [x.text for x in notes.memories] == ["Keep the receipts in the green folder."]
    assert world.count(FILTERED) == 3
