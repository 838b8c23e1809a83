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
from agent.mcp.config import redact

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


# R187: the masking above took ordinary values for keys and blanked them in the owner's results
# and in every log line (a folder, a table's key names, "Basic"), and missed the header form.

RECORDS_SERVER = '''
"""Run as the filesystem and a DynamoDB server are, with a folder and a table's key names in
its args; it answers with them, as those servers do."""
import json
import sys

from mcp.server import MCPServer

server = MCPServer("records", version="1.0")
root, *rest = sys.argv[1:]
flags = dict(zip(rest[::2], rest[1::2]))


@server.tool()
def list_allowed_directories() -> str:
    """The folders it may read."""
    return f"Allowed directories:\\n{root}"


@server.tool()
def list_directory() -> str:
    """What is in the folder."""
    return f"[FILE] {root}/q3.xlsx"


@server.tool()
def get_item() -> str:
    """One item of the table."""
    return json.dumps([{flags["--partition-key"]: "u-17", flags["--sort-key"]: "2026-03-01"}])


@server.tool()
def started_with() -> str:
    """The command line it was started with."""
    return " ".join(sys.argv[1:])


if __name__ == "__main__":
    server.run()
'''
SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
NIX = "/nix/store/0c8h3zs1vy3j2kmn5x9r2a7p6q4d1f0g-nodejs-20.11.1"
BEARER = "Tk9shortSecret"
NOTION_ID = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
SHEET_ID = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"


async def test_a_folder_key_names_and_modes_in_args_come_back_in_results_as_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """R187: the folder `QuarterlyReports2024Q3` read `Allowed directories:\\n***`, an item
    `[{"***": "u-17", "***": "2026-03-01"}]`, and a log line `indexed profile for *** 17`;
    a bearer token in `--header` was none of them and is the one blanked."""
    caplog.set_level(logging.INFO)
    script = tmp_path / "records.py"
    script.write_text(RECORDS_SERVER)
    root = tmp_path / "home" / "me" / "QuarterlyReports2024Q3"
    root.mkdir(parents=True)
    args = [str(script), str(root), "--partition-key", "userId", "--sort-key", "createdAt"]
    args += ["--auth", "Basic", "--revision", SHA, "--node", NIX]
    args += ["--header", f"Authorization: Bearer {BEARER}"]
    rules = '[[rules]]\ntool = "mcp__records__*"\nrisk = "read"\nclosed_world = true\n'
    servers = {"records": {"command": PYTHON, "args": args}}
    async with mcp_world(tmp_path, servers, rules=rules) as world:
        [state] = world.mcp.states()
        tools = ["list_allowed_directories", "list_directory", "get_item", "started_with"]
        world.model.reply(Reply.tool_uses([(f"mcp__records__{t}", {}) for t in tools]))
        world.model.reply(Reply.text("done"))
        await world.h.say("what can you read?")
        results = [str(r["content"]) for r in world.model.requests[-1].tool_results]
        logging.getLogger("agent.profiles").info("indexed profile for userId 17 (Basic)")
    assert state.status == "up", state
    listed, folder, item, argv = results
    assert f"Allowed directories:\n{root}" in listed and f"[FILE] {root}/q3.xlsx" in folder
    assert '[{"userId": "u-17", "createdAt": "2026-03-01"}]' in item, item
    assert f"--auth Basic --revision {SHA} --node {NIX} --header Authorization: Bearer ***" in argv
    assert BEARER not in argv and BEARER not in caplog.text
    assert "indexed profile for userId 17 (Basic)" in caplog.messages
    assert state.target == (
        f"{PYTHON} {script} {root} --partition-key userId --sort-key createdAt --auth Basic "
        f"--revision *** --node {NIX} --header Authorization: Bearer ***"
    )


def _load(tmp_path: Path, args: list[str], **environ: str) -> tuple[str, tuple[str, ...]]:
    path = write_config(tmp_path / "mcp.json", {"s": {"command": "srv", "args": args}})
    [spec] = load_mcp_config(path, environ).servers
    return spec.shown, spec.secrets


