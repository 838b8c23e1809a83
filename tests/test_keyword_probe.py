"""A turn searches memories and messages at once with the same words: how common each word is
(`KeywordIndex._term_counts`) is asked of SQLite once, not once per search, and a search that is
cancelled while it probes leaves the other one its answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from memory_support import Traced, traced_memory

from memory.longterm import NewMemory
from memory.longterm.types import Kind

PROBE = "SELECT 0 AS i, (SELECT COUNT(*)"


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[Traced]:
    async with traced_memory(tmp_path) as out:  # keyword search only: no vectors
        quokkas = [f"The quokka number {i} sleeps by the harbour." for i in range(20)]
        await out.memory.save_many([NewMemory(out.owner, text) for text in quokkas])
        await out.trace()
        yield out


async def test_two_searches_at_once_probe_a_new_word_once(traced: Traced) -> None:
    m = traced.memory
    found, said = await asyncio.gather(
        m.search(traced.owner, "quokka", 5, mode="keyword", kinds=[Kind.FACT]),
        m.search(traced.owner, "quokka", 5, mode="keyword", kinds=[Kind.MESSAGE]),
    )
    assert traced.count(PROBE) == 1
    assert len(found.memories) == 5 and said.memories == []
    # counted now: later searches ask nothing
    await m.search(traced.owner, "quokka", 5, mode="keyword")
    assert traced.count(PROBE) == 1


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
