"""glibc's malloc set up for a long-running process with many threads (issue 19: RSS that grows).

glibc gives a thread that allocates while the other arenas are busy an arena of its own, up to 8
per core, and never gives one back. Steward has many threads: the event loop, aiosqlite's, the
embedder's query thread, to_thread workers, and Chroma's Rust runtime (tokio and sqlx-sqlite
workers, which use the system malloc). Each arena keeps its freed chunks for its own reuse, so
the same transient buffers (onnxruntime's activations, Chroma's results) are held once per
arena and fragment it. Measured on 2 CPUs (2026-12-04), without the cap and with it:
`bench/turn_profile.py --memories 10000 --turns 500`: 16 arenas holding 129 MiB, RSS 380-389
MiB; capped: 359-361 MiB. `bench/soak.py --turns 3000 --runs 300 --week-seconds 300`: RSS growth
beyond the vector index after warm-up 30.5 -> 12.5 MiB (12.2 -> 5.0 KiB a turn), RSS at the end
404 -> 357 MiB, the same CPU.

`tune_malloc()` caps the arenas at ARENA_MAX with mallopt(M_ARENA_MAX); `steward run` calls it
first thing (bot/cli.py). Threads beyond the cap share the existing arenas. glibc fixes its limit
once, when M_ARENA_MAX is set or when a ninth arena is wanted: called before threads start, the
cap holds. An explicit MALLOC_ARENA_MAX (or GLIBC_TUNABLES glibc.malloc.arena_max) is the user's
choice and is left alone. On another C library (musl, macOS) nothing is done.

Not done, measured: a fixed M_MMAP_THRESHOLD of 128 KiB (large buffers always mmap'd and given
back) cut the soak's growth to 2.7 KiB a turn but nearly doubled the embedder's CPU on batches
(a fresh mapping faulted in for every activation); onnxruntime's own arena on did not change the
soak's growth (5.7 KiB a turn).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ARENA_MAX", "MallocTuning", "arena_count", "trim_free_memory", "tune_malloc"]

ARENA_MAX = 2  # the main heap and one arena that every other thread shares
_M_ARENA_MAX = -8  # <malloc.h>


@dataclass(frozen=True, slots=True)
class MallocTuning:
    """What `tune_malloc` did: `arena_max` set (None: left as it was) and why."""

    arena_max: int | None
    reason: str


def _glibc() -> ctypes.CDLL | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # "glibc 2.36"; unset on musl
            return None
    except (ValueError, OSError):  # no such name: not glibc (macOS, Windows)
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - present on glibc only
        libc.malloc_info  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc(
    arena_max: int = ARENA_MAX, environ: Mapping[str, str] | None = None
) -> MallocTuning:
    """Cap glibc's malloc arenas at `arena_max`; call it before threads start."""
    env = os.environ if environ is None else environ
    if "MALLOC_ARENA_MAX" in env or "glibc.malloc.arena_max" in env.get("GLIBC_TUNABLES", ""):
        return MallocTuning(None, "arena_max set in the environment")
    libc = _glibc()
    if libc is None:
        return MallocTuning(None, "not glibc")
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if libc.mallopt(_M_ARENA_MAX, arena_max) != 1:
        return MallocTuning(None, "mallopt(M_ARENA_MAX) refused")
    return MallocTuning(arena_max, "mallopt")


def trim_free_memory() -> bool | None:
    """glibc's malloc_trim(0): the free pages every arena holds go back to the system (freed
    chunks inside a heap are released with MADV_DONTNEED, not only its top). Whether any was
    released; None when not on glibc. Blocking (it takes each arena's lock in turn; ctypes lets
    go of the GIL meanwhile): call it from a worker thread."""
    libc = _glibc()
    if libc is None:
        return None
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return bool(libc.malloc_trim(0))


def arena_count() -> int | None:
    """How many malloc arenas glibc holds now (the main one included), from malloc_info(); None
    when not on glibc."""
    import tempfile

    libc = _glibc()
    if libc is None:
        return None
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with tempfile.TemporaryDirectory(prefix="steward-malloc-") as folder:
        path = Path(folder) / "info.xml"
        stream = libc.fopen(str(path).encode(), b"w")
        if not stream:
            return None
        try:
            libc.malloc_info(0, stream)
        finally:
            libc.fclose(stream)
        return path.read_text().count("<heap nr=")
