"""A turn searches memories and messages at once with the same words: how common each word is
(`KeywordIndex._term_counts`) is asked of SQLite once, not once per search, and a search that is
cancelled while it probes leaves the other one its answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memory.clock import FrozenClock
from memory.longterm import LongTermMemory, NewMemory
from memory.longterm.types import Kind
from memory.people import Identity
from memory.stores import Stores

PROBE = "SELECT 0 AS i, (SELECT COUNT(*)"


class Traced:
    def __init__(self, stores: Stores, memory: LongTermMemory, owner: int) -> None:
        self.stores, self.memory, self.owner = stores, memory, owner
        self.statements: list[str] = []

    def probes(self) -> int:
        return sum(s.startswith(PROBE) for s in self.statements)


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[Traced]:
    clock = FrozenClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    stores = await Stores.open(tmp_path / "steward.db", clock)
    owner = await stores.people.admit(Identity("test", "owner"), "Owner")
    memory = LongTermMemory.from_stores(stores, clock)  # keyword search only: no vectors
    await memory.save_many(
        [NewMemory(owner.id, f"The quokka number {i} sleeps by the harbour.") for i in range(20)]
    )
    out = Traced(stores, memory, owner.id)
    await stores.db._conn.set_trace_callback(out.statements.append)
    try:
        yield out
    finally:
        await memory.close()
        await stores.close()


async def test_two_searches_at_once_probe_a_new_word_once(traced: Traced) -> None:
    m = traced.memory
    found, said = await asyncio.gather(
        m.search(traced.owner, "quokka", 5, mode="keyword", kinds=[Kind.FACT]),
        m.search(traced.owner, "quokka", 5, mode="keyword", kinds=[Kind.MESSAGE]),
    )
    assert traced.probes() == 1
    assert len(found.memories) == 5 and said.memories == []
    # counted now: later searches ask nothing
    await m.search(traced.owner, "quokka", 5, mode="keyword")
    assert traced.probes() == 1


async def test_a_search_cancelled_while_probing_leaves_the_other_its_answer(
    traced: Traced,
) -> None:
    m = traced.memory
    first = asyncio.create_task(m.search(traced.owner, "harbour", 5, mode="keyword"))
    await asyncio.sleep(0)  # the first search is probing "harbour"
    second = asyncio.create_task(m.search(traced.owner, "harbour", 3, mode="keyword"))
    await asyncio.sleep(0)  # the second waits for it
    first.cancel()
    result = await asyncio.wait_for(second, 10)
    assert len(result.memories) == 3
    with pytest.raises(asyncio.CancelledError):
        await first
