"""A setting's error line never shows a value that may be a secret (review 55): it goes to
stderr and the journal, and a key pasted into the wrong setting was quoted in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, Settings, load_settings
from agent.env_file import check_env_file, setting_names

CANARY = "CANARY7731xyz"
KEY = f"sk-ant-{CANARY}"

MAIL = {"EMAIL_IMAP_URL": "imaps://me%40example.org@imap.example.org", "EMAIL_PASSWORD": "p"}


def _refusal(**env: str) -> str:
    with pytest.raises(ConfigError) as refused:
        load_settings(_env_file=None, **env)
    return str(refused.value)


@pytest.mark.parametrize(
    "env",
    [
        {"ANTHROPIC_BASE_URL": KEY},
        {"TELEGRAM_API_BASE": f"xoxb-{CANARY}"},
        {"ANTHROPIC_BASE_URL": f"https://admin:{CANARY}"},  # no @: the password is the "port"
        {"CHROMA_URL": f"chroma://admin:{CANARY}@db.example.org:8000"},
        {"CHROMA_URL": f"http://{CANARY}{CANARY}.example.org:port"},
        {"STEWARD_PUBLIC_URL": f"ftp://admin:{CANARY}@console.example.org"},
        {"STEWARD_STT_URL": f"https://stt.example.org:{CANARY}"},
        {"EMAIL_IMAP_URL": f"imaps://me:{CANARY}", "EMAIL_PASSWORD": "p"},
        {"EMAIL_SMTP_URL": f"smtps://me@smtp.example.org/{CANARY}", "EMAIL_PASSWORD": "p"},
        {"EMAIL_IMAP_URL": f"{CANARY}://me@imap.example.org", "EMAIL_PASSWORD": "p"},
        {**MAIL, "EMAIL_FROM": KEY},
        {**MAIL, "EMAIL_FOLDERS": f'INBOX, "{CANARY}'},
        {"STEWARD_FETCH_ALLOW_HOSTS": f"wiki.lan, https://u:{CANARY}@x.example.org/p"},
        {"STEWARD_FETCH_ALLOW_HOSTS": f"{KEY}:443"},
        {"STEWARD_OWNER": KEY},
        {"STEWARD_APPROVERS": f"telegram:1, telegram:123456:{CANARY}"},
        {"TELEGRAM_ALLOWED_USERS": f"123456:{CANARY}"},  # a bot token pasted as a user
        {"SLACK_ALLOWED_USERS": f"xoxb-{CANARY}"},
        {"STEWARD_MEMORY_WEIGHTS": KEY},
        {"STEWARD_MEMORY_WEIGHTS": f"rrf_k={CANARY}"},
        {"STEWARD_TIMEZONE": KEY},
        {"STEWARD_EMBEDDER": KEY},
        {"STEWARD_LOG_LEVEL": KEY},
        {"STEWARD_EVENT_LOOP": KEY},
        {"STEWARD_HTTP_PORT": KEY},
    ],
    ids=lambda env: ",".join(env),
)
def test_a_bad_value_is_named_and_never_shown(env: dict[str, str]) -> None:
    message = _refusal(**env)
    assert CANARY.lower() not in message.lower(), message  # hosts are lower-cased
    assert "\n" not in message
    assert message.split(":")[0] in env, message  # the setting it is about


def test_a_url_is_shown_only_redacted() -> None:
    """Where the URL helps, the error shows its scheme, host and port, never its user,
    password, path or query (a token may sit in a path: TELEGRAM_API_BASE=…/bot<token>)."""
    from agent.secret_shapes import shown_url

    message = _refusal(CHROMA_URL=f"ftp://db.example.org:8000/{CANARY}?key={CANARY}")
    assert message == (
        "CHROMA_URL: ftp://db.example.org:8000/… is not a Chroma server URL (http://host:port)"
    )
    message = _refusal(EMAIL_IMAP_URL=f"imaps://me:{CANARY}@imap.example.org:99999")
    assert message.startswith("EMAIL_IMAP_URL: imaps://***@imap.example.org:99999: the port")
    assert shown_url(f"https://u:{CANARY}@[::1]:80/x") == "https://***@[::1]:80/…"
    assert shown_url(f"https://u:{CANARY}") == "https://u:***"
    assert shown_url(KEY) is None and shown_url(f"https://{KEY}.example.org") is None


@pytest.mark.parametrize(
    "url",
    [
        f"https://admin:{CANARY}@console.example.org",
        "http://admin@console.example.org:8080/",
        f"ftp://admin:{CANARY}@console.example.org",
    ],
)
def test_the_console_url_takes_no_credentials(url: str) -> None:
    """STEWARD_PUBLIC_URL is shown in links and the log like the other URL settings, and
    was the one that took `user:password@`."""
    message = _refusal(STEWARD_PUBLIC_URL=url)
    assert message.startswith("STEWARD_PUBLIC_URL: put no user or password in the URL"), message


def test_the_console_url_is_still_taken() -> None:
    settings = load_settings(_env_file=None, STEWARD_PUBLIC_URL="https://steward.example.org/")
    assert settings.public_url == "https://steward.example.org"


def _check(tmp_path: Path, text: str) -> str:
    env = tmp_path / ".env"
    env.write_text(text)
    with pytest.raises(ConfigError) as refused:
        check_env_file(env, setting_names(Settings.model_fields.values()))
    return str(refused.value)


@pytest.mark.parametrize(
    "line",
    [
        KEY,  # a key pasted without its NAME=
        f"  {KEY}  ",
        f"ghp_{CANARY}{CANARY}",  # looks like a name, and is a token
        f"export ghp_{CANARY} and more",
        "STEWARD_WEB",  # a name with no value is not NAME=value either
        f"{KEY}/abc+def==",  # python-dotenv took the key before the = for a name
    ],
)
def test_a_bare_word_in_dot_env_stops_the_start_without_showing_it(
    tmp_path: Path, line: str
) -> None:
    """python-dotenv reads a bare word as a name with no value, and a key ending in = as a
    name: both were skipped unsaid."""
    message = _check(tmp_path, f"STEWARD_MODEL=m\n{line}\n")
    assert "line 2 is not NAME=value" in message, message
    assert CANARY not in message, message


def test_a_broken_line_names_only_a_setting_it_begins_with(tmp_path: Path) -> None:
    message = _check(tmp_path, f"export ANTHROPIC_API_KEY {KEY}\n")
    assert message.endswith("line 1 is not NAME=value (it begins 'export ANTHROPIC_API_KEY')")
    assert "STEWARD_WEB" in _check(tmp_path, "STEWARD_WEB\n")


def test_a_value_quoted_by_a_check_elsewhere_is_taken_out() -> None:
    """The last guard: a check outside config.py that quotes the value it refuses."""
    from agent.config import _unquoted

    assert _unquoted(f"{KEY!r} is wrong", f"x, {KEY}") == "… is wrong"
    assert _unquoted("must be DEBUG, INFO", "DEBUG, INFO") == "must be DEBUG, INFO"


@pytest.mark.parametrize(
    "line", ["NO_PROXY_HOSTS", "export no_proxy", "spring.profiles.active=dev", "my-tool=1"]
)
def test_another_tools_odd_line_is_noted_not_refused(tmp_path: Path, line: str) -> None:
    """R60: lines of other tools that had always passed stopped the start once bare words
    were refused; only one of Steward's names or a key-like word must."""
    env = tmp_path / ".env"
    env.write_text(f"STEWARD_MODEL=m\n{line}\n")
    notes = check_env_file(env, setting_names(Settings.model_fields.values()))
    assert notes == [f"{env}: line 2 is not NAME=value; ignored (not shown)"]


@pytest.mark.parametrize(
    ("name", "url"),
    [("CHROMA_URL", "HTTP://chroma:8000"), ("ANTHROPIC_BASE_URL", "http://host:8080 ")],
)
def test_a_url_that_always_worked_still_does(name: str, url: str) -> None:
    """R60: an upper-case scheme, and the trailing space `docker --env-file` keeps, were
    refused once the URL checks were shared."""
    settings = load_settings(_env_file=None, **{name: url})
    assert getattr(settings, name.lower()).strip().lower().startswith("http://")


def test_an_upper_case_http_webhook_is_still_refused_as_http() -> None:
    """R61: the scheme read in any case let `HTTP://` past the webhook's https-only rule."""
    with pytest.raises(ConfigError, match="https:// addresses only"):
        load_settings(
            _env_file=None,
            TELEGRAM_BOT_TOKEN="123:abc",
            TELEGRAM_WEBHOOK_URL="HTTP://bot.example/hook",
        )
