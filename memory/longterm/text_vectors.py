"""Embeddings of texts seen lately, and query embeddings on their own thread.

A turn's message is embedded as the recall query, then again when its transcript row is indexed
behind the turn; two searches of the same turn (memories, messages) ask for the same query at
once. `TextVectors` keeps the last few texts' vectors (bounded LRU, keyed by the text with its
whitespace collapsed: the tokenizer splits on whitespace, so the tokens and the vector are the
same) and shares a query that is being embedded with whoever asks for it meanwhile, so one text
is embedded once. The embedder itself is not touched (bench/memory_bench.py measures it as is).

Queries run on one thread of their own (`memory-query`), never queued behind vectors written
behind in the default executor: the reply waits for its query only. Queries that arrive while
one is embedded are embedded together in the next run, one call: the fp32 graph gives each
sentence the same vector batched or alone (cosine >= 0.9999, tests/test_embed_reuse.py); the
int8 graph runs one sentence per run inside `embed` anyway (memory.onnx_minilm).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from memory.embedder import Embedder
from memory.longterm.types import normalize_text

__all__ = ["QUERY_BATCH", "TextVectors"]

log = logging.getLogger(__name__)

QUERY_BATCH = 32  # queries embedded in one run, at most


class TextVectors:
    def __init__(self, size: int) -> None:
        """`size`: texts kept (0: none, every text embedded every time, as the benchmark of
        retrieval wants)."""
        self._size = size
        self._kept: OrderedDict[str, np.ndarray] = OrderedDict()
        self._running: dict[str, asyncio.Future[np.ndarray]] = {}
        self._order: list[tuple[Embedder, str]] = []
        self._worker: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def clear(self) -> None:
        self._kept.clear()

    def get(self, text: str) -> np.ndarray | None:
        key = normalize_text(text)
        vector = self._kept.get(key)
        if vector is not None:
            self._kept.move_to_end(key)
        return vector

    def put(self, text: str, vector: np.ndarray) -> None:
        if self._size <= 0:
            return
        self._kept[normalize_text(text)] = vector
        self._kept.move_to_end(normalize_text(text))
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)

    async def known(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """The vectors of `texts` kept or being embedded as queries now (awaited); None for
        the others."""
        found: list[np.ndarray | None] = []
        for text in texts:
            vector = self.get(text)
            if vector is None and self._size > 0:
                running = self._running.get(normalize_text(text))
                if running is not None:
                    try:
                        vector = await asyncio.shield(running)
                    except Exception:
                        vector = None
            found.append(vector)
        return found

    async def query(self, embedder: Embedder, text: str) -> np.ndarray:
        """`text`'s vector, embedded on the query thread unless kept or being embedded."""
        vector = self.get(text)
        if vector is not None:
            return vector
        key = normalize_text(text)
        running = self._running.get(key)
        if running is None:
            running = asyncio.get_running_loop().create_future()
            self._running[key] = running
            self._order.append((embedder, text))
            if self._worker is None or self._worker.done():
                self._worker = asyncio.create_task(self._embed_queued(), name="memory-query")
        return await asyncio.shield(running)

    async def _embed_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._order:
            embedder = self._order[0][0]
            batch = [t for e, t in self._order if e is embedder][:QUERY_BATCH]
            taken = set(batch)
            self._order = [(e, t) for e, t in self._order if not (e is embedder and t in taken)]
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="memory-query")
            keys = [normalize_text(t) for t in batch]
            futures = [self._running[k] for k in keys]
            try:
                vectors = await loop.run_in_executor(self._pool, embedder.embed, batch)
            except Exception as exc:  # each asker sees the failure
                for key, future in zip(keys, futures, strict=True):
                    self._running.pop(key, None)
                    if not future.done():
                        future.set_exception(exc)
                        future.exception()  # retrieved: an asker that left logs nothing
                continue
            for text, key, future, vector in zip(batch, keys, futures, vectors, strict=True):
                self.put(text, vector)
                self._running.pop(key, None)
                if not future.done():
                    future.set_result(vector)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        for future in self._running.values():
            future.cancel()
        self._running.clear()
        self._order.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
