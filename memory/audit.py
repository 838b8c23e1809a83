"""The append-only audit log, each event chained to the one before and MACed with a secret key.

Anyone who can write `steward.db` could rebuild a plain hash chain, so from the key's creation on
each event's `hash` is `hmac:` + HMAC-SHA256(key, prev_hash + the event), with the key in
`audit.key` beside the database (the data directory, which commands cannot see). Events written
before the key existed keep their plain `sha256(prev_hash + canonical JSON)`; the key file records
the first keyed id (`keyed_from`), so an attacker cannot pass later events off as old ones.
Editing, deleting or re-chaining any row breaks a link; `verify()` names the first broken one.
Events record ids and shapes, not message text. The key goes to no log, model or tool: only its
id (the first 8 hex digits of its SHA-256) is ever shown.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory.clock import Clock, SystemClock, iso
from memory.db import Database
from memory.errors import AuditKeyError

__all__ = [
    "AUDIT_KEY_FILE",
    "GENESIS",
    "KEYED",
    "AuditEvent",
    "AuditKey",
    "AuditKeyError",
    "AuditLog",
    "Verification",
    "ensure_key",
    "event_from_row",
    "read_key",
]

log = logging.getLogger(__name__)

GENESIS = "0" * 64
KEYED = "hmac:"  # the prefix of a keyed event's hash
AUDIT_KEY_FILE = "audit.key"
_FORMAT = 1


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = field(repr=False)
    keyed_from: int  # the id of the first keyed event

    @property
    def key_id(self) -> str:
        """A short name for the key that reveals nothing usable about it."""
        return hashlib.sha256(self.secret).hexdigest()[:8]

    def mac(self, prev_hash: str, at: str, kind: str, actor: str, subject: str, detail: str) -> str:
        message = json.dumps(
            ["steward-audit-v1", prev_hash, at, kind, actor, subject, detail],
            separators=(",", ":"),
        )
        return KEYED + hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: str
    kind: str
    actor: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    first_broken_id: int | None = None
    problem: str = ""
    key_id: str = ""  # empty: no key (a log from before keys, or a missing key file)
    keyed_from: int | None = None
    unverifiable: bool = False  # the key file is missing or unusable, yet events need it


def _digest(prev_hash: str, at: str, kind: str, actor: str, subject: str, detail: str) -> str:
    """The unkeyed hash of events written before the audit key existed."""
    canonical = json.dumps([at, kind, actor, subject, detail], separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _canonical(detail: str) -> str:
    """The detail as `record` wrote it before keys (unkeyed hashes cover this form)."""
    try:
        return json.dumps(json.loads(detail), sort_keys=True, separators=(",", ":"))
    except (ValueError, TypeError):
        return str(detail)  # unparseable: it cannot match its hash either


def _check(row: sqlite3.Row, key: AuditKey | None) -> str:
    """Why this event's hash is wrong, or "" when it is right."""
    event_hash = str(row["hash"])
    keyed = event_hash.startswith(KEYED)
    fields = (row["prev_hash"], row["at"], row["kind"], row["actor"], row["subject"])
    if key is not None and row["id"] >= key.keyed_from:
        if not keyed:
            return f"it is not keyed, but every event from {key.keyed_from} on must be"
        expected = key.mac(*fields, row["detail"])
    elif keyed:
        return "it is keyed, but the audit key was made after it"
    else:
        expected = _digest(*fields, _canonical(row["detail"]))
    if hmac.compare_digest(expected.encode(), event_hash.encode()):
        return ""
    return "its content does not match its " + ("MAC" if keyed else "hash")


