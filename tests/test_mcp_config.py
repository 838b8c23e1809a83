"""mcp.json and the policy's `risk =` for MCP tools: what loads, what stops start-up with one
line, and `steward mcp check` against real servers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import make_settings, running_steward
from mcp_servers.support import PYTHON, notes_stdio, time_stdio, write_config

from agent.mcp import McpConfigError, build_mcp, load_mcp_config
from agent.mcp.config import environment
from agent.policy import PolicyError, load_policy
from agent.tools.registry import Risk

STEWARD = str(Path(sys.executable).with_name("steward"))


def _config(tmp_path: Path, servers: object) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def test_the_ecosystem_format_with_variables(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        {
            "time": {"command": "uvx", "args": ["mcp-server-time", "--tz=${TZ_NAME:-UTC}"]},
            "gh": {
                "type": "http",
                "url": "https://mcp.example/${ORG}/mcp",
                "headers": {"Authorization": "Bearer ${GITHUB_TOKEN}"},
            },
            "old": {"command": "x", "disabled": True},
        },
    )
    config = load_mcp_config(path, {"ORG": "acme", "GITHUB_TOKEN": "ghp_secret123"})
    time, gh = config.servers
    assert time.transport == "stdio" and time.args == ("mcp-server-time", "--tz=UTC")
    assert gh.transport == "http" and gh.url == "https://mcp.example/acme/mcp"
    assert gh.headers["Authorization"].get_secret_value() == "Bearer ghp_secret123"
    assert "ghp_secret123" not in repr(gh) and "ghp_secret123" not in gh.shown
    assert gh.redact("failed: ghp_secret123") == "failed: ***"
    assert config.disabled == ("old",)


def test_a_password_or_key_inside_a_plainly_named_variable_is_a_secret(tmp_path: Path) -> None:
    """R173: a stdio server given `${DATABASE_URL}` quoted `postgresql://app:S3cretPw@…` in an
    error, and it reached the model: only variables named like credentials were secrets (an
    http server's URL password was). `${TZ_NAME}` and paths stay plain."""
    path = _config(
        tmp_path,
        {
            "pg": {
                "command": "pg-mcp",
                "args": ["${DATABASE_URL}", "--tz=${TZ_NAME}"],
                "env": {"GH": "${GH_PAT}", "HOME_DIR": "${HOME_DIR}"},
            }
        },
    )
    env = {
        "DATABASE_URL": "postgresql://app:S3cretPw@db.internal/prod",
        "GH_PAT": "ghp_abcdefghijkl0123456789",
        "TZ_NAME": "Europe/Lisbon",
        "HOME_DIR": "/home/alexandra/projects/steward-work",
    }
    [pg] = load_mcp_config(path, env).servers
    said = pg.redact(
        'connection to "postgresql://app:S3cretPw@db.internal/prod" failed; token '
        "ghp_abcdefghijkl0123456789 refused; tz Europe/Lisbon; "
        "/home/alexandra/projects/steward-work"
    )
    assert "S3cretPw" not in said and "ghp_abcdefghijkl" not in said
    assert "Europe/Lisbon" in said and "/home/alexandra/projects/steward-work" in said
    # R175: the other ways a DSN carries it; and a password that is the user's name is not one
    for dsn in (
        "postgresql://app@db/prod?password=S3cretPw",
        "host=db user=app password=S3cretPw dbname=prod",
        "jdbc:postgresql://db:5432/prod?user=app&password=S3cretPw",
        "--dsn=postgresql://app:S3cretPw@db/prod",
    ):
        [pg] = load_mcp_config(path, env | {"DATABASE_URL": dsn}).servers
        assert "S3cretPw" not in pg.redact(f"failed: {dsn}"), dsn
    for local in (  # R178: each form of the same docker default
        "postgresql://postgres:postgres@localhost:5432/shop",
        "host=localhost user=postgres password=postgres dbname=shop",
        "postgresql://localhost/shop?user=postgres&password=postgres",
    ):
        [pg] = load_mcp_config(path, env | {"DATABASE_URL": local}).servers
        assert pg.redact("current_user = postgres") == "current_user = postgres", local


@pytest.mark.parametrize(
    ("servers", "expected"),
    [
        (
            {"gh": {"type": "http", "url": "https://x/${GITHUB_TOKEN}"}},
            "'gh': url: ${GITHUB_TOKEN} is not set",
        ),
        ({"t": {"command": "x", "env": {"K": "${NOPE}"}}}, "'t': env.K: ${NOPE} is not set"),
        ({"t": {"command": "x", "autoApprove": ["a"]}}, "'t': 'autoApprove' is not honoured"),
        ({"t": {"type": "sse", "url": "http://x"}}, "'t': the old SSE transport"),
        ({"t": {"args": ["a"]}}, "'t': command is missing"),
        ({"a__b": {"command": "x"}}, "server 'a__b': a server name is"),
        ({"t": {"type": "http", "url": "ftp://x"}}, "'t': url must start with http"),
        ({"t": {"command": "x", "args": "a b"}}, "'t': args must be a list"),
    ],
)
def test_a_bad_file_is_one_line_naming_server_and_problem(
    tmp_path: Path, servers: dict[str, object], expected: str
) -> None:
    path = _config(tmp_path, servers)
    with pytest.raises(McpConfigError) as raised:
        load_mcp_config(path, {})
    message = str(raised.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_invalid_json_names_the_place(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {"a": {"command": "x",}}}')
    with pytest.raises(McpConfigError, match=r"not valid JSON: .* line 1 column"):
        load_mcp_config(path, {})


def test_a_missing_file_is_no_servers_unless_named(tmp_path: Path) -> None:
    assert load_mcp_config(tmp_path / "none.json", {}).servers == ()
    with pytest.raises(McpConfigError, match="no such file"):
        load_mcp_config(tmp_path / "none.json", {}, required=True)


def test_a_server_may_not_run_in_stewards_own_folder(tmp_path: Path) -> None:
    path = _config(tmp_path, {"t": {"command": "x", "cwd": str(Path.cwd())}})
    settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(path))
    with pytest.raises(McpConfigError, match=r"cwd .* is Steward.s own folder"):
        build_mcp(settings, lambda name: None)


async def test_start_up_stops_on_a_missing_variable(tmp_path: Path) -> None:
    path = _config(tmp_path, {"github": {"command": "x", "env": {"T": "${GITHUB_TOKEN}"}}})
    with pytest.raises(McpConfigError, match=r"server 'github': env.T: \$\{GITHUB_TOKEN\}"):
        async with running_steward(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(path)):
            pass


def test_steward_run_exits_with_one_line_on_a_missing_variable(tmp_path: Path) -> None:
    path = _config(tmp_path, {"github": {"type": "http", "url": "https://h/${GH_URL_TOKEN}"}})
    env = {k: v for k, v in os.environ.items() if k != "GH_URL_TOKEN"}
    env |= {"STEWARD_DATA_DIR": str(tmp_path / "data"), "STEWARD_MCP_CONFIG": str(path)}
    for command in (["run"], ["mcp", "check"]):
        done = subprocess.run(
            [STEWARD, *command],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith("steward: ") and "server 'github'" in lines[-1]
        assert "${GH_URL_TOKEN} is not set" in lines[-1]
        assert "Traceback" not in done.stderr


def test_risk_rules_for_mcp_tools(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        "[[rules]]\ntool = 'mcp__gh__*'\nrisk = 'read'\n"
        "[[rules]]\ntool = 'mcp__*'\nrisk = 'write_internal'\n"
        "[[rules]]\ntool = 'mcp__gh__create_issue'\nrisk = 'external_effect'\n"
        "[[rules]]\ntool = 'mcp__gh__delete_repo'\nrisk = 'forbidden'\n"
    )
    policy = load_policy(path)
    assert policy.risk_for("mcp__gh__list_issues") is Risk.READ
    assert policy.risk_for("mcp__gh__create_issue") is Risk.EXTERNAL_EFFECT  # exact wins
    assert policy.risk_for("mcp__gh__delete_repo") is Risk.FORBIDDEN
    assert policy.risk_for("mcp__time__now") is Risk.WRITE_INTERNAL
    assert policy.risk_for("shell") is None


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("tool = 'shell'\nrisk = 'read'", "for MCP tools only"),
        ("tool = 'mcp__x__*'", "needs a decision"),
        ("tool = 'mcp__x__*'\nrisk = 'harmless'", "risk"),
    ],
)
def test_bad_risk_rules_stop_with_one_line(tmp_path: Path, rule: str, problem: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(f"[[rules]]\n{rule}\n")
    with pytest.raises(PolicyError, match=problem):
        load_policy(path)


def test_mcp_check_lists_tools_with_risk_and_the_read_only_hint(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "mcp.json",
        {
            "notes": notes_stdio(SECRET="${CHECK_SECRET}"),
            "time": time_stdio(),
            "broken": {"command": PYTHON, "args": ["-c", "raise SystemExit(2)"]},
        },
    )
    data = tmp_path / "data"
    data.mkdir()
    (data / "policy.toml").write_text(
        "[[rules]]\ntool = 'mcp__time__*'\nrisk = 'read'\n"
        # R134: a deny rule was shown as "ask by default"
        "[[rules]]\ntool = 'mcp__time__convert_time'\ndecision = 'deny'\n"
        "[[rules]]\ntool = 'mcp__notes__write_note'\nargs = { title = 'x' }\ndecision = 'allow'\n"
    )
    env = dict(os.environ) | {
        "STEWARD_DATA_DIR": str(data),
        "STEWARD_MCP_CONFIG": str(config),
        "CHECK_SECRET": "s3cr3t-value-42",
    }
    done = subprocess.run(
        [STEWARD, "mcp", "check"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr  # one server did not start
    assert "notes (stdio:" in out and ": up" in out
    assert (
        "mcp__notes__write_note  risk external_effect (default), ask by default"
        " (1 rule(s) for some calls)" in out
    )
    assert "mcp__time__convert_time  risk read (rule), deny by rule" in out
    assert "mcp__time__get_current_time  risk read (rule), allow by default" in out
    hint = out[out.index("mcp__notes__read_note") :].splitlines()[1:6]
    assert "says read-only and closed-world" in hint[0]
    assert hint[0].endswith("add to policy.toml:")
    # pasted as printed, the rule loads (on one line it was not TOML, and the start stopped)
    policy = data / "policy.toml"
    policy.write_text(policy.read_text() + "\n".join(line.strip() for line in hint[1:]) + "\n")
    loaded = load_policy(policy)
    assert loaded.risk_for("mcp__notes__read_note") is Risk.READ
    assert loaded.closed_world("mcp__notes__read_note")  # the server's hint, the owner's word
    assert "broken (stdio:" in out and "down" in out and "Not running: broken." in out
    assert "s3cr3t-value-42" not in out + done.stderr


async def test_secrets_stay_out_of_logs_and_states(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(
        tmp_path / "mcp.json",
        {"t": {"command": "/no/such/dir/${TOOL_TOKEN}", "env": {"A": "${TOOL_TOKEN}"}}},
    )
    os.environ["TOOL_TOKEN"] = "tok-9f8e7d"
    try:
        settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(path))
        supervisor, _ = build_mcp(settings, lambda name: None, backoff=(5.0, 5.0))
    finally:
        del os.environ["TOOL_TOKEN"]
    caplog.set_level(logging.DEBUG)
    await supervisor.start()
    try:
        await supervisor.settled(20)
        state = supervisor.states()[0]
        assert state.status == "down" and state.error and "***" in state.error
        assert "tok-9f8e7d" not in repr(supervisor.states())
        assert "tok-9f8e7d" not in caplog.text
    finally:
        await supervisor.stop()


def test_variables_come_from_the_environment_over_dot_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("GH_TOKEN_FROM_FILE=from-file\nBOTH=file\n")
    monkeypatch.setenv("BOTH", "process")
    path = _config(
        tmp_path,
        {"t": {"command": "x", "env": {"A": "${GH_TOKEN_FROM_FILE}", "B": "${BOTH}"}}},
    )
    spec = load_mcp_config(path, environment(tmp_path / ".env")).servers[0]
    assert spec.env["A"].get_secret_value() == "from-file"
    assert spec.env["B"].get_secret_value() == "process"


def test_a_risk_in_a_users_rules_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[users."test:owner"]\n'
        'rules = [{ tool = "mcp__x__*", risk = "read", decision = "allow" }]\n'
    )
    with pytest.raises(PolicyError, match="top-level"):
        load_policy(path)


def test_only_credentials_are_secrets_not_every_value_in_the_file(tmp_path: Path) -> None:
    """R112: every `${VAR}` and every env value was a secret, blanked as *** in results and
    logs: the README's own `--local-timezone ${TZ:-UTC}` made the time server's "UTC" read
    "***", `"LOG_LEVEL": "info"` made "information" "***rmation", and `${HOME}` in an
    argument took the home folder out of every log line."""
    from agent.mcp.config import redact

    path = _config(
        tmp_path,
        {
            "t": {
                "command": "x",
                "args": ["--local-timezone", "${TZ:-UTC}", "${HOME}/Documents", "${TOOL_TOKEN}"],
                "env": {"LOG_LEVEL": "info", "OPENAI_API_KEY": "sk-abc123", "ZONE": "Europe/Paris"},
            },
            "h": {"type": "http", "url": "https://mcp.example/x?k=q1w2e3", "headers": {"X": "hv1"}},
        },
    )
    environ = {"HOME": "/home/alice", "TOOL_TOKEN": "tok-9f8e7d"}
    stdio, http = load_mcp_config(path, environ).servers
    assert set(stdio.secrets) == {"tok-9f8e7d", "sk-abc123"}
    assert {"q1w2e3", "hv1"} <= set(http.secrets)
    said = "UTC, information, Europe/Paris, /home/alice/Documents"
    assert redact(said, stdio.secrets) == said
    assert redact("key sk-abc123 token tok-9f8e7d", stdio.secrets) == "key *** token ***"


@pytest.mark.parametrize("top", ["servers", "mcpservers", "mcp_servers"])
def test_servers_under_another_key_are_refused_not_silently_none(tmp_path: Path, top: str) -> None:
    """R112: `{"servers": …}` (VS Code's form) started Steward with no server, without a word."""
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({top: {"t": {"command": "x"}}}))
    with pytest.raises(McpConfigError, match=f"no \"mcpServers\" in it \\(it has '{top}'\\)"):
        load_mcp_config(path, {})


def test_disabled_as_a_string_is_refused_not_started(tmp_path: Path) -> None:
    """R112: `"disabled": "true"` was not `true`: the server started."""
    path = _config(tmp_path, {"t": {"command": "x", "disabled": "true"}})
    with pytest.raises(McpConfigError, match="disabled must be true or false"):
        load_mcp_config(path, {})
    assert load_mcp_config(
        _config(tmp_path, {"t": {"command": "x", "disabled": True}}), {}
    ).disabled == ("t",)


def test_a_key_in_a_servers_url_path_is_a_secret(tmp_path: Path) -> None:
    """Hosted servers put the key in the path (`/api/mcp/s/<key>/mcp`): it was shown on the
    approval card and in `steward mcp check`, and left in errors quoting the URL (R134)."""
    from agent.mcp.config import load_mcp_config

    key = "c2stWmFwaWVyS2V5MTIzNDU2Nzg5MGFiY2RlZg=="
    url = f"https://actions.example/api/mcp/s/{key}/mcp"
    path = write_config(tmp_path / "mcp.json", {"zap": {"type": "http", "url": url}})
    [spec] = load_mcp_config(path, {}).servers
    assert key not in spec.shown and spec.shown.endswith("/api/mcp/s/***/mcp")
    assert key in spec.secrets
    assert key not in spec.redact(f"could not reach {url}")
