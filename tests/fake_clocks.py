"""Two fake clocks, as the kernel has them, for the real scheduler on a real event loop.

- the wall clock (CLOCK_REALTIME: `datetime.now`), which Steward's `Clock` and APScheduler read;
- the monotonic clock (CLOCK_MONOTONIC: `loop.time()`), on which asyncio's timers are measured
  (`call_later`, which APScheduler's `AsyncIOScheduler` arms for its one alarm, and
  `asyncio.sleep`, so the loops of `bot/lifecycle.py` too).

`suspend(d)`: the machine sleeps for d: the wall clock moves by d, the monotonic clock does not
(Linux's CLOCK_MONOTONIC does not count a suspend). `step(d)`: the wall clock is set (NTP, the
owner): the same for the timers. `awake(d)`: time passes as usual: both move by d, in small
steps, and what each step's timers start (a `run_due`) is finished before the next.

(Adapted from an outside review's probe.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import apscheduler.schedulers.base as aps_base
import pytest

__all__ = ["TwoClocks", "WallClock"]


class TwoClocks:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, start: datetime | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.wall = timedelta(0) if start is None else start - datetime.now(UTC)
        self.mono = 0.0
        real_time = loop.time
        monkeypatch.setattr(loop, "time", lambda: real_time() + self.mono)
        clocks = self

        class _Now:
            @staticmethod
            def now(tz: Any = None) -> datetime:
                return datetime.now(tz) + clocks.wall

        monkeypatch.setattr(aps_base, "datetime", _Now)  # what APScheduler reads
        self.clock = WallClock(self)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.wall

    def suspend(self, d: timedelta) -> None:
        self.wall += d

    step = suspend  # a wall clock set looks the same to a monotonic timer

    async def settle(self, idle: Callable[[], Awaitable[Any]] | None = None) -> None:
        for _ in range(4):
            await asyncio.sleep(0.01)
            if idle is not None:
                await idle()

    async def awake(
        self,
        d: timedelta,
        step: timedelta = timedelta(minutes=5),
        idle: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        left = d
        while left > timedelta(0):
            s = min(step, left)
            self.wall += s
            self.mono += s.total_seconds()
            left -= s
            await self.settle(idle)


class WallClock:
    """Steward's clock on the fake wall clock (the production `SystemClock`, shifted)."""

    def __init__(self, clocks: TwoClocks) -> None:
        self.clocks = clocks

    def now(self) -> datetime:
        return self.clocks.now()

    def system_time(self, moment: datetime) -> datetime:
        return moment  # the system clock is this clock, as for `SystemClock`
