"""Memory vectors in Chroma: one collection per user, ids are memory ids, nothing else stored.

Scoping by collection rather than by a `where` filter keeps a query's cost that of the user's
own memories: a filtered query over a shared 100k collection measured 54-91 ms, a query over one
user's collection stays at a few ms. Embeddings are always passed in (`embeddings=`,
`query_embeddings=`): Chroma's default embedding function would download a model.

Everything here is synchronous and blocking; the async store calls it from a worker thread.
`chromadb` is imported only when an index is opened (it takes most of a second).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from memory.errors import VectorIndexError

__all__ = ["ChromaEndpoint", "VectorIndex", "VectorIndexError", "parse_chroma_url"]

log = logging.getLogger(__name__)

PAGE = 5000
# A query among this many ids or fewer compares the query with each of their vectors (read with
# `get`) instead of asking the HNSW graph: hnswlib's filtered search walks much of the graph to
# find a few allowed ids (a kind, a time range). Embedded, 50,000 vectors, 2 CPUs: 100 ids
# 41 -> 5 ms, 300 ids 24 -> 8 ms, 1,000 ids 19 against 29 ms. `chroma run`, 20,000 vectors (the
# vectors travel as JSON): 100 ids 15 -> 7 ms, 300 ids 12 against 16 ms; the graph's cost grows
# with the collection, the read's with the ids. `bench/turn_profile.py --memories 100000`: CPU
# per turn 84 -> 27 ms, overhead p95 110 -> 35 ms. The answer is exact, too.
EXACT_IDS = 300


@dataclass(frozen=True)
class ChromaEndpoint:
    host: str
    port: int
    ssl: bool


def parse_chroma_url(url: str) -> ChromaEndpoint:
    """`http://host:port` (or https) → where the Chroma server is."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not a Chroma server URL such as http://127.0.0.1:8000")
    ssl = parts.scheme == "https"
    return ChromaEndpoint(parts.hostname, parts.port or (443 if ssl else 8000), ssl)


