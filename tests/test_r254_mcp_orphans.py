"""R254, R263: a stdio MCP server dies with Steward. Started in a session of its own and tied to
nothing, a server outlived a SIGKILLed Steward; one that keeps running after its stdin closes
(a Node server with a timer) ran on, one more at every crash and restart. Tied to Steward by
the kernel, a server behind a launcher (`npx`, `uvx`, `sh -c`: the tie is not inherited) still
ran on (R263). A real `steward run` starts such a server behind `sh -c` (the SDK's, which
sleeps on after its stdin's end) on either event loop, is killed, and the server must be gone
soon after."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import run_env, steward_process
from mcp_servers.support import write_config

OWNER_TG = 1001

STUBBORN = """\
import os, sys, time
from pathlib import Path
from mcp.server import MCPServer

server = MCPServer("stubborn", version="1.0")


@server.tool()
def ping() -> str:
    \"\"\"Answers pong.\"\"\"
    return "pong"


Path(sys.argv[1]).write_text(os.readlink("/proc/self"))  # its PID as the test sees it
try:
    server.run()
except BaseException:
    pass
time.sleep(600)  # its stdin closed: it runs on, as a Node server with a timer does
"""


def _running(pid: int) -> bool:
    """Whether `pid` runs: a zombie (dead, not yet reaped by whoever adopted it) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_a_stdio_server_behind_a_launcher_is_gone_soon_after_steward_is_killed(
    loop: str, tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    pid_file = tmp_path / "server.pid"
    launched = shlex.join([sys.executable, str(script), str(pid_file)])  # a child of the shell
    write_config(
        tmp_path / "data" / "mcp.json",
        {"stubborn": {"command": "/bin/sh", "args": ["-c", f"{launched}; exit $?"]}},
    )
    server = 0
    async with FakeTelegram() as tg:
        env = run_env(
            tmp_path, fake_model, tg, OWNER_TG, STEWARD_EMBEDDER="none", STEWARD_EVENT_LOOP=loop
        )
        try:
            async with steward_process(env, tmp_path / "steward.log") as steward:
                async with asyncio.timeout(90):  # start-up imports on a busy machine
                    while not pid_file.exists() or not pid_file.read_text():
                        assert steward.returncode is None, "steward exited"
                        await asyncio.sleep(0.1)
                server = int(pid_file.read_text())
                assert _running(server)
                steward.send_signal(signal.SIGKILL)
                await steward.wait()
            for _ in range(100):  # 10 s
                if not _running(server):
                    break
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the MCP server outlived the Steward that started it")
        finally:
            if server and _running(server):
                os.kill(server, signal.SIGKILL)
