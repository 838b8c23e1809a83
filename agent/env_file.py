"""The `.env` file read strictly: a line that is not `NAME=value` and a name that is no setting
stop the start with one line naming it (python-dotenv only logs the first and skips it;
pydantic-settings ignores the second, so `STEWARD_TIMEZNE=Asia/Tokyo` ran on UTC unsaid).
The environment's `STEWARD_` names get the same check: systemd's `EnvironmentFile=` and
compose's `env_file:` hand the operator's file over as the environment, where no `.env` is (R196).
"""

from __future__ import annotations

import difflib
import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv.parser import parse_stream

from agent.errors import ConfigError
from agent.secret_shapes import looks_like_key

__all__ = ["check_env_file", "check_environment", "env_file_values", "setting_names"]

OURS = ("STEWARD_", "ANTHROPIC_", "TELEGRAM_", "SLACK_", "CHROMA_", "EMAIL_")
"""Prefixes whose unknown names are taken for typos. Other names (a proxy, a library's own
variable) may sit in `.env` for the processes Steward starts or for other tools."""

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A variable's name, as a shell exports it."""

ALSO_KNOWN = ("STEWARD_HOME",)
"""Read before the settings: where `.env` itself is (agent/paths.py)."""

READ_ELSEWHERE = ("STEWARD_CI_STRICT", "STEWARD_GIT_KEYS", "STEWARD_SCREENSHOTS")
"""`STEWARD_` names no setting reads but something else does, so they may be in Steward's
environment: the tests' strict mode (.ci/run), the screenshots folder of
tests/test_web_browser.py, and the git keys Steward hands its shell (agent/tools/shell.py)."""


def setting_names(fields: Iterable[object]) -> set[str]:
    """Every variable name the settings read, from their validation aliases."""
    names: set[str] = set(ALSO_KNOWN)
    for field in fields:
        alias = getattr(field, "validation_alias", None)
        for choice in getattr(alias, "choices", ()) or ():
            if isinstance(choice, str):
                names.add(choice.upper())
    return names


def check_env_file(
    path: Path, known: set[str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """ConfigError for the first line that cannot be read, or that misspells a setting (a
    name close to one); a note for each other name Steward does not read (another tool's, as
    `TELEGRAM_CHAT_ID` or `ANTHROPIC_LOG` can be: not a reason to stop). Then the same for the
    environment's `STEWARD_` names (`os.environ` unless given), with or without a `.env`:
    a service or a container has its settings there (R196)."""
    notes = _check_file(path, known)
    check_environment(os.environ if environ is None else environ, known)
    return notes


def check_environment(environ: Mapping[str, str], known: set[str]) -> None:
    """ConfigError for the first variable named `STEWARD_…` that Steward does not read:
    `STEWARD_TIMEZNE=Asia/Tokyo` from a systemd `EnvironmentFile=` ran on UTC unsaid (R196).
    Only Steward's own prefix: the environment holds every other tool's names."""
    for key in sorted(environ):
        name = key.upper()
        if not name.startswith("STEWARD_") or name in known or name in READ_ELSEWHERE:
            continue
        close = _nearest_own(name, known)
        hint = f"did you mean {close}?" if close else "see .env.example for the names"
        raise ConfigError(
            f"{key}, set in the environment, is not a setting ({hint}); correct or remove it "
            "where it is set (the service's EnvironmentFile, compose's env_file, the shell)"
        )


def _nearest_own(name: str, known: set[str]) -> str | None:
    """The `STEWARD_` setting `name` is closest to, compared without the prefix they share
    (with it, STEWARD_XYZZY was "close" to STEWARD_WEB)."""
    prefix = "STEWARD_"
    tails = {k.removeprefix(prefix): k for k in known if k.startswith(prefix)}
    close = difflib.get_close_matches(name.removeprefix(prefix), sorted(tails), n=1, cutoff=0.6)
    return tails[close[0]] if close else None


def _check_file(path: Path, known: set[str]) -> list[str]:
    """`check_env_file` for the file alone."""
    notes: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return notes
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f".env: not UTF-8 (byte {exc.start}); save it as UTF-8 and start again"
        ) from None
    except OSError as exc:  # a folder, a home that is a file, no permission: one line
        raise ConfigError(
            f"{path}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        # python-dotenv takes a bare word for a name with no value (a key pasted alone), and
        # any word before an = for a name (a base64 key ending in =)
        raw = binding.key
        odd = raw is not None and (binding.value is None or not NAME.fullmatch(raw))
        if odd and not binding.error and not _ours_or_secret(binding.original.string, known):
            # another tool's line (`NAME`, `export no_proxy`, `spring.profiles.active=dev`):
            # not Steward's to refuse; said without its words
            notes.append(f"{path}: line {line} is not NAME=value; ignored (not shown)")
            continue
        if binding.error or odd:
            begins = _known_start(binding.original.string, known)
            raise ConfigError(
                f"{path}: line {line} is not NAME=value "
                + (f"(it begins {begins!r})" if begins else "(not shown: it may be a secret)")
            )
        key = (binding.key or "").strip()
        name = key.upper()
        if name in ALSO_KNOWN:
            notes.append(f"{path}: line {line}: {key} is read before .env, so not from it")
            continue
        if not key or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        ours = name.startswith(OURS)
        near = bool(close) and _typo(name, close[0], ours)
        if name.startswith("STEWARD_") or near:
            # Steward's own prefix is no other tool's; elsewhere, a near miss of one of ours
            # ("ANTROPIC_API_KEY" ran with no key, unsaid)
            hint = f" (did you mean {close[0]}?)" if close else " (see .env.example)"
            raise ConfigError(f"{path}: line {line}: {key} is not a setting{hint}")
        if ours:
            notes.append(f"{path}: line {line}: {key} is not a setting Steward reads (ignored)")
    return notes


def _known_start(text: str, known: set[str]) -> str | None:
    """The line's start up to a setting's name ("export ANTHROPIC_API_KEY"), if it begins with
    one; anything else on a line that is not NAME=value is never shown, as it is often a key."""
    words = text.split()
    prefix = ""
    if words[:1] == ["export"]:
        prefix, words = "export ", words[1:]
    name = words[0].split("=")[0] if words else ""
    return f"{prefix}{name}" if name.upper() in known else None


def _typo(name: str, setting: str, ours: bool) -> bool:
    """Whether `name` is `setting` misspelt. With one of our prefixes, a near miss is
    (EMAIL_PASS); without, only a misspelt prefix on the same name (ANTROPIC_API_KEY):
    MAIL_PASSWORD or CHROMADB_URL are other tools' own."""
    if ours:
        return difflib.SequenceMatcher(None, name, setting).ratio() >= 0.8
    head, _, rest = name.partition("_")
    own_head, _, own_rest = setting.partition("_")
    return rest == own_rest and difflib.SequenceMatcher(None, head, own_head).ratio() >= 0.9


def _ours_or_secret(text: str, known: set[str]) -> bool:
    """A line that names one of Steward's settings or holds what looks like a key: a bare word
    that is a key pasted without its name must stop the start (it was meant for a setting)."""
    words = re.split(r"[\s=]+", text.strip())
    return any(w.upper() in known or w.upper().startswith(OURS) for w in words) or any(
        looks_like_key(w) for w in words
    )


def env_file_values(path: Path) -> dict[str, str]:
    """The file's NAME=value lines, the rest passed over in silence (`check_env_file` says what
    is wrong with them): for what must be known before the settings are read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    return {
        b.key.strip(): b.value
        for b in parse_stream(io.StringIO(text))
        if b.key and b.value is not None and not b.error
    }