def _append(
    conn: sqlite3.Connection,
    at: str,
    kind: str,
    actor: str,
    subject: str,
    detail: str,
    key: AuditKey | None,
) -> tuple[int, str, str]:
    """Chain one event to the last (inside the write transaction that holds SQLite's write
    lock, so no other event can come between): its id, previous hash and hash."""
    row = conn.execute("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
    prev = row[0] if row else GENESIS
    if key is None:
        digest = _digest(prev, at, kind, actor, subject, detail)
    else:
        digest = key.mac(prev, at, kind, actor, subject, detail)
    cursor = conn.execute(
        "INSERT INTO audit_events (at, kind, actor, subject, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, kind, actor, subject, detail, prev, digest),
    )
    return int(cursor.lastrowid or 0), prev, digest


def _append_many(
    conn: sqlite3.Connection,
    at: str,
    kind: str,
    actor: str,
    subjects: list[str],
    key: AuditKey | None,
) -> None:
    for subject in subjects:
        _append(conn, at, kind, actor, subject, "{}", key)


def read_key(path: Path) -> AuditKey | None:
    """The key in `path`, or None when there is none; AuditKeyError when it is unusable."""
    try:
        raw = path.read_bytes()
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
        secret = bytes.fromhex(data["key"])
        keyed_from = data["keyed_from"]
        if data.get("format") != _FORMAT or len(secret) != 32:
            raise ValueError
        if isinstance(keyed_from, bool) or not isinstance(keyed_from, int) or keyed_from < 1:
            raise ValueError
    except (ValueError, KeyError, TypeError):  # no detail: it could quote the key
        raise AuditKeyError(f"{path} is not a valid audit key file") from None
    if stat.st_mode & 0o077:
        log.warning("the audit key %s is readable by others: chmod 600 it", path)
    if stat.st_nlink > 1:  # another name for it could sit where tools and commands can read
        log.warning("the audit key %s has %d hard links: remove the others", path, stat.st_nlink)
    return AuditKey(secret, keyed_from)


def _create_key(path: Path, keyed_from: int, clock: Clock) -> AuditKey:
    """Write a new key atomically and exclusively; if another process won, return its key."""
    payload = json.dumps(
        {
            "format": _FORMAT,
            "key": secrets.token_bytes(32).hex(),
            "keyed_from": keyed_from,
            "created_at": iso(clock.now()),
            "note": "Steward's audit key: keep it private, back it up with steward.db",
        },
        indent=1,
    ).encode()
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    _write_new(temp, payload)
    try:
        os.link(temp, path)  # atomic, and never replaces a key another process made
    except FileExistsError:
        pass
    except OSError as exc:  # a file system without hard links: exclusive, not atomic
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        with contextlib.suppress(FileExistsError):
            _write_new(path, payload)
    finally:
        temp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # make the new name durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    key = read_key(path)
    if key is None:
        raise AuditKeyError(f"the audit key {path} vanished as it was created")
    return key


def _write_new(path: Path, payload: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


async def ensure_key(db: Database, path: Path, clock: Clock | None = None) -> AuditKey:
    """The audit key, created at first start; refuses a database the key does not fit.

    Creation holds SQLite's write lock, so no event is appended between reading the last id and
    the key naming the next one as its first keyed event, even by another process.
    """
    key = read_key(path)
    if key is None:
        async with db.transaction() as tx:
            cursor = await tx.execute("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
            last = await cursor.fetchone()
            key = read_key(path)  # another process may have made it while we waited
            if key is None:
                if last is not None and str(last["hash"]).startswith(KEYED):
                    raise AuditKeyError(
                        f"the audit key {path} is missing, but the audit log is keyed: restore "
                        "the key file (or move steward.db aside to start a new log)"
                    )
                key = _create_key(path, (last["id"] if last else 0) + 1, clock or SystemClock())
                log.debug(
                    "created audit key %s: events from %d on are keyed", key.key_id, key.keyed_from
                )
    last_id = await db.scalar("SELECT MAX(id) FROM audit_events") or 0
    if last_id < key.keyed_from - 1:
        raise AuditKeyError(
            f"the audit key {path} was made after event {key.keyed_from - 1}, but steward.db "
            f"holds events only up to {last_id}: the audit log was truncated or the database "
            "replaced; restore it (or move the key aside to start a new log)"
        )
    return key


class AuditLog:
    """The log. Without a key (some tests) events get the unkeyed hash of old databases.

    Given only `key_path` (the `steward audit` commands), the log reads the key itself when it
    needs it, so `verify()` also finds a key that a start-up created while it ran.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        key: AuditKey | None = None,
        key_path: Path | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._key = key
        self._key_path = key_path

    async def record(
        self, kind: str, /, *, actor: str, subject: str = "", **detail: Any
    ) -> AuditEvent:
        at = iso(self._clock.now())
        detail_json = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
        key = self._load_key()
        event_id, prev, digest = await self._db.atomic(
            _append, at, kind, actor, subject, detail_json, key
        )
        return AuditEvent(event_id, at, kind, actor, subject, detail, prev, digest)

    async def record_many(self, kind: str, /, *, actor: str, subjects: Sequence[str]) -> int:
        """One event of `kind` per subject, chained in order, in one transaction (and one trip
        to SQLite's thread): the allowlist of a first start admits hundreds at once. Returns
        how many were recorded."""
        if not subjects:
            return 0
        at = iso(self._clock.now())
        key = self._load_key()
        await self._db.atomic(_append_many, at, kind, actor, list(subjects), key)
        return len(subjects)

    async def recent(self, limit: int = 20, kind: str | None = None) -> list[AuditEvent]:
        if kind is None:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_events ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_events WHERE kind = ? ORDER BY id DESC LIMIT ?", (kind, limit)
            )
        return [event_from_row(row) for row in reversed(rows)]

    async def all(self) -> AsyncIterator[AuditEvent]:
        async for row in self._rows():
            yield event_from_row(row)

    async def _rows(self) -> AsyncIterator[sqlite3.Row]:
        """Every row in id order, a thousand at a time (the table can be large)."""
        last_id = 0
        while True:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_events WHERE id > ? ORDER BY id LIMIT 1000", (last_id,)
            )
            if not rows:
                return
            for row in rows:
                yield row
            last_id = rows[-1]["id"]

    def _load_key(self) -> AuditKey | None:
        if self._key is None and self._key_path is not None:
            self._key = read_key(self._key_path)
        return self._key

    async def verify(self) -> Verification:
        """Check every link, streaming; names the first event that fails."""
        try:
            key = self._load_key()
        except AuditKeyError as exc:
            return Verification(False, 0, None, str(exc), unverifiable=True)
        expected_prev, expected_id, count = GENESIS, 1, 0
        async for row in self._rows():
            count += 1
            event_id = row["id"]
            if event_id != expected_id:
                return Verification(False, count, expected_id, f"event {expected_id} is missing")
            if row["prev_hash"] != expected_prev:
                return Verification(False, count, event_id, "does not link to the event before it")
            if key is None and str(row["hash"]).startswith(KEYED):
                try:
                    key = self._load_key()  # perhaps made by a start-up since we began
                except AuditKeyError as exc:
                    return Verification(False, count, event_id, str(exc), unverifiable=True)
                if key is None:
                    where = self._key_path or AUDIT_KEY_FILE
                    problem = f"the audit key {where} is missing, but event {event_id} is keyed"
                    return Verification(False, count, event_id, problem, unverifiable=True)
            problem = _check(row, key)
            if problem:
                return Verification(False, count, event_id, problem)
            expected_prev = row["hash"]
            expected_id += 1
        if key is None:
            return Verification(True, count)
        if count < key.keyed_from - 1:
            problem = f"event {expected_id} is missing (the audit key came after event "
            problem += f"{key.keyed_from - 1})"
            return Verification(False, count, expected_id, problem, key.key_id, key.keyed_from)
        return Verification(True, count, key_id=key.key_id, keyed_from=key.keyed_from)


def event_from_row(row: Any) -> AuditEvent:
    """An audit event from its `audit` table row (the console's reads use it too)."""
    return AuditEvent(
        id=row["id"],
        at=row["at"],
        kind=row["kind"],
        actor=row["actor"],
        subject=row["subject"],
        detail=json.loads(row["detail"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
