"""Helpers for the MCP tests: config files, the notes server over stdio or HTTP, and a Steward
with its MCP servers started (the production composition root, the real SDK, real processes)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from fakes.anthropic import FakeAnthropic
from harness import Harness, running_steward

from agent.mcp import McpSupervisor
from agent.policy import DEFAULT_POLICY

__all__ = [
    "NOTES",
    "PYTHON",
    "McpWorld",
    "http_notes",
    "mcp_world",
    "notes_stdio",
    "write_config",
]

NOTES = Path(__file__).with_name("notes_server.py")
PYTHON = sys.executable


def notes_stdio(**env: str) -> dict[str, Any]:
    return {"command": PYTHON, "args": [str(NOTES)], "env": env}


def time_stdio() -> dict[str, Any]:
    return {"command": PYTHON, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}


def write_config(path: Path, servers: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_file(workdir: Path) -> IO[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return (workdir / "server.log").open("w")


@asynccontextmanager
async def http_server(
    workdir: Path, port: int, *argv: str, env: dict[str, str] | None = None
) -> AsyncIterator[str]:
    """A server process (`PYTHON *argv`) serving MCP over streamable HTTP on 127.0.0.1:`port`;
    yields its URL once the port takes connections, and stops it after."""
    log = _log_file(workdir)
    proc = await asyncio.create_subprocess_exec(
        PYTHON,
        *argv,
        cwd=workdir,
        env=None if env is None else {"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log,
    )
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        log.close()
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@asynccontextmanager
async def http_notes(workdir: Path, port: int | None = None, **env: str) -> AsyncIterator[str]:
    """The notes server over streamable HTTP on 127.0.0.1, as its own process."""
    port = port or free_port()
    async with http_server(workdir, port, str(NOTES), "--http", str(port), env=env) as url:
        yield url


@dataclass
class McpWorld:
    h: Harness
    model: FakeAnthropic
    data_dir: Path
    told: list[str] = field(default_factory=list)

    @property
    def mcp(self) -> McpSupervisor:
        assert self.h.steward.mcp is not None
        return self.h.steward.mcp

    def server_dir(self, name: str) -> Path:
        return self.data_dir / "mcp" / name

    async def audit(self, kind: str) -> list[Any]:
        return await self.h.steward.stores.audit.recent(1000, kind=kind)

    async def until(self, check: Any, seconds: float = 15.0) -> None:
        for _ in range(int(seconds / 0.05)):
            if check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"not within {seconds} s: {check}")


@asynccontextmanager
async def mcp_world(
    tmp_path: Path,
    servers: dict[str, Any],
    *,
    rules: str = "",
    model: FakeAnthropic | None = None,
    **overrides: Any,
) -> AsyncIterator[McpWorld]:
    """A Steward whose mcp.json holds `servers` (started and settled), with `rules` appended
    to the default policy file."""
    data_dir = tmp_path / "data"
    (data_dir / "workspace").mkdir(parents=True, exist_ok=True)
    (data_dir / "policy.toml").write_text(DEFAULT_POLICY + "\n" + rules)
    config = write_config(tmp_path / "mcp.json", servers)
    async with FakeAnthropic() if model is None else _same(model) as fake:
        settings = {"STEWARD_MCP_CONFIG": str(config), **overrides}
        async with running_steward(data_dir, fake.base_url, **settings) as h:
            world = McpWorld(h, fake, data_dir)

            async def tell(text: str) -> None:
                world.told.append(text)

            assert h.steward.mcp is not None
            await h.steward.mcp.start(notify=tell)
            assert await h.steward.mcp.settled(40)
            yield world


@asynccontextmanager
async def _same(model: FakeAnthropic) -> AsyncIterator[FakeAnthropic]:
    yield model
