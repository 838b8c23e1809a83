"""R183: a key written as it is in a stdio server's `args` (`--token ghp_…`, `--api-key=sk-…`)
was shown wherever the server is named (`steward mcp check`, the approval card and the
approvals table, `/status`) and left in tool results, where the same key given as `${VAR}`
was `***`; and a server's stderr was kept on disk in the clear, whichever way it got the key.
Real servers built with the SDK, run as processes; ordinary args still show as written."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from fakes.anthropic import Reply
from mcp_servers.hostile_http import hostile_server, result
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
        "--passcode",
        "--totp-seed",
        "--mnemonic",
        "--seed-phrase",
        "--recovery-codes",
        "--pin-code",
        "--puk",
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
        "--seed",
        "--pin",
        "--code",
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


# R190: a password or key written in `env` under a plain name, a header's token without its
# scheme, and the CLI forms of headers and `NAME=value` were left in results and logs; and a
# name matched inside its words (GIT_AUTHOR_NAME's "auth") blanked ordinary values.

ECHO_SERVER = '''
"""Says how it was started, as servers do in errors and logs: its command line, and the env
entries its args name (at start on stderr, and when asked)."""
import os
import sys

from mcp.server import MCPServer

server = MCPServer("echo", version="1.0")


@server.tool()
def started_with() -> str:
    """The command line it was started with."""
    return " ".join(sys.argv[1:])


@server.tool()
def settings() -> str:
    """The settings it runs with, as a driver quotes them in an error."""
    return "; ".join(f"{name}={os.environ.get(name)}" for name in sys.argv[1:])


if __name__ == "__main__":
    sys.stderr.write(f"could not connect with {settings()}\\nready\\n")
    sys.stderr.flush()
    server.run()
'''
READ_ALL = '[[rules]]\ntool = "mcp__{}__*"\nrisk = "read"\nclosed_world = true\n'


def _echo(tmp_path: Path) -> str:
    script = tmp_path / "echo.py"
    script.write_text(ECHO_SERVER)
    return str(script)


def _stored(world_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (world_dir / "data").glob("steward.db*"))


async def test_a_password_or_key_written_in_env_is_a_secret_whatever_its_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """R190: `"DATABASE_URI": "postgresql://app:<pw>@…"` and `"GH": "ghp_…"` written in `env`
    reached the model, the database, the DEBUG log and stderr.log: only an env name with
    "token", "key", … made a value secret, where the same DSN as `${DATABASE_URL}` had its
    password kept."""
    caplog.set_level(logging.DEBUG)
    password, key = "Zq7pR2mXw9envPw", "ghp_CNRYenvLiteral0123456789"
    stripe = "sk_live_CNRYenvStripe42abc"
    env = {
        "DATABASE_URI": f"postgresql://app:{password}@127.0.0.1:5432/prod",
        "GH": key,
        "BILLING": stripe,
        "ZONE": "Europe/Paris",
    }
    server = {"command": PYTHON, "args": [_echo(tmp_path), *env], "env": env}
    async with mcp_world(tmp_path, {"db": server}, rules=READ_ALL.format("db")) as world:
        log = world.server_dir("db") / "stderr.log"
        await world.until(lambda: log.exists() and "ready" in log.read_text())
        world.model.reply(Reply.tool_use("mcp__db__settings", {}))
        world.model.reply(Reply.text("done"))
        await world.h.say("why does the query fail?")
        result = str(world.model.requests[-1].tool_results[0]["content"])
        kept = log.read_text()
    assert (
        "DATABASE_URI=postgresql://app:***@127.0.0.1:5432/prod; GH=***; BILLING=***; "
        "ZONE=Europe/Paris"
    ) in result, result
    for text in (result, kept, caplog.text):
        assert not [s for s in (password, key, stripe) if s in text], text
    assert not [s for s in (password, key, stripe) if s.encode() in _stored(tmp_path)]


async def test_an_env_name_with_a_credential_word_inside_a_word_keeps_its_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """R190: "auth" in GIT_AUTHOR_NAME, "token" in MAX_TOKENS, "session" in SESSION_PAGE_SIZE
    made their values secrets: a commit read `Author: *** <***>` in results and logs. A name
    is judged by its words, as a flag's; a key file's path is none either."""
    caplog.set_level(logging.INFO)
    keys = str(tmp_path / "keys" / "service-account.json")
    env = {
        "GIT_AUTHOR_NAME": "Jane Doe",
        "GIT_AUTHOR_EMAIL": "jane@example.org",
        "MAX_TOKENS": "4096",
        "NUM_TOKENS": "2048",
        "SESSION_PAGE_SIZE": "100",
        "GOOGLE_APPLICATION_CREDENTIALS": keys,
        "SESSION_TOKEN": "CNRYsessTok-5521",
        "OPENAI_KEY": "CNRYopenaiKey-7734",
    }
    server = {"command": PYTHON, "args": [_echo(tmp_path), *env], "env": env}
    async with mcp_world(tmp_path, {"git": server}, rules=READ_ALL.format("git")) as world:
        world.model.reply(Reply.tool_use("mcp__git__settings", {}))
        world.model.reply(Reply.text("done"))
        await world.h.say("what do you run with?")
        result = str(world.model.requests[-1].tool_results[0]["content"])
        logging.getLogger("agent.profiles").info("commit by Jane Doe <jane@example.org> (%s)", keys)
    assert (
        "GIT_AUTHOR_NAME=Jane Doe; GIT_AUTHOR_EMAIL=jane@example.org; MAX_TOKENS=4096; "
        f"NUM_TOKENS=2048; SESSION_PAGE_SIZE=100; GOOGLE_APPLICATION_CREDENTIALS={keys}; "
        "SESSION_TOKEN=***; OPENAI_KEY=***"
    ) in result, result
    assert f"commit by Jane Doe <jane@example.org> ({keys})" in caplog.messages


HEADER_TOOLS = [
    {
        "name": "whoami",
        "description": "whoami.",
        "inputSchema": {"type": "object", "properties": {}},
    }
]


async def _token_alone(body: dict[str, Any], request: web.Request) -> web.Response:
    token = (request.headers.get("Authorization") or "").removeprefix("Bearer ")
    said = {"content": [{"type": "text", "text": f"token {token} has expired"}], "isError": True}
    return result(body, said)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer 3f9a2b1c4d5e6f70CNRYliteral01", "3f9a2b1c4d5e6f70CNRYliteral01"),
        ("Bearer ${PROBE_MY_CREDS}", "3f9a2b1c4d5e6f70CNRYvariable2"),
    ],
)
async def test_a_headers_token_quoted_without_its_scheme_is_hidden(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    header: str,
    token: str,
) -> None:
    """R190: a header's value was a secret only whole, with its "Bearer ": a server quoting the
    token alone ("token 3f9a… has expired") handed it to the model, the database and the log."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PROBE_MY_CREDS", token)
    async with hostile_server(_token_alone, tools=HEADER_TOOLS) as url:
        server = {"type": "http", "url": url, "headers": {"Authorization": header}}
        async with mcp_world(tmp_path, {"remote": server}, rules=READ_ALL.format("remote")) as w:
            w.model.reply(Reply.tool_use("mcp__remote__whoami", {}))
            w.model.reply(Reply.text("done"))
            await w.h.say("who am I there?")
            said = json.dumps(w.model.requests[-1].tool_results)
    assert "token *** has expired" in said, said
    assert token not in caplog.text and token.encode() not in _stored(tmp_path)


