"""Settings: names, parsing, secrets, and a bad value reported in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, load_settings
from memory.people import Identity

STEWARD = [sys.executable, "-m", "bot.cli"]


def test_defaults_are_safe_and_embedded() -> None:
    settings = load_settings()
    assert settings.data_dir == Path("data")
    assert settings.anthropic_api_key is None
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.timezone == "UTC"
    assert settings.owner == ()


def test_owner_identities_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_OWNER", "telegram:123456789, slack:U0123ABCD")
    assert load_settings().owner == (
        Identity("telegram", "123456789"),
        Identity("slack", "U0123ABCD"),
    )


def test_secrets_never_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary-123")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "999:canary-token")
    settings = load_settings()
    assert "canary" not in repr(settings)
    assert "canary" not in str(settings.model_dump())
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-canary-123"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "STEWARD_MODEL=claude-haiku-4-5\nSTEWARD_TIMEZONE=Europe/Berlin\n"
    )
    settings = load_settings()
    assert (settings.model, settings.timezone) == ("claude-haiku-4-5", "Europe/Berlin")


def test_the_example_env_file_is_the_defaults(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / ".env.example"
    (tmp_path / ".env").write_text(example.read_text())
    assert load_settings() == load_settings(_env_file=None)
    assert load_settings().anthropic_api_key is None


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("STEWARD_HTTP_PORT", "eighty", "STEWARD_HTTP_PORT"),
        ("STEWARD_HTTP_PORT", "70000", "STEWARD_HTTP_PORT"),
        ("STEWARD_TIMEZONE", "Mars/Olympus", "STEWARD_TIMEZONE: unknown timezone"),
        ("STEWARD_OWNER", "telegram", "STEWARD_OWNER: entry 1 is not channel:id"),
        ("ANTHROPIC_BASE_URL", "ftp://example", "ANTHROPIC_BASE_URL"),
        ("STEWARD_DAILY_TOKEN_BUDGET", "-5", "STEWARD_DAILY_TOKEN_BUDGET"),
        # a password in a URL would be shown in /status and logs (review 30)
        ("CHROMA_URL", "http://u:secret@127.0.0.1:8000", "CHROMA_URL: put no user or password"),
        ("STEWARD_STT_URL", "https://k:secret@stt.example", "STEWARD_STT_URL: put no user"),
        ("ANTHROPIC_BASE_URL", "https://me:pw@gw.example", "ANTHROPIC_BASE_URL: put no user"),
        ("STEWARD_EMBEDDER", "bert", "(use minilm, minilm-int8, minilm-numpy, or none"),
        # "cannot use /dev/null: File exists" named no setting (R116)
        ("STEWARD_DATA_DIR", "/dev/null", "STEWARD_DATA_DIR: /dev/null is not a folder"),
        # one that cannot be made exited 1 ("Not a directory"), restarted by systemd (R129)
        ("STEWARD_DATA_DIR", "/dev/null/data", "STEWARD_DATA_DIR: cannot be made"),
        # a URL, or what is no host at all, only logged that the console did not start (R129)
        ("STEWARD_HTTP_HOST", "http://127.0.0.1", "STEWARD_HTTP_HOST: not an IP address"),
        ("STEWARD_HTTP_HOST", "not a host!", "STEWARD_HTTP_HOST: not an IP address"),
        ("STEWARD_HTTP_HOST", "999.1.1.1", "STEWARD_HTTP_HOST: not an IP address"),
    ],
)
def test_bad_value_raises_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("STEWARD_HTTP_PORT", "not-a-port", "STEWARD_HTTP_PORT"),
        # parses as an identity, but on a channel no message can come from: no owner at all
        ("STEWARD_OWNER", "telgram:123", "configuration error: STEWARD_OWNER: entry 1 has an"),
        ("STEWARD_APPROVERS", "slak:U0123ABCD", "STEWARD_APPROVERS: entry 1 has an unknown"),
        # a URL or host:port was taken and never matched a host
        ("STEWARD_FETCH_ALLOW_HOSTS", "http://127.0.0.1:8080", "e.g. 127.0.0.1"),
        ("STEWARD_FETCH_ALLOW_HOSTS", "wiki.lan, 10.0.0.5:80", "entry 2 is a URL or host:port"),
        # a wildcard matched only a host named "*": the owner believed every host was allowed
        ("STEWARD_FETCH_ALLOW_HOSTS", "wiki.lan, *.lan", "entry 2 is a pattern; hosts are"),
        ("STEWARD_FETCH_ALLOW_HOSTS", "*", "entry 1 is a pattern"),
        # the channel refused them only once started: exit 1, restarted by systemd (R116)
        ("TELEGRAM_BOT_TOKEN", "not-a-token", "TELEGRAM_BOT_TOKEN is not a bot token"),
        ("SLACK_BOT_TOKEN", "xoxb-1", "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN"),
    ],
)
def test_bad_value_exits_with_one_line_naming_the_setting(
    tmp_path: Path, name: str, value: str, fragment: str
) -> None:
    result = _run({**os.environ, name: value, "STEWARD_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def _one_line_refusal(home: Path, data: Path) -> str:
    """`steward policy check` with this home: it must stop with exit code 2 and one line."""
    env = {**os.environ, "STEWARD_HOME": str(home), "STEWARD_DATA_DIR": str(data)}
    result = subprocess.run(
        [*STEWARD, "policy", "check"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_a_dot_env_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    """A .env saved as Latin-1 (EMAIL_FROM=Jürgen …) made every command print a traceback."""
    (tmp_path / ".env").write_bytes("EMAIL_FROM=J\u00fcrgen <j@example.org>\n".encode("latin-1"))
    assert ".env: not UTF-8" in _one_line_refusal(tmp_path, tmp_path / "d")


@pytest.mark.parametrize("shape", ["a .env that is a folder", "a home that is a file"])
def test_an_unreadable_dot_env_is_one_line(tmp_path: Path, shape: str) -> None:
    """A .env that is a folder, or a STEWARD_HOME that is a file, printed a traceback."""
    home = tmp_path / "home"
    if shape == "a .env that is a folder":
        (home / ".env").mkdir(parents=True)
    else:
        home.write_text("")
    assert ".env: cannot be read" in _one_line_refusal(home, tmp_path / "d")


def test_help_lists_run() -> None:
    result = subprocess.run([*STEWARD, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "run" in result.stdout


def test_a_timezone_in_another_case_is_taken_as_chat_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`/timezone europe/berlin` was taken in chat, STEWARD_TIMEZONE=europe/berlin refused."""
    monkeypatch.setenv("STEWARD_TIMEZONE", "europe/berlin")
    assert load_settings().timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("dot_env", "fragment"),
    [
        (
            "STEWARD_TIMEZNE=Asia/Tokyo\n",
            "line 1: STEWARD_TIMEZNE is not a setting (did you mean STEWARD_TIMEZONE?)",
        ),
        (
            "# a comment\nSTEWARD_MODEL claude\n",
            "line 2 is not NAME=value (it begins 'STEWARD_MODEL')",
        ),
        ("SLACK_APP_TOKEN=xapp-1\n", "SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not"),
        ("TELEGRAM_WEBHOOK_URL=https://x.example/h\n", "TELEGRAM_WEBHOOK_URL is set but"),
        (
            "TELEGRAM_BOT_TOKEN=1:a\nTELEGRAM_WEBHOOK_URL=http://x.example/h\n",
            "Telegram sends webhooks to https:// addresses only",
        ),
    ],
)
def test_a_mistake_in_dot_env_stops_the_start_with_one_line(
    tmp_path: Path, dot_env: str, fragment: str
) -> None:
    """A misspelled name ran on the default unsaid, a line that is not NAME=value was skipped
    with a library's warning, and half a channel started the console without a word."""
    (tmp_path / ".env").write_text(dot_env)
    env = {**os.environ, "STEWARD_HOME": str(tmp_path), "STEWARD_DATA_DIR": str(tmp_path / "d")}
    result = _run(env)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert fragment in line, line


