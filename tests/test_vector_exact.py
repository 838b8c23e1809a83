"""A vector search among a few ids (a kind, a time range) compares the query with each of their
vectors instead of walking the HNSW graph (memory/longterm/vectors.py, issue 19): the same
answer as the graph gives and as a brute-force cosine gives, on embedded Chroma and on
`chroma run`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from memory_support import BACKENDS, chroma_server, open_index

from memory.embedder import Embedder
from memory.longterm.vectors import EXACT_IDS

DIM = 384


class Named:
    """What `VectorIndex.open` reads of an embedder: its name and dimension."""

    name = "exact-test"
    dim = DIM


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-exact") / "data") as url:
        yield url


def _cosine(stored: np.ndarray, query: np.ndarray) -> np.ndarray:
    return stored @ query / (np.linalg.norm(stored, axis=1) * np.linalg.norm(query))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_search_among_a_few_ids_is_the_exact_nearest_of_them(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("server_url") if backend == "server" else None
    embedder: Embedder = Named()  # type: ignore[assignment]
    index = open_index(backend, embedder, path=tmp_path / "chroma", url=url)
    rng = np.random.default_rng(7)
    # not unit length: the similarity must be the cosine, not the dot product
    stored = (rng.standard_normal((1200, DIM)) * rng.uniform(0.2, 5.0, (1200, 1))).astype(
        np.float32
    )
    ids = list(range(1, 1201))
    try:
        index.upsert(1, ids, stored)
        query = rng.standard_normal(DIM).astype(np.float32)
        allowed = sorted(rng.choice(ids, 60, replace=False).tolist())
        never_stored = [5001, 5002]
        got = index.query(1, query, 10, [*allowed, *never_stored])

        similarity = _cosine(stored[np.array(allowed) - 1], query)
        order = np.argsort(-similarity)[:10]
        assert [i for i, _ in got] == [allowed[j] for j in order]
        assert np.allclose([s for _, s in got], similarity[order], atol=1e-5)

        # the graph, asked without a filter, measures the same similarities
        graph = dict(index.query(1, query, 1200))
        for memory_id, value in got:
            assert graph[memory_id] == pytest.approx(value, abs=1e-4)

        assert len(index.query(1, query, 10, never_stored)) == 0
        # past the threshold the graph filters: the same best id among many
        many = sorted(rng.choice(ids, EXACT_IDS + 100, replace=False).tolist())
        best = max(many, key=lambda i: float(_cosine(stored[i - 1 : i], query)[0]))
        assert index.query(1, query, 5, many)[0][0] == best
    finally:
        index.close()
