"""A first start's messages (R196). A misspelt setting in the environment stops the start, as
one in `.env` does: systemd's `EnvironmentFile=` and compose's `env_file:` pass the operator's
file as the environment, where `STEWARD_TIMEZNE=Asia/Tokyo` ran on UTC without a word. And the
HTTP server's start-up line names no empty list of webhooks."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.paths import Home, load_at_home
from bot.http import HttpServer

STEWARD = [sys.executable, "-m", "bot.cli"]


def _clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any Steward setting, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return base | extra


def test_a_misspelt_setting_in_the_environment_stops_the_start(tmp_path: Path) -> None:
    env = _clean_env(
        STEWARD_HOME=str(tmp_path), STEWARD_DATA_DIR="data", STEWARD_TIMEZNE="Asia/Tokyo"
    )
    result = subprocess.run(
        [*STEWARD, "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "STEWARD_TIMEZNE" in line and "did you mean STEWARD_TIMEZONE?" in line, line
    assert "environment" in line and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # stopped before anything was made


def test_names_read_elsewhere_and_other_tools_names_are_let_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tests' and the shell's own STEWARD_ names, a name the MCP servers file takes as
    `${NAME}`, and any name without Steward's prefix are no misspelt setting."""
    for name in [k for k in os.environ if k.startswith("STEWARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STEWARD_DATA_DIR", "state")
    monkeypatch.setenv("STEWARD_TIMEZONE", "Asia/Tokyo")
    for name in ("STEWARD_CI_STRICT", "STEWARD_SCREENSHOTS", "STEWARD_GIT_KEYS"):
        monkeypatch.setenv(name, "1")
    monkeypatch.setenv("STEWARD_NOTES_TOKEN", "tok")
    monkeypatch.setenv("TIMEZNE", "x")
    monkeypatch.setenv("ANTHROPIC_LOG", "debug")
    (tmp_path / "state").mkdir()
    servers = {"notes": {"command": "notes-mcp", "env": {"T": "${STEWARD_NOTES_TOKEN}"}}}
    (tmp_path / "state" / "mcp.json").write_text(json.dumps({"mcpServers": servers}))
    settings, _ = load_at_home(Home(tmp_path, "test"))
    assert settings.timezone == "Asia/Tokyo"
    assert "not a setting" not in capsys.readouterr().err

    monkeypatch.setenv("STEWARD_OWNR", "telegram:1")  # still: one not read anywhere stops it
    with pytest.raises(ConfigError, match=r"STEWARD_OWNR, set in the environment, is not a"):
        load_at_home(Home(tmp_path, "test"))


def test_a_name_far_from_every_setting_points_to_the_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [k for k in os.environ if k.startswith("STEWARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STEWARD_XYZZY", "1")
    with pytest.raises(ConfigError, match=r"STEWARD_XYZZY.*\.env\.example") as refused:
        load_at_home(Home(tmp_path, "test"))
    assert "\n" not in str(refused.value)


async def test_the_http_servers_start_up_line_names_only_what_is_mounted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A plain console start logged "webhook server listening on http://127.0.0.1:8080 ()":
    no webhook, and the server serves the web console."""

    async def nothing(request: object) -> None:  # never called
        raise AssertionError

    said: list[str] = []
    for mounts in ([], ["/telegram/webhook"]):
        server = HttpServer("127.0.0.1", 0)
        for path in mounts:
            server.mount(path, nothing)  # type: ignore[arg-type]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bot.http"):
            await server.start()
        try:
            [line] = [r.getMessage() for r in caplog.records if r.name == "bot.http"]
            said.append(line)
        finally:
            await server.stop()
    assert re.fullmatch(r"HTTP server listening on http://127\.0\.0\.1:\d+", said[0]), said
    assert "()" not in said[0] and "webhook" not in said[0], said
    assert said[1].startswith("HTTP server listening on http://127.0.0.1:"), said
    assert said[1].endswith(" (webhooks: /telegram/webhook)"), said
