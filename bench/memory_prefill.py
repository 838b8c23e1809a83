"""The owner's long-term memory filled offline to a size (`make bench`, `turn_profile`), and the
memory benchmark's retrieval latency timed on that store with Steward stopped."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import ROOT

sys.path.insert(0, str(ROOT))


async def populate_memories(data: Path, total: int) -> dict[str, Any]:
    """Grow the owner's long-term memories to `total`, offline, through the store's bulk path
    (records.insert_many + VectorIndex.upsert + records.mark_indexed, as reconcile writes them)
    with cheap stand-ins for the filler's embeddings (bench/memory_bench.py filler_vectors)."""
    from bench.memory_bench import (
        LABELLED,
        filler_centres,
        filler_vectors,
        labelled_memory,
        synthetic_texts,
    )
    from memory.clock import SystemClock
    from memory.embedder import load_embedder
    from memory.longterm import LongTermMemory, NewMemory, VectorIndex
    from memory.longterm.evaluation import load_labelled_set
    from memory.stores import Stores

    started = time.perf_counter()
    clock = SystemClock()
    stores = await Stores.open(data / "steward.db", clock)
    try:
        owner = await stores.people.owner()
        assert owner is not None
        store = LongTermMemory.from_stores(stores, clock)
        have = await store.records.count(active_only=False)
        add = before = total - have
        if add <= 0:
            return {"memories": have, "added": 0, "seconds": 0.0}
        embedder = await asyncio.to_thread(load_embedder, "minilm")
        index = VectorIndex.open(path=data / "chroma", embedder=embedder.name, dim=embedder.dim)
        if not have:  # the labelled set's memories first, really embedded, all the owner's
            labelled = load_labelled_set(LABELLED)
            real = labelled.memories
            now = datetime.now(UTC)
            ids = await store.records.insert_many([labelled_memory(m, owner.id, now) for m in real])
            vectors = await asyncio.to_thread(embedder.embed, [m["text"] for m in real])
            await asyncio.to_thread(index.upsert, owner.id, ids, vectors)
            await store.records.mark_indexed(ids, user_id=owner.id)
            have, add = len(real), add - len(real)
        texts = synthetic_texts(add, seed=have + 7)
        centres = await asyncio.to_thread(filler_centres, embedder)
        rng = random.Random(have)
        now = datetime.now(UTC)
        for start in range(0, add, 5000):
            part = texts[start : start + 5000]
            ids = await store.records.insert_many(
                [
                    NewMemory(
                        user_id=owner.id,
                        text=text,
                        importance=rng.choice((0.3, 0.5, 0.7)),
                        created_at=now - timedelta(days=rng.randint(0, 900)),
                    )
                    for text in part
                ]
            )
            vectors = filler_vectors(centres, len(part), seed=have + start)
            await asyncio.to_thread(index.upsert, owner.id, ids, vectors)
            await store.records.mark_indexed(ids, user_id=owner.id)
        with contextlib.suppress(Exception):
            await store.close()
        return {
            "memories": total,
            "added": before,
            "seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        await stores.close()


async def retrieval_latency(data: Path, rounds: int) -> dict[str, Any]:
    """bench/memory_bench.py's latency() on Steward's own store (process stopped): one user
    (the owner) holds every memory, the labelled ones among them."""
    from bench.memory_bench import LABELLED, latency
    from memory.clock import SystemClock
    from memory.embedder import load_embedder
    from memory.longterm import LongTermMemory, VectorIndex
    from memory.longterm.evaluation import load_labelled_set
    from memory.stores import Stores

    clock = SystemClock()
    stores = await Stores.open(data / "steward.db", clock)
    try:
        owner = await stores.people.owner()
        assert owner is not None
        labelled = load_labelled_set(LABELLED)
        embedder = await asyncio.to_thread(load_embedder, "minilm")
        index = VectorIndex.open(path=data / "chroma", embedder=embedder.name, dim=embedder.dim)
        store = LongTermMemory.from_stores(stores, clock)
        await store.attach(embedder, index)
        ids = dict.fromkeys(labelled.users, owner.id)
        row = await latency(store, index, embedder, labelled, ids, rounds)
        with contextlib.suppress(Exception):
            await store.close()
        return row
    finally:
        await stores.close()
