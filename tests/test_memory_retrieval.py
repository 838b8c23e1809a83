"""Retrieval quality on the labelled set (tests/data/retrieval_set.jsonl): recall@5 floors.

Measured (bench/memory_bench.py, README "Memory"): hybrid recall@5 0.991 / MRR 0.92, vector-only
0.982 / 0.93, keyword-only 0.864 / 0.79. The floors sit a little below, so a real regression
(a broken fusion, scoping or supersession) fails while run-to-run noise does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from memory_support import BACKENDS, chroma_server, open_index

from memory.clock import FrozenClock
from memory.embedder import MiniLMEmbedder
from memory.longterm import LongTermMemory
from memory.longterm.evaluation import evaluate, load_labelled_set, populate
from memory.people import Identity
from memory.stores import Stores

LABELLED = Path(__file__).parent / "data" / "retrieval_set.jsonl"
NOW = datetime(2025, 11, 1, 12, tzinfo=UTC)
FLOORS = {"hybrid": (0.95, 0.85), "vector": (0.93, 0.85), "keyword": (0.80, 0.70)}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-server") / "data") as url:
        yield url


def test_the_labelled_set_is_big_and_varied() -> None:
    labelled = load_labelled_set(LABELLED)
    assert len(labelled.cases) >= 200
    categories = Counter(case["category"] for case in labelled.cases)
    assert set(categories) >= {"preference", "changed", "paraphrase", "name", "date", "episode"}
    assert all(count >= 6 for count in categories.values())
    keys = {memory["key"] for memory in labelled.memories}
    for case in labelled.cases:
        assert set(case["expected"]) <= keys and case["query"].strip()
        assert all(key.split(".")[0] == case["user"] for key in case["expected"])


@pytest.mark.parametrize("backend", BACKENDS)
async def test_recall_at_5_floor_for_hybrid_vector_and_keyword(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("server_url") if backend == "server" else None
    labelled = load_labelled_set(LABELLED)
    clock = FrozenClock(NOW)
    stores = await Stores.open(tmp_path / "steward.db", clock)
    users = {
        name: (await stores.people.admit(Identity("test", name), name)).id
        for name in labelled.users
    }
    embedder = MiniLMEmbedder.load()
    index = open_index(backend, embedder, path=tmp_path / "chroma", url=url)
    memory = LongTermMemory.from_stores(stores, clock)
    await memory.attach(embedder, index)
    try:
        keys = await populate(memory, labelled, users, NOW)
        modes = ("hybrid", "vector", "keyword") if backend == "embedded" else ("hybrid",)
        results = {
            mode: await evaluate(memory, labelled, users, keys, mode=mode)  # type: ignore[arg-type]
            for mode in modes
        }
    finally:
        await memory.close()
        await stores.close()
    for mode, result in results.items():
        recall_floor, mrr_floor = FLOORS[mode]
        misses = [(r.case["query"], r.ranked) for r in result.misses()][:5]
        assert result.recall >= recall_floor, (mode, result.recall, misses)
        assert result.mrr >= mrr_floor, (mode, result.mrr)
        assert result.forbidden_hits == 0, mode  # a superseded fact never comes back
    hybrid = results["hybrid"]
    assert hybrid.recall >= max(r.recall for r in results.values())
    assert hybrid.by_category()["changed"][1] == 1.0