def test_a_line_that_is_not_name_value_is_named_without_its_value(tmp_path: Path) -> None:
    """A key written without '=' stopped the start with the line in the error: the key on
    stderr and in the journal (review 35)."""
    from agent.config import Settings
    from agent.env_file import check_env_file, setting_names

    (tmp_path / ".env").write_text("ANTHROPIC_API_KEY sk-ant-CANARY-1234\n")
    with pytest.raises(ConfigError) as refused:
        check_env_file(tmp_path / ".env", setting_names(Settings.model_fields.values()))
    assert "ANTHROPIC_API_KEY" in str(refused.value) and "CANARY" not in str(refused.value)


@pytest.mark.parametrize(
    "line",
    [
        "STEWARD_TZ=Asia/Tokyo",
        "STEWARD_EMBEDDING=none",
        "EMAIL_PASS=x",
        "SLACK_TOKEN=x",
        "ANTROPIC_API_KEY=sk-ant-x",  # review 36: ran with no key, unsaid
    ],
)
def test_a_misspelt_setting_stops_the_start(tmp_path: Path, line: str) -> None:
    """Any unknown STEWARD_ name, and a near miss of another of ours: they ran on the default
    with only a note once the match was made stricter (review 34)."""
    from agent.config import Settings
    from agent.env_file import check_env_file, setting_names

    (tmp_path / ".env").write_text(line + "\n")
    with pytest.raises(ConfigError, match="is not a setting"):
        check_env_file(tmp_path / ".env", setting_names(Settings.model_fields.values()))