def test_a_credential_in_a_header_arg_is_hidden_and_a_secret(tmp_path: Path) -> None:
    """R187: mcp-remote's README form, `--header "Authorization: Bearer <token>"`, was shown as
    written and its token left in results; other headers stay as they are."""
    zapier = "https://mcp.zapier.example/api/mcp/s/c2stWmFwaWVyS2V5MTIzNDU2Nzg5MGFiY2RlZg==/mcp"
    args = ["mcp-remote", zapier, "--header", f"Authorization: Bearer {BEARER}"]
    args += ["-H", "X-Api-Key: xk-42abc", "-H", "Accept: application/json"]
    args += ["--header=Cf-Access-Token:tok-77", "--header", "Authorization:${AUTH_HEADER}"]
    shown, secrets = _load(tmp_path, args, AUTH_HEADER="Bearer envTok-555")
    assert shown == (
        "srv mcp-remote https://mcp.zapier.example/api/mcp/s/***/mcp --header Authorization: "
        "Bearer *** -H X-Api-Key: *** -H Accept: application/json --header=Cf-Access-Token:*** "
        "--header Authorization:${AUTH_HEADER}"
    )
    assert {BEARER, "xk-42abc", "tok-77", "envTok-555"} <= set(secrets)
    assert "application/json" not in secrets
    said = f"401 for Bearer {BEARER} (Accept: application/json)"
    assert redact(said, secrets) == "401 for Bearer *** (Accept: application/json)"


@pytest.mark.parametrize(
    "flag",
    [
        "--token",
        "--tokens",
        "--secret",
        "--client-secret",
        "--password",
        "--passwd",
        "--pwd",
        "--passphrase",
        "--credential",
        "--apikey",
        "--bearer",
        "--pat",
        "--cookie",
        "--auth",
        "--authorization",
        "--authToken",
        "--key",
        "--api-key",
        "--apiKey",
        "--API_KEY",
        "--access-key",
        "--private-key",
        "--license-key",
        "--master-key",
    ],
)
def test_a_flag_named_for_a_credential_hides_its_value(tmp_path: Path, flag: str) -> None:
    assert _load(tmp_path, [flag, "v4lue-42x"]) == (f"srv {flag} ***", ("v4lue-42x",))
    assert _load(tmp_path, [f"{flag}=v4lue-42x"]) == (f"srv {flag}=***", ("v4lue-42x",))


@pytest.mark.parametrize(
    "flag",
    [
        "--sort-key",
        "--partition-key",
        "--sortKey",
        "--hotkey",
        "--monkey",
        "--key-file",
        "--max-tokens",
        "--maxTokens",
        "--author",
        "--keyboard",
        "--patch",
    ],
)
def test_a_flag_not_named_for_a_credential_shows_its_value(tmp_path: Path, flag: str) -> None:
    """R187: any flag ending in "key" was a credential: `--sort-key createdAt` blanked every
    "createdAt" in results and logs."""
    assert _load(tmp_path, [flag, "v4lue-42x", f"{flag}=v4lue-42x"]) == (
        f"srv {flag} v4lue-42x {flag}=v4lue-42x",
        (),
    )


def test_a_word_of_letters_after_a_credential_flag_is_a_mode_not_a_secret(
    tmp_path: Path,
) -> None:
    """R187: `--auth Basic` was `***`, and every "Basic" in results and logs with it. After a
    flag that names a password or token, a word is one all the same."""
    args = ["--auth", "Basic", "--auth=oauth", "--use-token", "true", "--api-key", "off"]
    assert _load(tmp_path, args) == ("srv " + " ".join(args), ())
    args = ["--password", "hunter", "--apiKey=letmein"]
    assert _load(tmp_path, args) == ("srv --password *** --apiKey=***", ("hunter", "letmein"))


def test_a_word_only_of_a_keys_shape_is_hidden_where_shown_but_no_secret(tmp_path: Path) -> None:
    """R187: a sheet's id, a page's, a commit were blanked in results and logs as keys; in a
    path (a folder, a `/nix/store/<hash>` command) they are shown as written."""
    paths = ["/home/me/QuarterlyReports2024Q3", "./data/ab12cd34ef56gh78ij90kl", NIX]
    paths += ["~/notes/Xy9Xy9Xy9Xy9Xy9Xy9Xy9Xy9", "--root=/srv/QuarterlyReports2024Q3"]
    paths += [f"@scope/{NOTION_ID}", f"{NIX}/bin/node"]
    ids = [NOTION_ID, f"--sheet={SHEET_ID}", "--revision", SHA]
    shown, secrets = _load(tmp_path, [*paths, *ids])
    assert shown == "srv " + " ".join([*paths, "***", "--sheet=***", "--revision", "***"])
    assert secrets == ()
