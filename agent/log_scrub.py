"""Secrets kept out of every log line, whoever writes it.

Steward's own code never logs a secret, but libraries do at DEBUG (an SDK's request dump, the
SQL parameters aiosqlite logs), and an outside server can quote one back (an MCP server echoing
the header it was sent, review 73). Every secret Steward reads (its settings' `SecretStr`s, the
values an MCP config expands) is registered here; a log record factory then shows it, its
URL-encoded and its base64 forms, as `***` in the message and in any traceback, before any
handler sees the record. Only records a logger lets through are built, so this costs nothing
for suppressed DEBUG lines.
"""

from __future__ import annotations

import base64
import logging
import threading
import traceback
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["byte_forms", "redact", "register", "register_recent", "secret_forms"]

MIN_LENGTH = 6
"""Shorter values (a `1`, a `yes`) would blank ordinary words; no credential is that short."""

RECENT = 32
"""Short-lived secrets of one kind kept out of the log (`register_recent`): the newest this many."""

_lock = threading.Lock()
_kept: set[str] = set()  # the forms of every `register`ed secret
_recent: dict[str, deque[str]] = {}  # kind: the newest short-lived secrets of that kind
_forms: tuple[str, ...] = ()  # all of them, longest first
_byte_forms: tuple[bytes, ...] = ()  # the same, as UTF-8, longest first
_base_factory = logging.getLogRecordFactory()


MIN_BASE64 = 8
"""The shortest part of a base64 text kept as a secret's form: as long as a `MIN_LENGTH`
secret's own base64, so a few characters of one never blank innocent text."""


def secret_forms(value: str) -> set[str]:
    """A secret as it may be quoted: as is, URL-encoded, and base64 (padded or not), also
    encoded after other bytes (R251: HTTP Basic's `user:<this>`, SMTP AUTH PLAIN's
    `\\0user\\0<this>`, `Bearer <this>` encoded whole were logged and echoed in the clear)."""
    raw = value.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        *encoded,
        *(e.rstrip("=") for e in encoded),
        *(f for f in _base64_inside(raw) if len(f) >= MIN_BASE64),
    }


def _base64_inside(raw: bytes) -> set[str]:
    """`raw`'s base64 after 0, 1 or 2 other bytes, each cut to the characters that `raw` alone
    decides: not those holding bits of the bytes before it or after it (or the padding)."""
    found: set[str] = set()
    for before in range(3):
        first = -(-8 * before // 6)  # the first character with no bit of the bytes before
        last = 8 * (before + len(raw)) // 6  # past the last one with no bit of those after
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.add(encode(b"x" * before + raw).decode()[first:last])
    return found


def register(values: Iterable[str]) -> None:
    """Keep these values (and their encoded forms) out of every log line from now on."""
    new = {form for v in values if len(v) >= MIN_LENGTH for form in secret_forms(v)}
    if not new - _kept:
        return
    with _lock:
        _kept.update(new)
        _rebuild()


def register_recent(kind: str, value: str) -> None:
    """Keep a short-lived secret (a login link's token) out of every log line while it can be
    used: the newest `RECENT` of each kind are kept, so a year of them does not make every log
    line slower to write (R195: at DEBUG, Slack's SDK logged the `/web` link it posted)."""
    if len(value) < MIN_LENGTH:
        return
    with _lock:
        _recent.setdefault(kind, deque(maxlen=RECENT)).append(value)
        _rebuild()


def _rebuild() -> None:
    """The forms looked for, from what is kept and what is recent; under `_lock`."""
    global _forms, _byte_forms
    recent = {form for values in _recent.values() for v in values for form in secret_forms(v)}
    _forms = tuple(sorted(_kept | recent, key=len, reverse=True))
    _byte_forms = tuple(sorted({form.encode() for form in _forms}, key=len, reverse=True))
    if logging.getLogRecordFactory() is not _scrubbed_record:
        logging.setLogRecordFactory(_scrubbed_record)


def byte_forms() -> tuple[bytes, ...]:
    """Every registered form as UTF-8, longest first: for bytes written past the log, an MCP
    server's stderr kept on disk (R183)."""
    return _byte_forms


def redact(text: str) -> str:
    for form in _forms:
        if form in text:
            text = text.replace(form, "***")
    return text


def _scrubbed_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    if not _forms:
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging would print msg and args raw, later
        shown = " ".join(_shown(a) for a in _as_tuple(record.args or ()))
        record.msg, record.args = redact(f"{record.msg} [arguments: {shown}]"), None
        message = ""
    clean = redact(message)
    if message and clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = redact(text)
        if clean != text:  # the formatter prints exc_text when there is no exc_info
            record.exc_text, record.exc_info = clean, None
    return record


def _as_tuple(args: Any) -> tuple[Any, ...]:
    return tuple(args.values()) if isinstance(args, dict) else tuple(args)


def _shown(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
