"""R251: a secret sent or logged encoded after a prefix, or as part of a header, reached the
model and the log: HTTP Basic built from a URL's `user:password@`, a percent-encoded password
(sent decoded), a `Cookie` header's session value, a `Basic` header's password, and a key
base64'd with `Bearer `, `user:` or SMTP AUTH PLAIN's `\\0user\\0` before it."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fakes.anthropic import Reply
from mcp_servers.hostile_http import hostile_server, result
from mcp_servers.support import PYTHON, mcp_world

PASSWORD = "CNRYbasicPASSq9w2"
RULES = '[[rules]]\ntool = "mcp__remote__*"\nrisk = "read"\nclosed_world = true\n'
TOOLS = [
    {"name": "whoami", "description": "x.", "inputSchema": {"type": "object", "properties": {}}}
]


async def results_sent(tmp_path: Path, server: dict[str, Any]) -> str:
    """What the model was sent as the result of calling the server's tool."""
    async with mcp_world(tmp_path, {"remote": server}, rules=RULES) as w:
        w.model.reply(Reply.tool_use("mcp__remote__whoami", {}))
        w.model.reply(Reply.text("done"))
        await w.h.say("call it")
        sent = [json.dumps(r.tool_results) for r in w.model.requests if r.tool_results]
    assert sent, "the tool never ran"
    return sent[-1]


async def echo_auth(body: dict[str, Any], request: web.Request) -> web.Response:
    # a server's debug answer quoting the header it was sent (the README's review-73 case)
    said = f"refused {request.headers.get('Authorization')}"
    return result(body, {"content": [{"type": "text", "text": said}], "isError": True})


async def test_a_url_password_sent_as_basic_auth_is_not_handed_to_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PROBE_PASS", PASSWORD)
    async with hostile_server(echo_auth, tools=TOOLS) as url:
        authed = url.replace("http://", "http://anna:${PROBE_PASS}@", 1)
        sent = await results_sent(tmp_path, {"type": "http", "url": authed})
    basic = base64.b64encode(f"anna:{PASSWORD}".encode()).decode()
    assert "refused Basic ***" in sent, sent
    assert basic not in caplog.text


async def echo_decoded(body: dict[str, Any], request: web.Request) -> web.Response:
    # a server saying whom it refused: the Basic credential as it decoded it
    given = (request.headers.get("Authorization") or "").removeprefix("Basic ")
    said = f"refused {base64.b64decode(given).decode()}"
    return result(body, {"content": [{"type": "text", "text": said}], "isError": True})


async def test_a_url_password_written_percent_encoded_is_a_secret_as_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password with an @ or / must be written %40, %2F in a URL: what is sent is decoded."""
    monkeypatch.setenv("PROBE_PASS", "CNRY%40basic%2Fq9w2")
    async with hostile_server(echo_decoded, tools=TOOLS) as url:
        authed = url.replace("http://", "http://me:${PROBE_PASS}@", 1)
        sent = await results_sent(tmp_path, {"type": "http", "url": authed})
    assert "CNRY@basic/q9w2" not in sent, sent
    assert "refused ***" in sent, sent


async def test_a_basic_headers_password_is_a_secret_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Authorization: Basic <base64>`: the server decodes it and names the password."""
    monkeypatch.setenv("PROBE_BASIC", base64.b64encode(f"anna:{PASSWORD}".encode()).decode())
    async with hostile_server(echo_decoded, tools=TOOLS) as url:
        server = {"type": "http", "url": url, "headers": {"Authorization": "Basic ${PROBE_BASIC}"}}
        sent = await results_sent(tmp_path, server)
    assert PASSWORD not in sent, sent
    assert "refused ***" in sent, sent


async def echo_cookie(body: dict[str, Any], request: web.Request) -> web.Response:
    said = f"session {request.cookies.get('session')} has expired ({request.cookies.get('theme')})"
    return result(body, {"content": [{"type": "text", "text": said}], "isError": True})


async def test_a_cookie_headers_session_value_is_a_secret_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: every `headers` value is a secret; a server names the session it refused (and
    a cookie's plain word, `dark`, stays a word)."""
    monkeypatch.setenv("PROBE_SESSION", "CNRYcookieVAL1q9")
    async with hostile_server(echo_cookie, tools=TOOLS) as url:
        server = {
            "type": "http",
            "url": url,
            "headers": {"Cookie": "session=${PROBE_SESSION}; theme=dark"},
        }
        sent = await results_sent(tmp_path, server)
    assert "session *** has expired (dark)" in sent, sent


def test_a_secret_base64d_after_a_prefix_is_masked_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """log_scrub masked base64 only when the secret started the encoded text (or on a 3-byte
    boundary): HTTP Basic, SMTP AUTH PLAIN and 'Bearer <key>' encoded whole were not."""
    from agent.config import load_settings

    key = "sk-ant-CNRYbase64Q7x"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    load_settings(_env_file=None)
    with caplog.at_level(logging.DEBUG):
        for prefix in ("anna:", "\0me\0", "Bearer "):
            blob = base64.b64encode((prefix + key).encode()).decode()
            logging.getLogger("some.library").debug("auth %s", blob)
    assert len(caplog.records) == 3
    for record in caplog.records:
        assert "***" in record.getMessage(), record.getMessage()
        assert key not in base64.b64decode(record.getMessage().split()[1] + "==").decode(
            errors="replace"
        ), record.getMessage()


def test_ordinary_text_is_not_masked_by_a_short_secrets_base64(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The forms at an offset are the part that depends on the secret alone: for a short one
    only a few characters, too few to mask (they would blank innocent base64 and words)."""
    from agent.config import load_settings

    monkeypatch.setenv("ANTHROPIC_API_KEY", "Zq7x9w")  # six characters, the least kept
    load_settings(_env_file=None)
    middle = base64.b64encode(b"x" + b"Zq7x9w").decode()[2:9]  # what only the secret decides
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("some.library").debug("id %s", middle)
    assert f"id {middle}" in caplog.text


SAY_TOKEN = (
    "import base64, os, sys, runpy; sys.stderr.write('auth ' + base64.b64encode(('Bearer ' + "
    "os.environ['NOTES_TOKEN']).encode()).decode() + '\\n'); sys.stderr.flush(); "
    "sys.argv = [sys.argv[1]]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


async def test_a_token_base64d_after_a_prefix_is_kept_out_of_a_servers_stderr_log(
    tmp_path: Path,
) -> None:
    """R183: a server's stderr is kept with every registered secret as `***`; base64 of
    `Bearer <token>` is the token too."""
    notes = Path(__file__).parent / "mcp_servers" / "notes_server.py"
    token = "CNRYstderrTOKENq9w2"
    server = {
        "command": PYTHON,
        "args": ["-c", SAY_TOKEN, str(notes)],
        "env": {"NOTES_TOKEN": token},
    }
    async with mcp_world(tmp_path, {"notes": server}) as w:
        log = w.server_dir("notes") / "stderr.log"
        await w.until(lambda: log.exists() and "auth" in log.read_text())
        kept = log.read_text()
    line = next(line for line in kept.splitlines() if line.startswith("auth "))
    assert "***" in line, line
    assert token not in base64.b64decode(line.split()[1] + "==").decode(errors="replace"), line