class VectorIndex:
    """Per-user Chroma collections named `<prefix>_user_<id>`, cosine space. Each collection's
    metadata names the embedder; a collection made by another embedder is dropped and rebuilt
    (the store re-embeds what it misses), so switching STEWARD_EMBEDDER never mixes vectors."""

    def __init__(self, client: Any, *, where: str, prefix: str, embedder: str, dim: int) -> None:
        if len(prefix) < 1 or not prefix.replace("_", "").isalnum():
            raise ValueError("the collection prefix is letters, digits and underscores")
        self.where = where
        self._client = client
        self._prefix = prefix
        self._embedder = embedder
        self._dim = dim
        self._collections: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._batch = max(1, min(PAGE, int(client.get_max_batch_size())))

    @classmethod
    def open(
        cls,
        *,
        path: Path | None = None,
        url: str | None = None,
        prefix: str = "steward",
        embedder: str,
        dim: int,
    ) -> VectorIndex:
        """An embedded index under `path`, or a client of the Chroma server at `url`."""
        try:
            import chromadb
            from chromadb.config import Settings
        except ImportError as exc:  # pragma: no cover - chromadb is a dependency
            raise VectorIndexError(f"chromadb is not installed: {exc}") from exc
        settings = Settings(anonymized_telemetry=False)
        try:
            if url:
                endpoint = parse_chroma_url(url)
                client = chromadb.HttpClient(
                    host=endpoint.host, port=endpoint.port, ssl=endpoint.ssl, settings=settings
                )
                client.heartbeat()
                where = f"Chroma server at {url}"
            else:
                if path is None:
                    raise ValueError("an embedded index needs a path")
                path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(path), settings=settings)
                where = f"embedded Chroma in {path}"
        except ValueError:
            raise
        except Exception as exc:
            raise VectorIndexError(f"cannot open Chroma ({url or path}): {exc}") from exc
        return cls(client, where=where, prefix=prefix, embedder=embedder, dim=dim)

    # -- collections --------------------------------------------------------------------------

    def name(self, user_id: int) -> str:
        return f"{self._prefix}_user_{user_id}"

    def _get(self, user_id: int, *, create: bool) -> Any | None:
        collection = self._collections.get(user_id)
        if collection is not None:
            return collection
        from chromadb.errors import NotFoundError

        with self._lock:
            collection = self._collections.get(user_id)
            if collection is not None:
                return collection
            name = self.name(user_id)
            try:
                collection = self._client.get_collection(name, embedding_function=None)
            except (NotFoundError, ValueError):
                collection = None
            if collection is not None and not self._matches(collection):
                log.warning(
                    "memory vectors in %s were made by another embedder (%s); rebuilding",
                    name,
                    (collection.metadata or {}).get("embedder"),
                )
                self._client.delete_collection(name)
                collection = None
            if collection is None:
                if not create:
                    return None
                collection = self._client.get_or_create_collection(
                    name,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"embedder": self._embedder, "dim": self._dim},
                    embedding_function=None,
                )
            self._collections[user_id] = collection
            return collection

    def _matches(self, collection: Any) -> bool:
        meta = collection.metadata or {}
        return meta.get("embedder") == self._embedder and int(meta.get("dim", 0)) == self._dim

    def users(self) -> list[int]:
        """Users that have a collection here."""
        head = f"{self._prefix}_user_"
        found: list[int] = []
        for collection in self._client.list_collections():
            name = collection if isinstance(collection, str) else collection.name
            if name.startswith(head) and name[len(head) :].isdigit():
                found.append(int(name[len(head) :]))
        return sorted(found)

    def drop(self, user_id: int) -> None:
        from chromadb.errors import NotFoundError

        with self._lock:
            self._collections.pop(user_id, None)
            with contextlib.suppress(NotFoundError, ValueError):
                self._client.delete_collection(self.name(user_id))

    # -- vectors ------------------------------------------------------------------------------

    def upsert(self, user_id: int, ids: Sequence[int], vectors: np.ndarray) -> None:
        if not ids:
            return
        if vectors.shape != (len(ids), self._dim):
            raise ValueError(f"expected {len(ids)} vectors of {self._dim}, got {vectors.shape}")
        collection = self._get(user_id, create=True)
        for start in range(0, len(ids), self._batch):
            chunk = ids[start : start + self._batch]
            collection.upsert(
                ids=[str(i) for i in chunk],
                embeddings=vectors[start : start + self._batch],
            )

    def delete(self, user_id: int, ids: Sequence[int]) -> None:
        if not ids:
            return
        collection = self._get(user_id, create=False)
        if collection is None:
            return
        for start in range(0, len(ids), self._batch):
            collection.delete(ids=[str(i) for i in ids[start : start + self._batch]])

    def query(
        self, user_id: int, vector: np.ndarray, n: int, ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """(memory id, cosine similarity) of the user's nearest memories, nearest first;
        among `ids` only, when given (a search filtered by time, kind or chat)."""
        collection = self._get(user_id, create=False)
        if collection is None or n <= 0:
            return []
        if ids is not None and len(ids) <= EXACT_IDS:
            return self._nearest_among(collection, vector, n, ids)
        result = collection.query(
            query_embeddings=vector.reshape(1, -1),
            n_results=n,
            include=["distances"],
            **({"ids": [str(i) for i in ids]} if ids is not None else {}),
        )
        ids = result["ids"][0] if result["ids"] else []
        distances = (result.get("distances") or [[]])[0]
        return [(int(i), 1.0 - float(d)) for i, d in zip(ids, distances, strict=False)]

    @staticmethod
    def _nearest_among(
        collection: Any, vector: np.ndarray, n: int, ids: Sequence[int]
    ) -> list[tuple[int, float]]:
        """`query` among a few ids, exactly: their vectors read back and compared with the
        query (cosine similarity, as the collection's space measures it); ids without a vector
        are left out, as the graph leaves them out."""
        if not ids:
            return []
        found = collection.get(ids=[str(i) for i in ids], include=["embeddings"])
        names = found["ids"]
        if not names:
            return []
        stored = np.asarray(found["embeddings"], dtype=np.float32)
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        norms = np.linalg.norm(stored, axis=1) * float(np.linalg.norm(query))
        similarity = (stored @ query) / np.where(norms > 0, norms, 1.0)
        best = np.argsort(-similarity, kind="stable")[:n]
        return [(int(names[i]), float(similarity[i])) for i in best]

    def ids(self, user_id: int) -> set[int]:
        collection = self._get(user_id, create=False)
        if collection is None:
            return set()
        found: set[int] = set()
        offset = 0
        while True:
            page = collection.get(include=[], limit=PAGE, offset=offset)["ids"]
            found.update(int(i) for i in page)
            if len(page) < PAGE:
                return found
            offset += PAGE

    def count(self, user_id: int) -> int:
        collection = self._get(user_id, create=False)
        return 0 if collection is None else int(collection.count())

    def close(self) -> None:
        self._collections.clear()
        close = getattr(self._client, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing is best effort; the process may be ending
                log.debug("closing the Chroma client failed", exc_info=True)