def test_names_other_tools_read_may_sit_in_dot_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name close to a setting is a typo and stops the start; another tool's name that
    merely shares a prefix (TELEGRAM_CHAT_ID, SLACK_CLIENT_SECRET) is noted, not refused
    (review 32: an upgrade looped systemd's restarts on them)."""
    from agent.paths import Home, load_at_home

    (tmp_path / ".env").write_text(
        "HTTPS_PROXY=http://proxy:3128\nstEward_model=m\nTELEGRAM_CHAT_ID=5\n"
        "SLACK_CLIENT_SECRET=x\nANTHROPIC_LOG=debug\n"
    )
    settings, _ = load_at_home(Home(tmp_path, "test"))
    assert settings.model == "m"
    noted = capsys.readouterr().err
    for name in ("TELEGRAM_CHAT_ID", "SLACK_CLIENT_SECRET", "ANTHROPIC_LOG"):
        assert f"{name} is not a setting Steward reads (ignored)" in noted, noted
    assert "HTTPS_PROXY" not in noted


def test_what_the_mcp_servers_file_takes_from_dot_env_is_no_misspelt_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README says to keep a server's `${VAR}` in `.env`: TELEGRAM_API_ID there stopped
    the start ("did you mean TELEGRAM_API_BASE?"), SLACK_TEAM_ID was called ignored (R134)."""
    import json

    from agent.paths import Home, load_at_home

    monkeypatch.delenv("STEWARD_DATA_DIR", raising=False)
    monkeypatch.delenv("STEWARD_MCP_CONFIG", raising=False)
    (tmp_path / ".env").write_text(
        "STEWARD_DATA_DIR=state\nTELEGRAM_API_ID=123\nSLACK_TEAM_ID=T1\nSLACK_TOKEN=x\n"
    )
    (tmp_path / "state").mkdir()
    servers = {
        "tg": {"command": "tg-mcp", "env": {"ID": "${TELEGRAM_API_ID}", "T": "${SLACK_TEAM_ID}"}}
    }
    (tmp_path / "state" / "mcp.json").write_text(json.dumps({"mcpServers": servers}))
    with pytest.raises(ConfigError, match="SLACK_TOKEN is not a setting"):
        load_at_home(Home(tmp_path, "test"))  # a misspelt setting of ours still stops it
    (tmp_path / ".env").write_text(
        "STEWARD_DATA_DIR=state\nTELEGRAM_API_ID=123\nSLACK_TEAM_ID=T1\n"
    )
    capsys.readouterr()
    load_at_home(Home(tmp_path, "test"))
    assert "not a setting" not in capsys.readouterr().err


def test_the_readme_table_names_every_setting() -> None:
    from agent.config import Settings
    from agent.env_file import ALSO_KNOWN, setting_names

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    table = " ".join(line for line in readme.splitlines() if line.startswith("| `"))
    names = setting_names(Settings.model_fields.values()) - set(ALSO_KNOWN)
    assert sorted(n for n in names if f"`{n}`" not in table) == []


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`steward run` with this environment and nothing on its standard input."""
    return subprocess.run(
        [*STEWARD, "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_allowed_hosts_are_bare_names_or_addresses() -> None:
    settings = load_settings(STEWARD_FETCH_ALLOW_HOSTS="Wiki.lan, 10.0.0.5, ::1", _env_file=None)
    assert settings.fetch_allow_hosts == {"wiki.lan", "10.0.0.5", "::1"}


@pytest.mark.parametrize(
    ("value", "taken"),
    [("0.0.0.0", "0.0.0.0"), ("::", "::"), ("[::1]", "::1"), ("localhost", "localhost"),
     ("box-2.lan", "box-2.lan"), (" 127.0.0.1 ", "127.0.0.1")],
)  # fmt: skip
def test_an_address_or_host_name_to_listen_on_is_taken(
    monkeypatch: pytest.MonkeyPatch, value: str, taken: str
) -> None:
    monkeypatch.setenv("STEWARD_HTTP_HOST", value)
    assert load_settings().http_host == taken


@pytest.mark.parametrize("data", ["data", "blocker/data"])
def test_a_relative_data_folder_that_cannot_be_made_is_one_line_and_status_2(
    tmp_path: Path, data: str
) -> None:
    """Joined to Steward's home after the settings were read, it was not checked: the default
    `data`, a file there, exited 1 ("File exists"), restarted by systemd for ever (R132)."""
    (tmp_path / "data").write_text("a file")
    (tmp_path / "blocker").write_text("a file")
    env = {**os.environ, "STEWARD_HOME": str(tmp_path), "STEWARD_DATA_DIR": data}
    result = _run(env)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "STEWARD_DATA_DIR:" in line and "Traceback" not in result.stderr
