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
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["byte_forms", "redact", "register", "secret_forms"]

MIN_LENGTH = 6
"""Shorter values (a `1`, a `yes`) would blank ordinary words; no credential is that short."""

_lock = threading.Lock()
_forms: tuple[str, ...] = ()  # longest first
_byte_forms: tuple[bytes, ...] = ()  # the same, as UTF-8, longest first
_base_factory = logging.getLogRecordFactory()


def secret_forms(value: str) -> set[str]:
    """A secret as it may be quoted: as is, URL-encoded, and base64 (padded or not)."""
    raw = value.encode()
    encoded = {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {
        value,
        quote(value, safe=""),
        quote_plus(value, safe=""),
        *encoded,
        *(e.rstrip("=") for e in encoded),
    }


def register(values: Iterable[str]) -> None:
    """Keep these values (and their encoded forms) out of every log line from now on."""
    global _forms, _byte_forms
    new = {form for v in values if len(v) >= MIN_LENGTH for form in secret_forms(v)}
    if not new - set(_forms):
        return
    with _lock:
        _forms = tuple(sorted(set(_forms) | new, key=len, reverse=True))
        encoded = {form.encode() for form in _forms}
        _byte_forms = tuple(sorted(encoded, key=len, reverse=True))
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
