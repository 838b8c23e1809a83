"""The event loop `steward run` turns on: uvloop (libuv's loop, in C) when it is installed,
asyncio's own otherwise or when STEWARD_EVENT_LOOP=asyncio.

Every turn wakes the loop some 60 times (SQLite's thread handing back results, the model's and
Telegram's sockets, timers); asyncio's selector loop spends its time in Python doing so. Measured
with `bench/turn_profile.py` (2 CPUs, 2026-12-04, three runs of 300 turns each, alternating):
the loop's thread took 13.5 ms of CPU a turn on asyncio's loop and 11.8 ms on uvloop, the
process 27.4 against 24.7 ms, turn overhead p95 37.4 against 31.8 ms. Nothing else changes:
aiohttp, httpx/anyio, aiosqlite, subprocesses and signals run on either.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from typing import Literal

__all__ = ["LoopChoice", "loop_factory", "loop_name"]

log = logging.getLogger(__name__)

LoopChoice = Literal["uvloop", "asyncio"]


def loop_factory(choice: LoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What `asyncio.Runner(loop_factory=...)` takes: uvloop's loop, or None (asyncio's own)
    when asked for or when uvloop is not installed (it has no Windows build)."""
    if choice == "asyncio":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        log.debug("uvloop is not installed: asyncio's own event loop")
        return None
    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop


def loop_name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """ "uvloop" or "asyncio": which loop runs (GET /metrics says it)."""
    loop = loop or asyncio.get_running_loop()
    return type(loop).__module__.split(".")[0]
