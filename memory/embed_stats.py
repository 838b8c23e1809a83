"""What the embedder has cost since the process started: calls, texts and CPU seconds.

The onnxruntime embedder (`memory.onnx_minilm`) adds to `EMBED_STATS` after every `embed()`:
the CPU time of the calling (worker) thread, `time.thread_time()`, around tokenizing and the
session run, so that other threads' work is not counted. Standard library only: the HTTP
server's `/metrics` (bot/http.py) reads it without importing numpy or onnxruntime, and `make
bench` reads that between phases to report the embedder's CPU per turn in its own column.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["EMBED_STATS", "EmbedStats"]


class EmbedStats:
    """Cumulative counters; thread-safe (worker threads embed concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.texts = 0
        self.cpu_s = 0.0
        self.loads = 0  # sessions created (the first load, then one per reload after release)
        self.releases = 0  # sessions let go after a long idle
        self.variant = ""  # the graph in use: "int8" or "fp32"

    def record(self, cpu_s: float, texts: int) -> None:
        with self._lock:
            self.calls += 1
            self.texts += texts
            self.cpu_s += cpu_s

    def loaded(self, variant: str) -> None:
        with self._lock:
            self.loads += 1
            self.variant = variant

    def released(self) -> None:
        with self._lock:
            self.releases += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "texts": self.texts,
                "cpu_s": round(self.cpu_s, 6),
                "loads": self.loads,
                "releases": self.releases,
                "variant": self.variant,
            }


EMBED_STATS = EmbedStats()
