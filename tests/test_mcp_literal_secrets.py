"""R183: a key written as it is in a stdio server's `args` (`--token ghp_…`, `--api-key=sk-…`)
was shown wherever the server is named (`steward mcp check`, the approval card and the
approvals table, `/status`) and left in tool results, where the same key given as `${VAR}`
was `***`; and a server's stderr was kept on disk in the clear, whichever way it got the key.
Real servers built with the SDK, run as processes; ordinary args still show as written."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.anthropic import Reply
from mcp_servers.support import NOTES, PYTHON, mcp_world, write_config

from agent.mcp import load_mcp_config

STEWARD = str(Path(sys.executable).with_name("steward"))
TOKEN = "ghp_CNRYliteralArgTok0123456789abcd"
API_KEY = "sk-CNRYliteralApiKey42q"
PASSWORD = "CNRY-hunter2-pw"
ENV_TOKEN = "CNRYenvTok-77a1b2c3"
ARGS = [
    str(NOTES),
    "--token",
    TOKEN,
    f"--api-key={API_KEY}",
    "--password",
    PASSWORD,
    "--port",
    "8080",
    "--verbose",
    "--model",
    "claude-3-5-sonnet-20241022",
]
ORDINARY = "--port 8080 --verbose --model claude-3-5-sonnet-20241022"
LITERAL = (TOKEN, API_KEY, PASSWORD)
RULES = '[[rules]]\ntool = "mcp__notes__read_note"\nrisk = "read"\n'


async def test_a_key_written_in_args_is_hidden_wherever_the_server_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    servers = {"notes": {"command": PYTHON, "args": ARGS}}
    async with mcp_world(tmp_path, servers, rules=RULES) as world:
        [state] = world.mcp.states()
        world.model.reply(Reply.tool_use("mcp__notes__write_note", {"name": "p", "text": "hi"}))
        await world.h.say("save my plan")  # asks, and waits for the owner
        _, card = world.h.channel.approvals[-1]
        stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("steward.db*"))
        # the server quotes what it is asked for: the key, given back, is *** to the model
        world.model.reply(Reply.tool_use("mcp__notes__read_note", {"name": TOKEN}))
        world.model.reply(Reply.text("read"))
        await world.h.say("read it")
        result = str(world.model.requests[-1].tool_results[0]["content"])
    assert state.status == "up", state
    assert state.target == f"{PYTHON} {NOTES} --token *** --api-key=*** --password *** {ORDINARY}"
    assert f"MCP server: notes ({state.target})" in card.preview
    assert not [k for k in LITERAL if k in card.preview or k.encode() in stored]
    assert "no note named ***" in result and TOKEN not in result, result
    assert not [k for k in LITERAL if k in caplog.text]


def test_mcp_check_shows_the_servers_ordinary_args_and_not_its_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"notes": {"command": PYTHON, "args": ARGS}})
    data = tmp_path / "data"
    data.mkdir()
    env = dict(os.environ) | {"STEWARD_DATA_DIR": str(data), "STEWARD_MCP_CONFIG": str(config)}
    done = subprocess.run(
        [STEWARD, "mcp", "check"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert f"notes (stdio: {PYTHON} {NOTES} --token *** --api-key=*** --password ***" in out
    assert f"{ORDINARY}): up" in out
    assert not [k for k in LITERAL if k in out], out


def test_ordinary_args_and_variables_show_as_written(tmp_path: Path) -> None:
    """Paths, packages, model names, ports and `${VAR}`s are no keys: blanking them would make
    the card and `steward mcp check` unreadable, and "***" of ordinary words in results."""
    args = [
        "-y",
        "@modelcontextprotocol/server-filesystem",
        "/home/alexandra/projects/steward-work",
        "mistralai/Mistral-7B-Instruct-v0.2",
        "--max-tokens",
        "4096",
        "--key-file",
        "/etc/steward/server.pem",
        "--token",
        "${SERVICE_LOGIN}",
        "--local-timezone=${TZ:-UTC}",
    ]
    path = write_config(tmp_path / "mcp.json", {"fs": {"command": "npx", "args": args}})
    [spec] = load_mcp_config(path, {"SERVICE_LOGIN": "Login-Value-5521"}).servers
    assert spec.shown == " ".join(["npx", *args])
    assert spec.secrets == ("Login-Value-5521",)  # named a token by its flag, not its variable


STDERR_SERVER = '''
"""Says at start what it was started with, on stderr, each value in two writes."""
import os
import sys
import time

from mcp.server import MCPServer

server = MCPServer("talker", version="1.0")


@server.tool()
def ping() -> str:
    """Answers pong."""
    return "pong"


if __name__ == "__main__":
    for word in [*sys.argv[1:], os.environ["TALKER_TOKEN"]]:
        sys.stderr.write(word[: len(word) // 2])
        sys.stderr.flush()
        time.sleep(0.1)  # its other half comes in another read
        sys.stderr.write(word[len(word) // 2 :] + " ")
    sys.stderr.write("\\nready\\n")
    sys.stderr.flush()
    server.run()
'''


async def test_a_servers_stderr_log_keeps_no_secret_even_split_between_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_TALKER_TOKEN", ENV_TOKEN)
    script = tmp_path / "talker.py"
    script.write_text(STDERR_SERVER)
    server = {
        "command": PYTHON,
        "args": [str(script), "--token", TOKEN, f"--api-key={API_KEY}", "--port", "8080"],
        "env": {"TALKER_TOKEN": "${PROBE_TALKER_TOKEN}"},
    }
    async with mcp_world(tmp_path, {"talker": server}) as world:
        log = world.server_dir("talker") / "stderr.log"
        await world.until(lambda: log.exists() and "ready" in log.read_text())
        kept = log.read_text()
    assert kept.startswith("--token *** --api-key=*** --port 8080 *** \nready"), kept
    assert not [k for k in (*LITERAL, ENV_TOKEN) if k in kept], kept


def test_the_server_is_still_given_the_key_it_was_written_with(tmp_path: Path) -> None:
    """Only what Steward shows of the command line hides the key, not what it runs."""
    path = write_config(tmp_path / "mcp.json", {"notes": {"command": PYTHON, "args": ARGS}})
    [spec] = load_mcp_config(path, {}).servers
    assert spec.args == tuple(ARGS) and set(LITERAL) <= set(spec.secrets)