UUID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJDTlJZIn0.c2lnbmF0dXJlLTQy"
CLI_FORMS = {  # as each is written in args, and as it is shown
    "proxy": (["-H", "Authorization", f"Bearer {UUID}"], "-H Authorization Bearer ***"),
    "proxies": (["--headers", "X-Api-Key", UUID], "--headers X-Api-Key ***"),
    "porter": (["--header", f"Authorization=Bearer {UUID}"], "--header Authorization=Bearer ***"),
    "stripe": (["-e", f"STRIPE_SECRET_KEY=sk_live_{UUID}"], "-e STRIPE_SECRET_KEY=***"),
    "openai": (["-e", f"OPENAI_KEY={UUID}"], "-e OPENAI_KEY=***"),
    "dbpass": (["--db-pass", UUID], "--db-pass ***"),
    "jwt": (["--jwt", JWT], "--jwt ***"),
}


async def test_headers_and_env_pairs_written_in_args_are_hidden_wherever_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """R190: mcp-proxy's `-H Authorization "Bearer <key>"`, mcporter's `--header
    "Authorization=Bearer <key>"`, docker's `-e OPENAI_KEY=<key>`, `--db-pass` and `--jwt`
    showed the key on the card, in `/mcp` and `steward mcp check`, and left it in results and
    the log."""
    caplog.set_level(logging.DEBUG)
    script = _echo(tmp_path)
    servers = {
        name: {"command": PYTHON, "args": [script, *args]} for name, (args, _) in CLI_FORMS.items()
    }
    rules = "".join(READ_ALL.format(name) for name in servers)
    async with mcp_world(tmp_path, servers, rules=rules) as world:
        targets = {state.name: state.target for state in world.mcp.states()}
        world.model.reply(Reply.tool_uses([(f"mcp__{n}__started_with", {}) for n in servers]))
        world.model.reply(Reply.text("done"))
        await world.h.say("how were they started?")
        results = [str(r["content"]) for r in world.model.requests[-1].tool_results]
        status = await world.h.say("/mcp")
    assert targets == {name: f"{PYTHON} {script} {shown}" for name, (_, shown) in CLI_FORMS.items()}
    for (_, shown), said in zip(CLI_FORMS.values(), results, strict=True):
        assert shown in said, said
    for text in (*results, status, caplog.text):
        assert UUID not in text and JWT not in text, text


