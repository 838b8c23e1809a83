"""The append-only audit log, each event chained to the one before and MACed with a secret key.

Anyone who can write `steward.db` could rebuild a plain hash chain, so from the key's creation on
each event's `hash` is `hmac:` + HMAC-SHA256(key, prev_hash + the event), with the key in
`audit.key` beside the database (the data directory, which commands cannot see). Events written
before the key existed keep their plain `sha256(prev_hash + canonical JSON)`; the key file records
the first keyed id (`keyed_from`), so an attacker cannot pass later events off as old ones.
Editing, deleting or re-chaining any row breaks a link; `verify()` names the first broken one.
Deleting the newest events is caught by the head kept beside the key (`memory/audit_head.py`).
Events record ids and shapes, not message text. The key goes to no log, model or tool: only its
id (the first 8 hex digits of its SHA-256) is ever shown.

(Some 600 lines: appending, verifying and settling the head at start-up share the chain's
encoding and its one write path, and split apart each would need the others' internals.)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory.audit_head import (
    HEAD_FILE,
    RESTORE_NOTE,
    Head,
    drop_restore_note,
    read_head,
    read_restore_note,
    write_head,
)
from memory.audit_key import (
    AUDIT_KEY_FILE,
    KEYED,
    AuditKey,
    ensure_key,
    mark_head_kept,
    read_key,
)
from memory.clock import Clock, iso
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
    "mark_head_kept",
    "read_key",
]

log = logging.getLogger(__name__)

GENESIS = "0" * 64
TRUNCATED = "audit.truncated"  # the kind of the event that says the log was cut short


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
    cut_at: tuple[int, ...] = ()  # `audit.truncated` events: the log was cut short before each
    key_made: str = ""  # when the key was made (its file says)

    @property
    def before_key_note(self) -> str:
        """What events older than the key are worth ("" if the key came with the first): only
        hash-chained, so whoever could write steward.db then, or could remove the key and
        rewrite the log the old way before a new key was made, could have rewritten them."""
        if not self.key_id or not self.keyed_from or self.keyed_from <= 1 or self.events == 0:
            return ""
        made = f" (made {self.key_made})" if self.key_made else ""
        return (
            f"events 1 to {self.keyed_from - 1} are older than the audit key{made} and only "
            "hash-chained: written by a Steward from before audit keys (an upgrade), or, if "
            "this Steward had a key before that, it was removed and they may have been rewritten"
        )

    @property
    def cut_note(self) -> str:
        """What an intact chain still owes its reader: where it was cut short ("" if never)."""
        if not self.cut_at:
            return ""
        ids = ", ".join(f"#{i}" for i in self.cut_at[-5:])
        return (
            f"it was cut short {len(self.cut_at)} time(s): see the audit.truncated event(s) {ids}"
        )


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
    head_path: Path | None = None,
) -> tuple[int, str, str]:
    """Chain one event to the last (inside the write transaction that holds SQLite's write
    lock, so no other event can come between): its id, previous hash and hash. With a head,
    a log that no longer reaches it (its newest events deleted while Steward runs) first gets
    an `audit.truncated` event saying so."""
    row = conn.execute("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
    if key is not None and head_path is not None and kind != TRUNCATED:
        problem = _short_of_head(conn, row, key, head_path)
        if problem is not None:
            log.warning("audit log: %s", problem)
            detail_json = json.dumps({"problem": problem}, separators=(",", ":"))
            row = _append(conn, at, TRUNCATED, "steward", "", detail_json, key)[::2]
    prev = row[1] if row else GENESIS
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
    head_path: Path | None,
) -> tuple[int, str, str]:
    last = (0, GENESIS, GENESIS)
    for subject in subjects:
        last = _append(conn, at, kind, actor, subject, "{}", key, head_path)
    return last


def _short_of_head(
    conn: sqlite3.Connection, last: Any, key: AuditKey, head_path: Path
) -> str | None:
    """Why the log, whose newest row is `last`, falls short of the head (None: it does not).
    The head may lag behind another process's append, never run ahead of the log."""
    try:
        head = read_head(head_path, key)
    except AuditKeyError as exc:
        return str(exc)
    if head is None:
        return f"the audit head {head_path} is missing" if key.head else None
    last_id = int(last[0]) if last else 0
    if last_id < head.id:
        return f"events {last_id + 1} to {head.id} are missing (the log reached {head.id})"
    if head.id:
        found = last[1] if last_id == head.id else _hash_of(conn, head.id)
        if found != head.hash:
            return f"event {head.id} is not the one the audit head recorded"
    return None


