"""to_thread's pool starts at its full size and keeps it (bot/workers.py, issue 19: a thread
added hours into a run looked like a leak in `make soak`)."""

from __future__ import annotations

import asyncio
import threading
import time

from bot.workers import WORKERS, started_executor


def test_every_worker_thread_runs_before_anything_is_submitted() -> None:
    pool = started_executor(4)
    try:
        assert len(pool._threads) == 4  # a lazily grown pool would hold 1 here
        assert all(thread.is_alive() for thread in pool._threads)
    finally:
        pool.shutdown(wait=True)


async def test_overlapping_blocking_calls_add_no_thread() -> None:
    loop = asyncio.get_running_loop()
    pool = started_executor()
    loop.set_default_executor(pool)
    before = threading.active_count()
    await asyncio.gather(*(asyncio.to_thread(time.sleep, 0.05) for _ in range(3 * WORKERS)))
    assert threading.active_count() == before
    assert len(pool._threads) == WORKERS
