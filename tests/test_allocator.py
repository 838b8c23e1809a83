"""memory.allocator: glibc's malloc arenas capped before threads start (issue 19: RSS growth).

Each case runs in a fresh interpreter: the cap only holds when set before threads allocate, and
glibc fixes it once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory.allocator import _glibc, tune_malloc

ROOT = Path(__file__).resolve().parent.parent

glibc_only = pytest.mark.skipif(_glibc() is None, reason="glibc's malloc only")

# Eight threads allocate at once (ctypes malloc, held until all have), then the arenas are counted.
_CHILD = """
import ctypes, json, sys, threading
from memory.allocator import arena_count, tune_malloc
tuning = tune_malloc() if sys.argv[1] == "tune" else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
barrier = threading.Barrier(9)
def work():
    held = libc.malloc(4096)
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
barrier.wait()
count = arena_count()
barrier.wait()
for t in threads:
    t.join()
print(json.dumps({"arenas": count, "set": tuning and tuning.arena_max}))
"""


def _arenas(mode: str, **env: str) -> dict[str, int | None]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_"))}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode],
        cwd=ROOT,
        env=environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


@glibc_only
def test_threads_share_two_arenas_once_tuned() -> None:
    untuned = _arenas("plain")
    tuned = _arenas("tune")
    assert untuned["arenas"] is not None and untuned["arenas"] > 2  # the case it guards against
    assert tuned == {"arenas": 2, "set": 2}


@glibc_only
def test_an_arena_max_in_the_environment_is_left_alone() -> None:
    assert tune_malloc(environ={"MALLOC_ARENA_MAX": "4"}).arena_max is None
    assert tune_malloc(environ={"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}).arena_max is None
    assert _arenas("tune", MALLOC_ARENA_MAX="4") == {"arenas": 4, "set": None}


# 60 MiB in 1 KiB buffers (malloc's, not pymalloc's), every 16th kept: the free ones sit below
# live ones, where glibc does not give memory back by itself. RSS (KiB) after freeing, after
# waiting as `bot/heap_trim.py` does (every 0.05 s), and the trim's own verdict.
_FRAGMENTED = """
import asyncio, json
from bot.heap_trim import trim_periodically
from memory.allocator import trim_free_memory
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
held = [bytearray(1024) for _ in range(60 * 1024)]
kept = held[::16]
del held
freed = rss()
async def quiet():  # no turn in flight
    return None
turns = [0]
async def trim_for(seconds):
    task = asyncio.create_task(trim_periodically(quiet, lambda: turns[0], every=0.05))
    await asyncio.sleep(seconds)
    idle = rss()  # no turn ran: nothing trimmed
    turns[0] += 1
    await asyncio.sleep(seconds)
    task.cancel()
    return idle
idle = asyncio.run(trim_for(0.3))
print(json.dumps({"freed": freed, "idle": idle, "trimmed": rss(), "again": trim_free_memory()}))
"""


@glibc_only
def test_free_memory_below_live_buffers_is_handed_back() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FRAGMENTED],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sizes = json.loads(done.stdout)
    assert sizes["freed"] - sizes["idle"] < 4 * 1024, sizes  # idle: not trimmed
    assert sizes["freed"] - sizes["trimmed"] > 30 * 1024, sizes  # most of the 56 MiB freed