def test_env_and_variable_names_are_judged_by_their_words(tmp_path: Path) -> None:
    """R190: a name is a credential's by its words, as a flag's is (`CREDENTIAL_NAME` matched
    inside words); as a name's last word KEY is a key unless it names a field."""
    credentials = ["API_KEY", "GITHUB_TOKEN", "DB_PASSWORD", "SECRET_KEY", "AUTH_TOKEN"]
    credentials += ["SESSION_TOKEN", "OPENAI_KEY", "DB_PASS", "PGPASSWORD", "MY_CREDS", "JWT"]
    credentials += ["AUTH_HEADER", "AWS_SECRET_ACCESS_KEY", "apiKey", "COOKIE"]
    credentials += ["DB_USER_PASSWORD", "AUTH_USER_TOKEN", "COOKIE_SECRET"]
    # PINs, passcodes, one-time seeds and recovery words (R192 leftover)
    credentials += ["SIM_PIN", "DOOR_PASSCODE", "TOTP_SEED", "OTP_SEED", "MFA_CODE"]
    credentials += ["WALLET_SEED", "WALLET_MNEMONIC", "RECOVERY_CODE"]
    # R200: the names wallet and 2FA servers use
    credentials += ["SEED_PHRASE", "RECOVERY_PHRASE", "RECOVERY_WORDS", "RECOVERY_CODES"]
    credentials += ["BACKUP_CODES", "PIN_CODE", "SIM_PIN_CODE", "SIM_PUK", "PASS_PHRASE"]
    plain = ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "MAX_TOKENS", "SESSION_PAGE_SIZE"]
    # R192: an auth or cookie setting that is not its secret
    plain += ["AUTH_REGION", "COOKIE_DOMAIN", "AUTH_USER", "AUTH_PROVIDER", "AUTH_SCOPES"]
    plain += ["SORT_KEY", "PUBLIC_KEY", "KEY_FILE", "TOKEN_TYPE", "OAUTH_CLIENT_ID"]
    plain += ["PASS_THROUGH", "BYPASS", "JWT_ALGORITHM", "AUTH_MODE", "TOKEN_URL"]
    plain += ["RANDOM_SEED", "SEED", "PIN_VERSION", "ZIP_CODE", "COUNTRY_CODE", "EXIT_CODE"]
    plain += ["STATUS_CODES", "KEY_WORDS", "SEED_COUNT", "PIN_VERSION_CODE"]
    names = credentials + plain
    values = {name: f"Value-{i}-of-{name}" for i, name in enumerate(names)}
    env = {name: f"${{PROBE_{i}}}" if i % 2 else values[name] for i, name in enumerate(names)}
    environ = {f"PROBE_{i}": values[name] for i, name in enumerate(names)}
    servers = {"s": {"command": "srv", "env": env}}
    [spec] = load_mcp_config(write_config(tmp_path / "mcp.json", servers), environ).servers
    assert [n for n in names if values[n] in spec.secrets] == credentials
    # a ${VAR}'s own name is judged the same way
    args = ["--tz", "${GIT_AUTHOR_NAME}", "--count", "${MAX_TOKENS}", "${OPENAI_KEY}"]
    servers = {"s": {"command": "srv", "args": args}}
    given = {"GIT_AUTHOR_NAME": "Jane Doe", "MAX_TOKENS": "4096", "OPENAI_KEY": "k-42x"}
    [spec] = load_mcp_config(write_config(tmp_path / "mcp.json", servers), given).servers
    assert spec.secrets == ("k-42x",)
    # two words are a scheme and its token only where the first is a scheme (R192: "write"
    # of "read write" was blanked in every result)
    env = {"TOKEN_SCOPE": "repo user", "AUTH": "Bearer abc-42x", "SECRET_NOTE": "read write"}
    servers = {"s": {"command": "srv", "env": env}}
    [spec] = load_mcp_config(write_config(tmp_path / "mcp.json", servers), {}).servers
    assert sorted(spec.secrets) == ["Bearer abc-42x", "abc-42x", "read write", "repo user"]