def _end_of_log(
    conn: sqlite3.Connection, key: AuditKey, head_path: Path
) -> tuple[str | None, tuple[int, str]]:
    """Whether the log falls short of its head, and its newest event (0, "" for none)."""
    last = conn.execute("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
    return _short_of_head(conn, last, key, head_path), (
        (int(last[0]), str(last[1])) if last else (0, "")
    )


def _hash_of(conn: sqlite3.Connection, event_id: int) -> str | None:
    row = conn.execute("SELECT hash FROM audit_events WHERE id = ?", (event_id,)).fetchone()
    return str(row[0]) if row else None


@dataclass
class _Walk:
    """How far a walk along the chain has come: the id and previous hash the next event must
    have, the `audit.truncated` events passed, the hash at the head's id, events hashed."""

    next_id: int = 1
    prev: str = GENESIS
    cuts: list[int] = field(default_factory=list)
    head_hash: str | None = None
    hashed: int = 0


@dataclass(frozen=True)
class _Stop:
    """Where a walk stopped: the event and why. `needs_key`: it is keyed and the walk had no
    key (perhaps made by a start-up since the walk began); `unverifiable`: no key to check it."""

    event_id: int
    problem: str = ""
    needs_key: bool = False
    unverifiable: bool = False


@dataclass(frozen=True)
class _Prefix:
    """R226: the events already verified (1 to `last_id`, the last hashed `last_hash`), the
    `audit.truncated` ones among them, under which key, and SQLite's `data_version` read
    before they were."""

    last_id: int
    last_hash: str
    cuts: tuple[int, ...]
    key_id: str
    data_version: int


def _walk(
    rows: Sequence[sqlite3.Row], walk: _Walk, key: AuditKey | None, head_id: int | None
) -> _Stop | None:
    """Check `rows` (in id order) against the walk so far and move it on; plain blocking code,
    run in a worker thread for all but a few rows (R226: not on the event loop)."""
    for row in rows:
        event_id = row["id"]
        if event_id < walk.next_id:  # walked already (the batch is walked on after a key load)
            continue
        if event_id != walk.next_id:
            return _Stop(walk.next_id, f"event {walk.next_id} is missing")
        if row["prev_hash"] != walk.prev:
            return _Stop(event_id, "does not link to the event before it")
        if key is None and str(row["hash"]).startswith(KEYED):
            return _Stop(event_id, needs_key=True)
        walk.hashed += 1
        problem = _check(row, key)
        if problem:
            return _Stop(event_id, problem)
        if row["kind"] == TRUNCATED:
            walk.cuts.append(event_id)
        if event_id == head_id:
            walk.head_hash = row["hash"]
        walk.prev = row["hash"]
        walk.next_id += 1
    return None


class AuditLog:
    """The log. Without a key (some tests) events get the unkeyed hash of old databases.

    Given only `key_path` (the `steward audit` commands), the log reads the key itself when it
    needs it, so `verify()` also finds a key that a start-up created while it ran.

    `hashed` counts the events whose hash or MAC `verify()` has recomputed (R226: what a page
    load costs).
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
        self._head_path = key_path.with_name(HEAD_FILE) if key_path is not None else None
        self._verified: _Prefix | None = None
        self._verifying = asyncio.Lock()
        self.hashed = 0

    async def record(
        self, kind: str, /, *, actor: str, subject: str = "", **detail: Any
    ) -> AuditEvent:
        at = iso(self._clock.now())
        detail_json = json.dumps(detail, sort_keys=True, separators=(",", ":"), default=str)
        key = self._load_key()
        event_id, prev, digest = await self._db.atomic(
            _append,
            at,
            kind,
            actor,
            subject,
            detail_json,
            key,
            self._head_path,
            after=self._head_writer(key),
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
        await self._db.atomic(
            _append_many,
            at,
            kind,
            actor,
            list(subjects),
            key,
            self._head_path,
            after=self._head_writer(key),
        )
        return len(subjects)

    def _head_writer(self, key: AuditKey | None) -> Callable[[tuple[int, str, str]], None] | None:
        """What writes the head once an append commits (on SQLite's thread); None unkeyed."""
        path = self._head_path
        if key is None or path is None:
            return None

        def write(appended: tuple[int, str, str]) -> None:
            try:
                write_head(path, key, appended[0], appended[2])
            except OSError as exc:  # the event is committed: a stale head is reported later
                log.warning("could not update the audit head %s: %s", path, exc.strerror)

        return write

    async def settle_head(self) -> str | None:
        """At start-up: check the log still reaches its head, record `audit.truncated` when it
        does not (see audit_head.py), and keep the head from now on. Returns the problem."""
        key = self._load_key()
        if key is None or self._head_path is None or self._key_path is None:
            return None
        problem, last = await self._db.atomic(_end_of_log, key, self._head_path)
        if problem is not None:
            log.warning("audit log: %s", problem)
            await self.record(TRUNCATED, actor="steward", problem=problem)
        else:
            write_head(self._head_path, key, *last)
        if not key.head:
            self._key = mark_head_kept(self._key_path)
        await self._record_restore(self._head_path.with_name(RESTORE_NOTE))
        return problem

    async def _record_restore(self, note: Path) -> None:
        """A restore put an older log back: the events after its end are gone, and the log
        says so (what it restored, where the log ended before, where the old data went)."""
        detail = await asyncio.to_thread(read_restore_note, note)
        if detail is not None:
            await self.record("audit.restored", actor="steward", **detail)
            await asyncio.to_thread(drop_restore_note, note)  # after: never lost unrecorded

    async def tools_asked_in(self, turn_id: int) -> bool:
        """Whether a turn asked for any tool (recorded before one runs): what it may have done."""
        row = await self._db.fetchone(
            "SELECT 1 FROM audit_events WHERE actor = ? AND kind = 'tool.requested' LIMIT 1",
            (f"turn:{turn_id}",),
        )
        return row is not None

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
        """Every row in id order."""
        async for rows in self._batches(0):
            for row in rows:
                yield row

    def _load_key(self) -> AuditKey | None:
        if self._key is None and self._key_path is not None:
            self._key = read_key(self._key_path)
        return self._key

    async def verify(self, *, full: bool = False) -> Verification:
        """Check the chain; names the first event that fails.

        R226: the console's home and activity pages and `/audit` verify on every request, and
        re-hashing a year of events (300,000) took seconds each time. So the log keeps, in
        memory, the prefix it has verified (its last event's id and hash, the key, and SQLite's
        `data_version` read before it). A later call checks only:
        - that no other connection has written the database since (`data_version`: an edit of
          any row from outside, by another process or the sqlite3 shell, changes it, and then
          the whole chain is checked again, so an old row edited while Steward runs is still
          named at the next page load);
        - that the prefix's last event still has the hash verified and its MAC still matches;
        - every event after it, and the log's end against the head (as the full check does).
        The full check (the first of each process: the first page load or `/audit` after a
        start, and every `steward audit verify`; or `full=True`) adds re-reading every older
        event: it also catches what bypasses SQLite (the file's bytes changed by hand) or code
        inside this process, which can read the key anyway. Hashing runs in a worker thread, a
        thousand events at a time, not on the event loop.
        """
        async with self._verifying:  # concurrent page loads share one walk, not two
            return await self._verify(full)

    async def _verify(self, full: bool) -> Verification:
        try:
            key = self._load_key()
        except AuditKeyError as exc:
            return Verification(False, 0, None, str(exc), unverifiable=True)
        head, head_problem = self._read_head(key)
        head_id = head.id if head is not None else None
        data_version = int(await self._db.scalar("PRAGMA data_version"))
        key_id = key.key_id if key is not None else ""
        walk = _Walk()
        if not full:
            walk = await self._resume(key, key_id, data_version) or walk
        started_with = key_id
        stop: _Stop | None = None
        async for rows in self._batches(walk.next_id - 1):
            while True:
                if len(rows) > 50:
                    stop = await asyncio.to_thread(_walk, rows, walk, key, head_id)
                else:  # a few new events: not worth a thread
                    stop = _walk(rows, walk, key, head_id)
                if stop is None or not stop.needs_key:
                    break
                try:
                    key = self._load_key()  # perhaps made by a start-up since we began
                except AuditKeyError as exc:
                    stop = _Stop(stop.event_id, str(exc), unverifiable=True)
                    break
                if key is None:
                    where = self._key_path or AUDIT_KEY_FILE
                    problem = (
                        f"the audit key {where} is missing, but event {stop.event_id} is keyed"
                    )
                    stop = _Stop(stop.event_id, problem, unverifiable=True)
                    break
                key_id = key.key_id
            if stop is not None:
                break
        self.hashed += walk.hashed
        count = walk.next_id - 1
        if key_id == started_with:  # checked all under one key: the next call resumes here
            cuts = tuple(walk.cuts)
            self._verified = _Prefix(count, walk.prev, cuts, key_id, data_version)
        if stop is not None:
            return Verification(
                False, count + 1, stop.event_id, stop.problem, unverifiable=stop.unverifiable
            )
        cuts = tuple(walk.cuts)
        if key is None:
            if count == 0:
                return Verification(True, 0, cut_at=cuts)
            where = self._key_path or AUDIT_KEY_FILE
            problem = (
                f"there is no audit key ({where}) for its {count} events: whoever removed a key "
                "could have rewritten them (a log from before keys gets one at its next start)"
            )
            return Verification(False, count, None, problem, unverifiable=True)
        if count < key.keyed_from - 1:
            problem = f"event {count + 1} is missing (the audit key came after event "
            problem += f"{key.keyed_from - 1})"
            return Verification(False, count, count + 1, problem, key.key_id, key.keyed_from)
        if head is not None and count < head.id:
            head_problem = f"events {count + 1} to {head.id} are missing (the log reached "
            head_problem += f"{head.id}, by the audit head)"
        elif head is not None and head.id:
            found = walk.head_hash
            if found is None:  # verified by an earlier call: its hash now
                found = await self._db.scalar(
                    "SELECT hash FROM audit_events WHERE id = ?", (head.id,)
                )
            if found != head.hash:
                head_problem = f"event {head.id} is not the one the audit head recorded"
        if head_problem is not None:
            broken = head.id if head is not None else None
            return Verification(False, count, broken, head_problem, key.key_id, key.keyed_from)
        return Verification(
            True,
            count,
            key_id=key.key_id,
            keyed_from=key.keyed_from,
            cut_at=cuts,
            key_made=key.created_at,
        )

    async def _resume(self, key: AuditKey | None, key_id: str, data_version: int) -> _Walk | None:
        """Where the verified prefix ends, if the next walk may start there (see `verify`):
        the same key, no other writer since, and its last event unchanged (hashed again)."""
        prefix = self._verified
        if prefix is None or prefix.key_id != key_id or prefix.data_version != data_version:
            return None
        walk = _Walk(prefix.last_id + 1, prefix.last_hash, list(prefix.cuts))
        if prefix.last_id == 0:
            return walk
        row = await self._db.fetchone("SELECT * FROM audit_events WHERE id = ?", (prefix.last_id,))
        self.hashed += 1
        if row is None or row["hash"] != prefix.last_hash or _check(row, key):
            return None
        return walk

    async def _batches(self, after_id: int) -> AsyncIterator[list[sqlite3.Row]]:
        """The rows after `after_id` in id order, a thousand at a time (the table can be large)."""
        while True:
            rows = await self._db.fetchall(
                "SELECT * FROM audit_events WHERE id > ? ORDER BY id LIMIT 1000", (after_id,)
            )
            if not rows:
                return
            yield rows
            after_id = rows[-1]["id"]

    async def anchor(self) -> str:
        """Where the log stands, for the journal at each start (`audit log at start: …`): kept
        outside the data directory, it is what a rewrite by someone who can write that
        directory (key file included) is caught against."""
        row = await self._db.fetchone("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
        last = f"{row['id']} events, the last {str(row['hash'])[:24]}" if row else "0 events"
        key = self._key
        keyed = f"key {key.key_id} (from event {key.keyed_from})" if key else "no key"
        return f"{last}; {keyed}"

    def _read_head(self, key: AuditKey | None) -> tuple[Head | None, str | None]:
        """The head to check the log's end against, or why it cannot be (None, None: none
        kept). Read before the events: appends only move it on, never back."""
        if key is None or not key.head or self._head_path is None:
            return None, None
        try:
            head = read_head(self._head_path, key)
        except AuditKeyError as exc:
            return None, str(exc)
        if head is None:
            return None, f"the audit head {self._head_path} is missing"
        return head, None


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
