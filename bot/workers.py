"""The event loop's default executor (`asyncio.to_thread`), its threads started up front.

asyncio makes its default ThreadPoolExecutor on first use, and the pool adds a thread only when
a call finds none idle, up to min(32, CPUs + 4). So a long-running Steward gained a thread hours
into a run, the first time enough blocking calls overlapped (a batch of vectors written behind a
busy chat): bounded, but from outside indistinguishable from a thread leak (`make soak`). The
same pool with all its threads started at once stays one size from start to end.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["WORKERS", "started_executor"]

log = logging.getLogger(__name__)

WORKERS = min(32, (os.cpu_count() or 1) + 4)  # asyncio's own default size


def started_executor(workers: int = WORKERS) -> ThreadPoolExecutor:
    """A ThreadPoolExecutor of `workers` threads, every one of them already running: each of
    `workers` first tasks waits at a barrier until all are running, so none is idle when the
    next is submitted and the pool starts a thread for each."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asyncio")
    gate = threading.Barrier(workers)
    waits = [pool.submit(gate.wait, 10.0) for _ in range(workers)]
    for wait in waits:
        try:
            wait.result()
        except threading.BrokenBarrierError:  # a slow machine: the pool works, grown lazily
            log.debug("not every worker thread started at once")
    return pool