def test_a_path_or_a_switch_under_a_credentials_name_is_no_secret(tmp_path: Path) -> None:
    """R190: GOOGLE_APPLICATION_CREDENTIALS=/home/me/keys blanked the folder everywhere; a
    name saying the value is the password itself keeps it secret, a path's shape or not."""
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/keys/sa.json",
        "SSH_KEY": "~/.ssh/id_ed25519",
        "AUTH_ENABLED": "true",
        "DB_PASSWORD": "/Zq7pR2mXw9",
    }
    servers = {"s": {"command": "srv", "args": ["--password", "/Xy9pw"], "env": env}}
    [spec] = load_mcp_config(write_config(tmp_path / "mcp.json", servers), {}).servers
    assert spec.secrets == ("/Zq7pR2mXw9", "/Xy9pw")
    assert spec.shown == "srv --password ***"


PW = "Zq7pR2mXw9"


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        (f"postgresql://app:{PW}@db.internal:5432/prod", PW),
        (f"mongodb+srv://u:{PW}@cluster0.mongodb.net/db", PW),
        (f"host=db user=app password={PW} dbname=prod", PW),
        (f"ghp_{PW}abcdefghij", f"ghp_{PW}abcdefghij"),
        (f"sk_live_{PW}abcdef", f"sk_live_{PW}abcdef"),
        (f"sk_test_{PW}abcdef", f"sk_test_{PW}abcdef"),
        (f"rk_live_{PW}abcdef", f"rk_live_{PW}abcdef"),
        (f"rk_test_{PW}abcdef", f"rk_test_{PW}abcdef"),
        (f"Bearer {JWT}", JWT),
    ],
)
def test_a_secret_written_in_env_under_any_name_is_one(
    tmp_path: Path, value: str, secret: str
) -> None:
    """R190: what `${DATABASE_URL}` had kept secret (a DSN's password, a key of a known shape)
    was left in the clear when written in `env` as it is under a plain name."""
    servers = {"s": {"command": "srv", "env": {"DATABASE_URI": value}}}
    [spec] = load_mcp_config(write_config(tmp_path / "mcp.json", servers), {}).servers
    assert secret in spec.secrets, spec.secrets
    assert secret not in spec.redact(f"failed: {value}")


def test_a_credential_headers_token_is_a_secret_with_and_without_its_scheme(
    tmp_path: Path,
) -> None:
    """R190: `"Authorization": "Bearer <token>"` kept only "Bearer <token>" secret; a header
    that names no credential keeps its value whole, not its words."""
    headers = {"Authorization": "Bearer tok-Literal-42", "X-Api-Key": "Basic ${PROBE_KEY}"}
    headers["X-Tenant"] = "acme corp"
    servers = {"h": {"type": "http", "url": "https://mcp.example/mcp", "headers": headers}}
    path = write_config(tmp_path / "mcp.json", servers)
    [spec] = load_mcp_config(path, {"PROBE_KEY": "key-Variable-77"}).servers
    assert {"Bearer tok-Literal-42", "tok-Literal-42", "key-Variable-77"} <= set(spec.secrets)
    assert "acme corp" in spec.secrets and "corp" not in spec.secrets
    assert spec.redact("token tok-Literal-42, key key-Variable-77") == "token ***, key ***"


