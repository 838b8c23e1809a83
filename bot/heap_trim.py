"""Free memory handed back to the system now and then (issue 19: RSS that grows).

glibc keeps what Python, onnxruntime and Chroma free inside its heaps for reuse, and gives back
only a heap's free top: a buffer freed below a live one stays resident. Over a simulated week
(`make soak`) that held memory moved the growth beyond the vector index by tens of MiB from run
to run. Every TRIM_EVERY seconds, if any turn ran since the last trim and once none is in
flight, `malloc_trim(0)` runs in a worker thread (memory/allocator.py) and releases the free
pages of every arena. It walks every free chunk holding each arena's lock (30-110 ms on a
fragmented 300 MiB heap, measured): a turn that comes in meanwhile waits that long at most,
once a minute; idle, nothing is trimmed (nothing was freed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from memory.allocator import trim_free_memory

__all__ = ["TRIM_EVERY", "trim_periodically"]

log = logging.getLogger(__name__)

TRIM_EVERY = 60.0  # seconds


async def trim_periodically(
    quiet: Callable[[], Awaitable[object]],
    activity: Callable[[], int],
    every: float = TRIM_EVERY,
) -> None:
    """Until cancelled: every `every` seconds, when `activity()` (turns taken so far) moved
    since the last trim, wait for no turn in flight (another `every` at most) and trim.
    Returns where malloc is not glibc's."""
    trimmed_at = activity()
    while True:
        await asyncio.sleep(every)
        if activity() == trimmed_at:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(quiet(), every)
        trimmed_at = activity()
        if await asyncio.to_thread(trim_free_memory) is None:
            log.debug("not glibc: free memory is not trimmed")
            return
