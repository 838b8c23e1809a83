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