@pytest.mark.parametrize(
    ("args", "shown", "secrets"),
    [
        (["-H", "Authorization", "Bearer tok-42x"], "-H Authorization Bearer ***", ["tok-42x"]),
        (["--headers", "Cookie", "sid=c-42x"], "--headers Cookie ***", ["sid=c-42x"]),
        (["-H", "Accept", "text/plain", "x"], "-H Accept text/plain x", []),
        (
            ["--header", "Authorization=Bearer tok-42x"],
            "--header Authorization=Bearer ***",
            ["tok-42x"],
        ),
        (["--header=X-Api-Key=k-42x"], "--header=X-Api-Key=***", ["k-42x"]),
        (
            ["--headers", '{"Authorization": "Bearer tok-42x", "Accept": "text/plain"}'],
            '--headers {"Authorization": "Bearer ***", "Accept": "text/plain"}',
            ["tok-42x"],
        ),
        (
            ["--headers", '{"X-Api-Key":"${PROBE_T}"}'],
            '--headers {"X-Api-Key": "${PROBE_T}"}',
            ["env-42x"],
        ),
        (
            ["-H", "Authorization", "Bearer ${PROBE_T}"],
            "-H Authorization Bearer ${PROBE_T}",
            ["env-42x"],
        ),
        (
            ["-e", "OPENAI_KEY=k-42x", "-e", "LOG_LEVEL=info"],
            "-e OPENAI_KEY=*** -e LOG_LEVEL=info",
            ["k-42x"],
        ),
        (["--env", "GITHUB_TOKEN=${PROBE_T}"], "--env GITHUB_TOKEN=${PROBE_T}", ["env-42x"]),
        (["DB_PASS=pw-42x", "SORT_KEY=createdAt"], "DB_PASS=*** SORT_KEY=createdAt", ["pw-42x"]),
        (["--auth", "Bearer tok-42x"], "--auth ***", ["Bearer tok-42x", "tok-42x"]),
        (["--db-pass", "pw-42x", "--jwt=j-42x"], "--db-pass *** --jwt=***", ["pw-42x", "j-42x"]),
        (
            ["--pass-through", "x", "--bypass", "y", "--passenger", "z"],
            "--pass-through x --bypass y --passenger z",
            [],
        ),
        (["--jwt-algorithm", "HS256"], "--jwt-algorithm HS256", []),
        (["sk_live_Zq7pR2mXw9abcdef"], "***", ["sk_live_Zq7pR2mXw9abcdef"]),
        ([JWT], "***", [JWT]),
    ],
)
def test_the_cli_forms_of_headers_and_env_pairs(
    tmp_path: Path, args: list[str], shown: str, secrets: list[str]
) -> None:
    """R190: the header forms of mcp-proxy (`-H Name value`) and mcporter (`Name=value`), an
    env pair (`-e OPENAI_KEY=…`, judged by its name's words), `--db-pass`, `--jwt`, Stripe's
    `sk_live_` and a JWT were none; "pass" and "jwt" are one only as a name's last word.
    Headers given as one JSON object showed their token (R190 leftover)."""
    assert _load(tmp_path, args, PROBE_T="env-42x") == (f"srv {shown}", tuple(secrets))


def test_a_query_value_is_a_secret_as_written_as_well_as_decoded(tmp_path: Path) -> None:
    """A key in a URL's query with `+` in it was kept only decoded (`+` a space): quoted as it
    was sent, URL-encoded, it was left in results when its `${VAR}`'s name said nothing (the
    name had made it a secret before R190 judged names by their words)."""
    key = "CNRYqueryKey42/+="
    servers = {"h": {"type": "http", "url": "https://mcp.example/mcp?api_key=${PROBE_Q}"}}
    [spec] = load_mcp_config(write_config(tmp_path / "mcp.json", servers), {"PROBE_Q": key}).servers
    assert spec.redact(f"refused {quote(key, safe='')}") == "refused ***"
