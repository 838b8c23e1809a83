"""The audit log's newest event, kept beside its key, so deleting the newest events shows.

The chain proves that each event follows the one before it, not that none came after: whoever
can write `steward.db` could delete the newest events (an approval, a login) and leave a valid,
shorter chain. So once each append commits, the newest event's id and hash are written to
`audit.head` beside `audit.key`, MACed with the key, and the key file says a head is kept (a
missing head then shows too). A log that ends before its head, or whose event at the head's id
is another, fails `verify()`. At start-up such a gap is written into the log itself
(`audit.truncated`) rather than refusing to start: with `synchronous=NORMAL` a power cut can
also lose the last commits, and that must not become an outage.

The head is one fixed-size record written in place (one `pwrite`, no rename, no fsync): it is
on every append's path. A torn or forged record fails its MAC, which is reported like a gap.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from memory.audit_key import AUDIT_KEY_FILE, AuditKey, read_key, read_private
from memory.errors import AuditKeyError

__all__ = [
    "HEAD_FILE",
    "RESTORE_NOTE",
    "Head",
    "drop_restore_note",
    "log_end",
    "read_head",
    "read_restore_note",
    "reset_head",
    "write_head",
]

HEAD_FILE = "audit.head"
RESTORE_NOTE = "audit.restored.json"
"""Left by a restore for the next start to record as `audit.restored`: the events after the
archive's end are gone from the log, and the log itself says so."""
_SIZE = 256  # bytes: one record, padded, so a shorter one never leaves a longer one's tail


@dataclass(frozen=True)
class Head:
    id: int
    hash: str


def _mac(key: AuditKey, event_id: int, event_hash: str) -> str:
    message = json.dumps(["steward-audit-head-v1", event_id, event_hash], separators=(",", ":"))
    return hmac.new(key.secret, message.encode(), hashlib.sha256).hexdigest()


def write_head(path: Path, key: AuditKey, event_id: int, event_hash: str) -> None:
    record = json.dumps(
        {"id": event_id, "hash": event_hash, "mac": _mac(key, event_id, event_hash)},
        separators=(",", ":"),
    ).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, record.ljust(_SIZE), 0)
    finally:
        os.close(fd)


def read_head(path: Path, key: AuditKey) -> Head | None:
    """The head in `path` (None: there is none); AuditKeyError when it is damaged or forged."""
    raw = read_private(path, "audit head")
    if raw is None:
        return None
    try:
        data = json.loads(raw.rstrip(b" \x00"))
        head = Head(int(data["id"]), str(data["hash"]))
        mac = str(data["mac"])
    except (ValueError, KeyError, TypeError):
        raise AuditKeyError(f"the audit head {path} is damaged") from None
    if not hmac.compare_digest(mac, _mac(key, head.id, head.hash)):
        raise AuditKeyError(f"the audit head {path} does not match the audit key")
    return head


def reset_head(database: Path, **restored: object) -> None:
    """After a restore: the restored log's newest event is its head (an archive holds none: a
    head copied while Steward ran could be ahead of the database's snapshot). `restored`
    (the archive's date, the log's end before, where the old data went) is left in
    RESTORE_NOTE for the next start to record in the log."""
    key = read_key(database.with_name(AUDIT_KEY_FILE))
    if key is None:
        return
    with contextlib.closing(sqlite3.connect(database)) as conn:
        row = conn.execute("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
    write_head(database.with_name(HEAD_FILE), key, *(row if row else (0, "")))
    note = database.with_name(RESTORE_NOTE)
    note.write_text(json.dumps({**restored, "restored_to": row[0] if row else 0}, default=str))
    note.chmod(0o600)


def log_end(database: Path) -> int | None:
    """The newest audit event's id in a database about to be replaced (None: none readable)."""
    if not database.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT MAX(id) FROM audit_events").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row and row[0] is not None else None


_NOTE_FIELDS = {
    "archive_created_at": str,
    "log_ended_at": int,
    "moved_aside": str,
    "restored_to": int,
}


def read_restore_note(note: Path) -> dict[str, object] | None:
    """What a restore left in RESTORE_NOTE (None: there is none): only its known fields, each
    of its type and short, so a note planted in the data directory cannot write an event of
    its own choosing. Blocking: call it from a worker thread."""
    try:
        raw = note.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:  # a folder, unreadable: still a restore to record, not a start refused
        return {"note": "unreadable"}
    try:
        found = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {"note": "unreadable"}
    if not isinstance(found, dict):
        return {"note": "unreadable"}
    kept: dict[str, object] = {}
    for name, kind in _NOTE_FIELDS.items():
        value = found.get(name)
        if isinstance(value, kind) and not isinstance(value, bool):
            kept[name] = value[:300] if isinstance(value, str) else value
    return kept


def drop_restore_note(note: Path) -> None:
    """Blocking: call it from a worker thread."""
    if note.is_dir():
        try:
            note.rmdir()
        except OSError:  # not empty: set aside, so it is recorded once, not at every start
            with contextlib.suppress(OSError):
                note.rename(note.with_name(f"{note.name}.recorded-{time.time_ns()}"))
    else:
        note.unlink(missing_ok=True)
