"""CPython's garbage collector set up for a long-running process (issue 19): the start-up heap
frozen once it has settled, and every collection timed for `GET /metrics`.

A full (generation 2) collection walks every object the collector tracks. Once `steward run`
has started, that is ~250,000 objects (modules, classes, the SDK's and pydantic's models) that
will never be garbage, and a full collection took 100-170 ms holding the GIL: every turn in
flight stood still meanwhile. Measured with a collection callback over 300 turns and a 200-chat
burst (`bench/turn_profile.py`, 2026-12-05): 2 full collections of 306 ms together (the longest
166 ms) without freezing, 2 of 32 ms (the longest 20 ms) with the start-up heap frozen.

`freeze_settled_heap()` collects once (what start-up left as cyclic garbage is freed, not kept)
and then moves every surviving object to the permanent generation (`gc.freeze()`), which later
collections do not walk. Frozen objects are still freed by reference counting when let go; only
a reference cycle among them would now be kept, and start-up builds those once, not per turn.
What turns create later is collected as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["GC_PAUSES", "GcPauses", "freeze_settled_heap", "freeze_when_settled"]

log = logging.getLogger(__name__)


class GcPauses:
    """Collections per generation, their summed and longest pause (ms), the frozen count.

    The callback runs in whichever thread triggered the collection, holding the GIL; one
    collection runs at a time, so a start time kept on the instance is enough."""

    def __init__(self) -> None:
        self._began = 0.0
        self.collections = [0, 0, 0]
        self.pause_s = [0.0, 0.0, 0.0]
        self.longest_s = [0.0, 0.0, 0.0]
        self.installed = False

    def install(self) -> None:
        """Time every collection from now on, and let `freeze_when_settled` freeze: `steward
        run` owns its process. Not installed (Steward run in-process: tests, a library user),
        the collector is left as it is."""
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)
        self.installed = True

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._began = now
            return
        generation = int(info.get("generation", 2))
        pause = now - self._began
        self.collections[generation] += 1
        self.pause_s[generation] += pause
        if pause > self.longest_s[generation]:
            self.longest_s[generation] = pause

    def snapshot(self) -> dict[str, Any]:
        return {
            "collections": list(self.collections),
            "pause_ms": [round(s * 1000, 1) for s in self.pause_s],
            "longest_ms": [round(s * 1000, 1) for s in self.longest_s],
            "frozen": gc.get_freeze_count(),
        }


GC_PAUSES = GcPauses()


def freeze_settled_heap() -> int:
    """Collect once, then freeze every object still alive (see the module's docstring); the
    number frozen. Call when start-up has settled: the channels, the SDK, the embedder and
    Chroma are in."""
    began = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "start-up heap frozen: %d objects out of the collector's walks (%.0f ms)",
        frozen,
        (time.perf_counter() - began) * 1000,
    )
    return frozen


async def freeze_when_settled(
    *waits: Callable[[], Awaitable[object]], limit: float = 60.0, pauses: GcPauses | None = None
) -> int:
    """Wait for each of `waits` in turn (`limit` seconds at most each: the memory up, then no
    turn in flight, since the collection before freezing holds the GIL), then freeze; the
    number frozen, 0 when the process is not `steward run`'s (`pauses`, by default the
    process's `GC_PAUSES`, was not installed)."""
    if not (pauses or GC_PAUSES).installed:
        return 0
    for wait in waits:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wait(), limit)
    return freeze_settled_heap()
