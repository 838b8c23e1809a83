"""What `make soak` (bench/soak.py) reads of the Steward process it runs, one sample at a time:
RSS, open files by kind (TCP sockets named by state and port), threads by name, asyncio tasks
(`GET /healthz`), Chroma's SQLite pool and the HTTP clients' keep-alive pools, and from its
database (read-only) the runs done and the vectors indexed. A sample is taken at rest: once no
self-initiated run is in flight.

The pools are counted apart because they are bounded, not leaks: see bench/soak.py's docstring.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "CHROMA_POOL_MAX",
    "HTTP_POOL_MAX",
    "Days",
    "sample",
    "what_grew",
]


class Days(Protocol):
    """The soak's simulated clock, as a sample reads it."""

    def days(self) -> float: ...


def proc_rss_mib(pid: int) -> float:
    """VmRSS of pid and its descendants (bench/common.py's tree_rss_mib, re-read here so that
    one missing /proc file reads as 0 rather than stopping the soak)."""
    from common import tree_rss_mib

    return tree_rss_mib(pid)


def anon_mib(pid: int) -> float:
    """RssAnon of pid (the heap, glibc's arenas, Chroma's index; not the mapped libraries)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def count_dir(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return -1


async def asyncio_tasks(port: int) -> int:
    """The number of asyncio tasks in Steward, from its `GET /healthz`."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        # the Host a browser or curl sends (the console's perimeter guards /healthz too)
        writer.write(f"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        body = raw.split(b"\r\n\r\n", 1)[1]
        return int(json.loads(body).get("tasks", -1))
    except (OSError, TimeoutError, ValueError, IndexError):
        return -1


def db_counts(db: Path) -> dict[str, int]:
    """Runs done and vectors indexed, read-only (WAL: Steward keeps writing meanwhile)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        runs = c.execute("SELECT count(*) FROM schedule_runs WHERE status != 'firing'").fetchone()
        vectors = c.execute("SELECT count(*) FROM memories WHERE indexed = 1").fetchone()
        return {"runs": int(runs[0]), "vectors": int(vectors[0])}


def firing(db: Path) -> int:
    """Self-initiated runs in flight now (read-only)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        row = c.execute("SELECT count(*) FROM schedule_runs WHERE status = 'firing'").fetchone()
        return int(row[0])


async def at_rest(db: Path, limit: float = 30.0) -> bool:
    """Until no self-initiated run is in flight (`limit` real seconds at most): whether none is."""
    give_up = time.monotonic() + limit
    while time.monotonic() < give_up:  # runs in SQLite: no event to wait on
        if not await asyncio.to_thread(firing, db):
            return True
        await asyncio.sleep(0.05)
    return False


def in_flight(db: Path) -> list[str]:
    """The runs still firing: kind, due and start (simulated time), read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as c:
        rows = c.execute(
            "SELECT id, kind, due_at, started_at FROM schedule_runs WHERE status = 'firing'"
        ).fetchall()
    return [f"run {i} ({kind}, due {due}, started {started})" for i, kind, due, started in rows]


def open_files(pid: int) -> dict[str, int]:
    """What the process's descriptors are (sockets, pipes, files by path), counted; a TCP
    socket is named by its state and the port it is connected to or listens on (which fake, or
    Steward's own server), so that a pool keeping one more connection shows as such."""
    kinds: collections.Counter[str] = collections.Counter()
    tcp = tcp_sockets(pid)
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and (inode := target[8:-1]) in tcp:
            target = f"socket:[{tcp[inode]}]"
        kinds[target.split(":[", 1)[0] if ":[" in target and "tcp" not in target else target] += 1
    return dict(kinds)


_TCP_STATES = {"01": "connected to", "0A": "listening on", "06": "closing, to", "08": "closing, to"}


def tcp_sockets(pid: int) -> dict[str, str]:
    """inode -> "tcp <state> :<port>" for the process's TCP sockets (/proc/<pid>/net/tcp*): the
    remote port of a connection, the local one of a listener."""
    out: dict[str, str] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) < 10:
                continue
            local, remote, state, inode = f[1], f[2], f[3], f[9]
            listening = state == "0A"
            port = int((local if listening else remote).rsplit(":", 1)[1], 16)
            out[inode] = f"tcp {_TCP_STATES.get(state, 'state ' + state)} :{port}"
    return out


def thread_names(pid: int) -> dict[str, int]:
    names: collections.Counter[str] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names[(task / "comm").read_text().strip()] += 1
        except OSError:
            continue
    return dict(names)


# sqlx's default max_connections, which Chroma 1.5's SqliteDb pool keeps (not a setting).
CHROMA_POOL_MAX = 10
# Connections an HTTP client keeps to one server at most: aiohttp's TCPConnector limit, 100, in
# both the Telegram client (bot/channels/telegram_api.py) and the SDK's aiohttp transport.
HTTP_POOL_MAX = 100


def http_pools(files: dict[str, int], peers: dict[int, str]) -> dict[str, int]:
    """Connections to each fake (`peers`: port -> name), from `open_files`' named sockets."""
    return {
        name: files.get(f"socket:[tcp connected to :{port}]", 0) for port, name in peers.items()
    }


def chroma_pool(files: dict[str, int], threads: dict[str, int]) -> tuple[int, int]:
    """(descriptors on chroma.sqlite3, sqlx worker threads): Chroma's SQLite pool."""
    fds = sum(n for path, n in files.items() if path.endswith("/chroma.sqlite3"))
    return fds, sum(n for name, n in threads.items() if name.startswith("sqlx-sqlite"))


def what_grew(before: dict[str, int], after: dict[str, int]) -> str:
    grew = {k: after.get(k, 0) - before.get(k, 0) for k in before.keys() | after.keys()}
    return ", ".join(f"{k} {n:+d}" for k, n in sorted(grew.items()) if n) or "nothing"


async def sample(
    pid: int, port: int, db: Path, clock: Days, turns: int, peers: dict[int, str]
) -> dict[str, Any]:
    """The process at rest: a self-initiated run in flight (the daily ones go on past the week)
    holds its tasks for a moment, and caught in the last quarter only it would read as growth.
    A run that starts while the sample is read (one due just then) spoils it: read again."""
    for _ in range(5):
        if not await at_rest(db):
            os.kill(pid, signal.SIGUSR1)  # bench/soak_child.py: its threads' and tasks' stacks
            print(
                f"soak: still in flight after 30 s: {'; '.join(in_flight(db))}; "
                "Steward's stacks are in its log (steward.log; --keep DIR keeps it)",
                flush=True,
            )
            return await _read(pid, port, db, clock, turns, peers)
        before = await asyncio.to_thread(db_counts, db)
        read = await _read(pid, port, db, clock, turns, peers)
        if not await asyncio.to_thread(firing, db) and read["runs"] == before["runs"]:
            return read
    return read


async def _read(
    pid: int, port: int, db: Path, clock: Days, turns: int, peers: dict[int, str]
) -> dict[str, Any]:
    counts = await asyncio.to_thread(db_counts, db)
    files, threads = open_files(pid), thread_names(pid)
    fds, tasks = count_dir(f"/proc/{pid}/fd"), count_dir(f"/proc/{pid}/task")
    pool_fds, pool_threads = chroma_pool(files, threads)
    pools = http_pools(files, peers)
    return {
        "day": round(clock.days(), 2),
        "turns": turns,
        "runs": counts["runs"],
        "vectors": counts["vectors"],
        "rss_mib": round(proc_rss_mib(pid), 1),
        "anon_mib": round(anon_mib(pid), 1),
        "fds": fds,
        "threads": tasks,
        "fds_but_pools": fds - pool_fds - sum(pools.values()),
        "http_pools": pools,
        "threads_but_pool": tasks - pool_threads,
        "chroma_pool": max(pool_fds, pool_threads),
        "tasks": await asyncio_tasks(port),
        "open_files": files,
        "thread_names": threads,
    }
