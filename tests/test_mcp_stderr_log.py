"""A stdio MCP server's stderr is kept within a bound (R143: a server logging in a loop wrote
6 GB in five seconds beside the database, and every backup copied it): its newest lines are
kept, the server is never held up by the copy, and backups leave the log out."""

from __future__ import annotations

import tarfile
from pathlib import Path

from fakes.anthropic import Reply
from mcp_servers.support import PYTHON, mcp_world
from test_backup_edges import _data

from agent.mcp.stderr_log import CAP
from bot.backup import create_backup

SERVER = Path(__file__).parent / "mcp_servers" / "spew_server.py"
SPEW = {"spew": {"command": PYTHON, "args": [str(SERVER)]}}
READ = """
[[rules]]
tool = "mcp__spew__*"
risk = "read"
"""


async def test_a_server_logging_without_measure_keeps_its_log_within_twice_the_cap(
    tmp_path: Path,
) -> None:
    async with mcp_world(tmp_path, SPEW, rules=READ) as world:
        log = world.server_dir("spew") / "stderr.log"
        for _ in range(2):
            world.model.reply(Reply.tool_use("mcp__spew__spew", {"megabytes": 6}))
            world.model.reply(Reply.text("done"))
            await world.h.say("log away")
        await world.until(lambda: "END-MARK" in log.read_text(errors="replace")[-64:])
        sizes = (log.stat().st_size, log.with_name("stderr.log.1").stat().st_size)
        results = [str(r.tool_results[0]["content"]) for r in world.model.requests[1::2]]
    assert all("spewed" in r for r in results), results  # the server was never held up
    assert max(sizes) <= CAP, sizes  # 12 MiB written, 2 MiB kept at most


async def test_a_backup_leaves_a_servers_stderr_log_out(tmp_path: Path) -> None:
    settings = await _data(tmp_path)
    server = settings.data_dir / "mcp" / "notes"
    server.mkdir(parents=True)
    (server / "stderr.log").write_text("noise\n" * 1000)
    (server / "stderr.log.1").write_text("older noise\n")
    (server / "notes.txt").write_text("a file the server keeps\n")
    report = create_backup(settings, tmp_path / "b.tar.gz")
    with tarfile.open(report.path) as tar:
        names = tar.getnames()
    assert any(n.endswith("mcp/notes/notes.txt") for n in names), names
    assert not any("stderr.log" in n for n in names), names


NOTES = Path(__file__).parent / "mcp_servers" / "notes_server.py"
SAY_PIN = (
    "import os, sys, runpy; sys.stderr.write('modem: unlocking with PIN ' + os.environ['SIM_PIN']"
    " + '\\n'); sys.stderr.flush(); sys.argv = [sys.argv[1]]; runpy.run_path(sys.argv[0], "
    "run_name='__main__')"
)


async def test_a_short_pin_a_servers_env_names_is_kept_out_of_its_stderr_log(
    tmp_path: Path,
) -> None:
    """R251: a PIN in a server's env is a secret (it reached results and logs); results hid a
    4-digit one, but stderr.log kept it (the global scrubber takes 6 characters and more)."""
    server = {"command": PYTHON, "args": ["-c", SAY_PIN, str(NOTES)], "env": {"SIM_PIN": "4821"}}
    async with mcp_world(tmp_path, {"modem": server}) as w:
        log = w.server_dir("modem") / "stderr.log"
        await w.until(lambda: log.exists() and "unlocking" in log.read_text())
        kept = log.read_text()
    assert "modem: unlocking with PIN ***\n" in kept, kept
