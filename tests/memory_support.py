"""Helpers for the long-term memory tests: a real `chroma run` server on 127.0.0.1, the two
ways of opening Chroma (embedded or server) the store tests run against, and a store whose SQL
statements are traced (SQLite's own trace callback: what reached the database)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from memory.clock import FrozenClock
from memory.embedder import Embedder
from memory.longterm import LongTermMemory, VectorIndex
from memory.people import Identity
from memory.stores import Stores

BACKENDS = ["embedded", "server"]
CHROMA = Path(sys.executable).parent / "chroma"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chroma_server(data: Path, port: int | None = None) -> Iterator[str]:
    """`chroma run` on a free port of 127.0.0.1, until its heartbeat answers; stopped after."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    log = (data.parent / f"chroma-{port}.log").open("wb")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "CHROMA_TELEMETRY": "False"}
    process = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"chroma run exited with {process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma run never answered its heartbeat; see {log.name}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def open_index(
    backend: str, embedder: Embedder, *, path: Path, url: str | None, prefix: str | None = None
) -> VectorIndex:
    """Chroma for one test: embedded under `path`, or on the server with a prefix of its own
    (tests share the server, so each keeps to its own collections)."""
    if backend == "server":
        assert url is not None
        return VectorIndex.open(
            url=url,
            prefix=prefix or f"t{uuid.uuid4().hex[:12]}",
            embedder=embedder.name,
            dim=embedder.dim,
        )
    return VectorIndex.open(path=path, embedder=embedder.name, dim=embedder.dim)


@dataclass
class Traced:
    """An owner's long-term memory on a fresh database, and every statement SQLite ran since
    `trace()` (with its values filled in)."""

    stores: Stores
    memory: LongTermMemory
    owner: int
    statements: list[str] = field(default_factory=list)

    async def trace(self) -> None:
        await self.stores.db._conn.set_trace_callback(self.statements.append)

    def count(self, prefix: str) -> int:
        return sum(s.startswith(prefix) for s in self.statements)


@asynccontextmanager
async def traced_memory(path: Path, embedder: Embedder | None = None) -> AsyncIterator[Traced]:
    """The store under `path`; with `embedder`, vectors in embedded Chroma there too (without:
    keyword search only). Call `trace()` once it holds what the test needs."""
    clock = FrozenClock(datetime(2026, 3, 1, 9, tzinfo=UTC))
    stores = await Stores.open(path / "steward.db", clock)
    owner = await stores.people.admit(Identity("test", "owner"), "Owner")
    memory = LongTermMemory.from_stores(stores, clock)
    if embedder is not None:
        await memory.attach(
            embedder, open_index("embedded", embedder, path=path / "chroma", url=None)
        )
    try:
        yield Traced(stores, memory, owner.id)
    finally:
        await memory.close()
        await stores.close()
