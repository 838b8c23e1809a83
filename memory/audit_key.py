"""The audit key: its file, made once at first start, and the checks that it fits the log.

See memory/audit.py for what the key MACs and why it lives beside the database.
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
from dataclasses import dataclass, field
from pathlib import Path

from memory.clock import Clock, SystemClock, iso
from memory.db import Database
from memory.errors import AuditKeyError

__all__ = [
    "AUDIT_KEY_FILE",
    "KEYED",
    "AuditKey",
    "ensure_key",
    "mark_head_kept",
    "read_key",
    "read_private",
]

log = logging.getLogger(__name__)

KEYED = "hmac:"  # the prefix of a keyed event's hash
AUDIT_KEY_FILE = "audit.key"
_FORMAT = 1


@dataclass(frozen=True)
class AuditKey:
    secret: bytes = field(repr=False)
    keyed_from: int  # the id of the first keyed event
    head: bool = False  # a head is kept beside it (audit_head.py): a missing one shows
    created_at: str = ""

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


def read_key(path: Path) -> AuditKey | None:
    """The key in `path`, or None when there is none; AuditKeyError when it is unusable."""
    raw = read_private(path, "audit key")
    if raw is None:
        return None
    try:
        stat = path.stat()
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
    made = data.get("created_at")
    return AuditKey(
        secret, keyed_from, data.get("head") is True, made if isinstance(made, str) else ""
    )


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
    _sync_directory(path)  # make the new name durable
    key = read_key(path)
    if key is None:
        raise AuditKeyError(f"the audit key {path} vanished as it was created")
    return key


def mark_head_kept(path: Path) -> AuditKey:
    """Rewrite the key file to say a head is kept (once, on the first start that keeps one):
    from then on a missing head is reported. Atomic: a new file, synced, renamed over."""
    data = json.loads(path.read_bytes())
    data["head"] = True
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        _write_new(temp, json.dumps(data, indent=1).encode())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _sync_directory(path)
    key = read_key(path)
    assert key is not None
    return key


def read_private(path: Path, what: str) -> bytes | None:
    """A small file of the audit log's (None: there is none); AuditKeyError naming `what`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditKeyError(f"cannot read the {what} {path}: {exc.strerror}") from None


def _sync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


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
                if last is None:
                    log.debug("created audit key %s", key.key_id)
                else:  # an upgrade from before keys, or a key removed from a rewritten log
                    log.warning(  # R196: the two cannot be told apart, so both are named
                        "made a new audit key %s over %d earlier events, which it cannot vouch "
                        "for: they were written by a Steward from before audit keys (an "
                        "upgrade), or this log's key file was removed and they may have been "
                        "rewritten (see steward audit verify)",
                        key.key_id,
                        last["id"],
                    )
    last_id = await db.scalar("SELECT MAX(id) FROM audit_events") or 0
    if last_id < key.keyed_from - 1:
        raise AuditKeyError(
            f"the audit key {path} was made after event {key.keyed_from - 1}, but steward.db "
            f"holds events only up to {last_id}: the audit log was truncated or the database "
            "replaced; restore it (or move the key aside to start a new log)"
        )
    return key
