"""The `memories` table in SQLite: text, provenance, supersession, keyword search (FTS5) and the
journal of which vectors Chroma holds.

This is the source of truth. Vectors live elsewhere (`vectors.py`) and are derived from it.
Every read takes a `user_id`: one user's memories never come back for another. The values are in
`types.py`, the query words in `terms.py`, compaction marks in `compactions.py`.

(Some 510 lines: the table's writes and its supersession rules are one contract.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.labels import TRUSTED, Label
from memory.longterm.keyword import KeywordIndex, RowFilter
from memory.longterm.terms import date_words
from memory.longterm.types import (
    MAX_TEXT_CHARS,
    MEMORY_KINDS,
    Kind,
    Memory,
    NewMemory,
    Source,
    Trust,
    normalize_subject,
    normalize_text,
)
from memory.visible import visible

__all__ = ["MemoryRecords", "memory_of_row"]


# Enum members by value: a dict look-up instead of EnumType.__call__ (a turn maps ~90 rows).
_KINDS = {k.value: k for k in Kind}
_SOURCES = {s.value: s for s in Source}
_TRUSTS = {t.value: t for t in Trust}


def _memory(row: sqlite3.Row) -> Memory:
    return Memory(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        kind=_KINDS.get(row["kind"]) or Kind(row["kind"]),
        text=row["text"],
        subject=row["subject"],
        source=_SOURCES.get(row["source"]) or Source(row["source"]),
        source_ref=row["source_ref"],
        trust=_TRUSTS.get(row["trust"]) or Trust(row["trust"]),
        importance=float(row["importance"]),
        turn_id=row["turn_id"],
        created_at=parse_iso(row["created_at"]),
        superseded_by=row["superseded_by"],
        superseded_at=parse_iso(row["superseded_at"]) if row["superseded_at"] else None,
        label=Label.from_json(row["label"]),
        message_id=row["message_id"],
    )


_MEMORY_KIND_SQL = ",".join(f"'{k.value}'" for k in MEMORY_KINDS)
# The next number above every id in use and every one forgotten (migration 0015): a forgotten
# memory's number is never another's.
_NEXT_ID = "(SELECT MAX(COALESCE((SELECT MAX(id) FROM memories), 0), floor) + 1 FROM memory_ids)"
_INSERT = (
    "INSERT INTO memories (id, user_id, chat_id, kind, text, subject, subject_key, source,"
    " source_ref, trust, importance, turn_id, created_at, label, message_id, dates)"
    f" VALUES ({_NEXT_ID}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# A transcript row already kept for this user and message is skipped (migration 0008's index).
_INSERT_NEW = _INSERT + " ON CONFLICT DO NOTHING"


def _row(new: NewMemory, text: str, created: datetime) -> tuple[Any, ...]:
    return (
        new.user_id,
        new.chat_id,
        new.kind.value,
        text,
        new.subject.strip(),
        normalize_subject(new.subject),
        new.source.value,
        new.source_ref,
        new.resolved_trust.value,
        float(new.importance),
        new.turn_id,
        iso(created),
        new.resolved_label.to_json(),
        new.message_id,
        date_words(created),
    )


memory_of_row = _memory  # a `memories` row as a Memory (for look-ups that select whole rows)


# Sources Steward never trusts (outside content; another person's word about themselves):
# an imported record from one of them is untrusted whatever its "trust" says.
_NEVER_TRUSTED = frozenset({Source.WEB, Source.FEED, Source.TOOL, Source.MAIL, Source.USER_SAID})


def _label_sources(record: dict[str, Any]) -> list[str]:
    """A record's label: a list of source names. A string was read letter by letter
    ("web:x" became the sources "w", "e", "b"...): anything but a list of strings is refused."""
    label = record.get("label")
    if label is None:
        return []
    if not isinstance(label, list) or not all(isinstance(s, str) for s in label):
        raise ValueError("its label is not a list of source names")
    return label


def _restored_trust(record: dict[str, Any]) -> Trust:
    """An export file is only text: a record that names outside sources, or comes from a
    source never trusted, is untrusted even if the file calls it trusted."""
    if Source(record["source"]) in _NEVER_TRUSTED or _label_sources(record):
        return Trust.UNTRUSTED
    return Trust(record["trust"])


def _restored_label(record: dict[str, Any]) -> str:
    """An imported memory keeps its label; an untrusted one from an older export gets its
    source kind as the label."""
    sources = _label_sources(record)
    if _restored_trust(record) is Trust.UNTRUSTED:
        return Label.untrusted(*sources, str(record["source"])).to_json()
    return TRUSTED.to_json()


def _insert_rows(conn: sqlite3.Connection, values: list[tuple[Any, ...]]) -> list[int]:
    """`insert_many`'s statements, on the database's thread inside its transaction."""
    ids: list[int] = []
    for value in values:
        cursor = conn.execute(_INSERT_NEW, value)
        ids.append(int(cursor.lastrowid or 0) if cursor.rowcount == 1 else 0)
    return ids


class MemoryRecords:
    """The `memories` table and its FTS5 index."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self.fulltext = KeywordIndex(db)

    # -- writing ------------------------------------------------------------------------------

    async def insert(
        self,
        new: NewMemory,
        *,
        supersede: Iterable[int] = (),
        retired_by: int | None = None,
        also: Callable[[aiosqlite.Connection, int], Awaitable[None]] | None = None,
    ) -> Memory:
        """Insert a memory and retire `supersede` (ids of this user's memories in force) in one
        transaction. `retired_by`: the memory is replaced already (by a newer one) as it is
        stored: out of the keyword index, and no vector is owed or to remove. `also(tx, id)`:
        more writes in the same transaction (an episode's compaction mark, R254)."""
        text = normalize_text(new.text)
        if not visible(text):  # nothing, or zero-width marks alone (R121)
            raise ValueError("a memory needs some text")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"a memory is at most {MAX_TEXT_CHARS} characters")
        if not 0.0 <= new.importance <= 1.0:
            raise ValueError("importance is between 0 and 1")
        created = new.created_at or self._clock.now()
        now = iso(self._clock.now())
        retire = sorted(set(supersede))
        async with self._db.transaction() as tx:
            cursor = await tx.execute(_INSERT, _row(new, text, created))
            memory_id = int(cursor.lastrowid or 0)
            for old in retire:
                await tx.execute(
                    "UPDATE memories SET superseded_by = ?, superseded_at = ?"
                    " WHERE id = ? AND user_id = ? AND superseded_at IS NULL",
                    (memory_id, now, old, new.user_id),
                )
            if retired_by is not None:
                await tx.execute(
                    "UPDATE memories SET superseded_by = ?, superseded_at = ? WHERE id = ?",
                    (retired_by, now, memory_id),
                )
                await tx.execute(
                    "DELETE FROM memory_vector_removals WHERE memory_id = ?", (memory_id,)
                )
            if also is not None:
                await also(tx, memory_id)
        memory = await self.get(new.user_id, memory_id)
        assert memory is not None
        return memory

    async def insert_many(self, rows: Sequence[NewMemory]) -> list[int]:
        """Bulk insert without supersession checks (`LongTermMemory.save_many`); returns the
        new ids (0 for a transcript row kept already). Every row is checked first: one bad row
        stores none."""
        now = self._clock.now()
        values: list[tuple[Any, ...]] = []
        for new in rows:
            text = normalize_text(new.text)
            if not text or len(text) > MAX_TEXT_CHARS or not 0.0 <= new.importance <= 1.0:
                raise ValueError(f"not a memory to save: {new.text[:40]!r}")
            values.append(_row(new, text, new.created_at or now))
        return await self._db.atomic(_insert_rows, values)  # one trip: two rows every turn

    async def restore(self, record: dict[str, Any], *, user_id: int, chat_id: int | None) -> int:
        """Insert an exported record as it was (import); supersession links are set afterwards
        with `link_superseded`. A record no save would accept (empty, too long, importance out
        of 0-1) is a ValueError, as everywhere else."""
        text = normalize_text(str(record["text"]))
        importance = float(record.get("importance", 0.5))
        if not text or len(text) > MAX_TEXT_CHARS or not 0.0 <= importance <= 1.0:
            raise ValueError(f"not a memory to import: {text[:40]!r}")
        if Kind(record["kind"]) is Kind.MESSAGE:
            # an export never holds one: a message row is what was said in a chat, kept by
            # Steward as it was said; one from a file would be recalled as a past message
            raise ValueError("messages are not imported (an export holds memories only)")
        return await self._db.execute(
            "INSERT INTO memories (id, user_id, chat_id, kind, text, subject, subject_key,"
            " source, source_ref, trust, importance, turn_id, created_at, superseded_at, label,"
            f" dates) VALUES ({_NEXT_ID}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            (
                user_id,
                chat_id,
                Kind(record["kind"]).value,
                text,
                str(record.get("subject") or ""),
                normalize_subject(str(record.get("subject") or "")),
                Source(record["source"]).value,
                str(record.get("source_ref") or ""),
                _restored_trust(record).value,
                importance,
                iso(parse_iso(str(record["created_at"]))),
                iso(parse_iso(str(record["superseded_at"])))
                if record.get("superseded_at")
                else None,
                _restored_label(record),
                date_words(parse_iso(str(record["created_at"]))),
            ),
        )

    async def link_superseded(self, memory_id: int, superseded_by: int | None) -> None:
        await self._db.execute(
            "UPDATE memories SET superseded_by = ? WHERE id = ?", (superseded_by, memory_id)
        )

    async def retire(
        self, user_id: int, memory_id: int, superseded_by: int | None, at: datetime
    ) -> bool:
        """Mark a memory replaced, as a correction does, when the correction was made elsewhere
        (an import) or its replacement was since forgotten: only a memory in force, or one
        whose replacement no longer exists, is retired (a replacement that stands is kept).
        Whether it was."""
        changed = await self._db.execute(
            "UPDATE memories SET superseded_by = ?, superseded_at = ? WHERE id = ? AND user_id = ?"
            " AND (superseded_at IS NULL OR superseded_by IS NULL"
            " OR NOT EXISTS (SELECT 1 FROM memories AS r WHERE r.id = memories.superseded_by))",
            (superseded_by, iso(at), memory_id, user_id),
        )
        return changed > 0

    async def said_again(self, user_id: int, memory_id: int, at: datetime) -> Memory | None:
        """Date a memory in force at `at`, when its words were said again later (R212): only
        ever forward. Its date words in the keyword index follow (the FTS trigger). The memory
        as it now is, or None when it is no longer in force."""
        await self._db.execute(
            "UPDATE memories SET created_at = ?, dates = ?"
            " WHERE id = ? AND user_id = ? AND superseded_at IS NULL AND created_at < ?",
            (iso(at), date_words(at), memory_id, user_id, iso(at)),
        )
        memory = await self.get(user_id, memory_id)
        return memory if memory is not None and memory.active else None

    async def delete(self, user_id: int, memory_id: int) -> Memory | None:
        """Remove a memory for good; returns what was removed."""
        memory = await self.get(user_id, memory_id)
        if memory is None:
            return None
        await self._db.execute(
            "DELETE FROM memories WHERE id = ? AND user_id = ?", (memory_id, user_id)
        )
        return memory

    async def purge_deleted(self) -> None:
        """Rewrite the keyword index without what was deleted from it: FTS5 only marks a
        deleted row, its words stay in the index's older segments until they merge (a
        forgotten memory's whole sentence could be read back from the file). ~0.3 s at
        100,000 memories; then the WAL's copies of the old pages go."""
        await self._db.execute("INSERT INTO memories_fts(memories_fts) VALUES('optimize')")
        await self._db.truncate_wal()

    # -- reading ------------------------------------------------------------------------------

    async def get(self, user_id: int, memory_id: int) -> Memory | None:
        row = await self._db.fetchone(
            "SELECT * FROM memories WHERE id = ? AND user_id = ?", (memory_id, user_id)
        )
        return _memory(row) if row else None

    async def get_many(
        self, user_id: int, ids: Iterable[int], *, active_only: bool = True
    ) -> dict[int, Memory]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        extra = " AND superseded_at IS NULL" if active_only else ""
        # `+user_id`: look the ids up by primary key; an index on user_id would make SQLite walk
        # every memory of the user (20 ms at 100k) to find thirty.
        rows = await self._db.fetchall(
            f"SELECT * FROM memories WHERE id IN ({marks}) AND +user_id = ?{extra}",
            (*wanted, user_id),
        )
        return {row["id"]: _memory(row) for row in rows}

    async def recent(
        self, user_id: int, limit: int = 10, *, kinds: Iterable[Kind] | None = None
    ) -> list[Memory]:
        """The user's memories in force, newest first (transcript rows only when asked for)."""
        params: list[Any] = [user_id]
        where = "user_id = ? AND superseded_at IS NULL"
        kind_list = [k.value for k in (MEMORY_KINDS if kinds is None else kinds)]
        where += f" AND kind IN ({','.join('?' * len(kind_list))})"
        params += kind_list
        rows = await self._db.fetchall(
            f"SELECT * FROM memories WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_memory(row) for row in rows]

    async def recent_before(
        self, user_id: int, before_id: int, limit: int, *, placed: bool = False
    ) -> list[Memory] | None:
        """The next page of `recent`: the memories in force listed after #`before_id` (older,
        by the same order), or None when the user has no row #`before_id` to page from.
        `placed`: a row since forgotten is placed by the user's nearest row below it in id (R265:
        the console's "Older" went back to the most recent), exact while rows are dated as
        saved; None only past the user's newest row."""
        anchor = await self._db.fetchone(
            "SELECT created_at FROM memories WHERE id = ? AND user_id = ?", (before_id, user_id)
        )
        if anchor is None and placed:  # the neighbours by primary key (`+user_id`: get_many)
            above = await self._db.fetchone(
                "SELECT created_at FROM memories WHERE id > ? AND +user_id = ? ORDER BY id LIMIT 1",
                (before_id, user_id),
            )
            below = await self._db.fetchone(
                "SELECT created_at FROM memories WHERE id < ? AND +user_id = ?"
                " ORDER BY id DESC LIMIT 1",
                (before_id, user_id),
            )
            anchor = None if above is None else below or above
        if anchor is None:
            return None
        at = anchor["created_at"]
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND superseded_at IS NULL"
            f" AND kind IN ({_MEMORY_KIND_SQL})"
            " AND (created_at < ? OR (created_at = ? AND id < ?))"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (user_id, at, at, before_id, limit),
        )
        return [_memory(row) for row in rows]

    async def important(self, user_id: int, limit: int, min_importance: float) -> list[Memory]:
        """The user's most important trusted memories: untrusted ones never ride along unasked,
        so they must not take the LIMIT's places from the owner's own words either."""
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND superseded_at IS NULL"
            " AND kind != 'message'"  # migration 0011's partial index
            f" AND importance >= ? AND kind != 'episode' AND kind IN ({_MEMORY_KIND_SQL})"
            " AND trust = 'trusted'"
            " ORDER BY importance DESC, created_at DESC LIMIT ?",
            (user_id, min_importance, limit),
        )
        return [_memory(row) for row in rows]

    async def same_subject(self, user_id: int, subject: str, kinds: Iterable[Kind]) -> list[Memory]:
        """Memories in force whose subject matches (case and punctuation ignored)."""
        key = normalize_subject(subject)
        if not key:
            return []
        kind_list = [k.value for k in kinds]
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND subject_key = ? AND subject_key != ''"
            " AND superseded_at IS NULL AND kind != 'message'"  # migration 0011's partial index
            f" AND kind IN ({','.join('?' * len(kind_list))})",
            (user_id, key, *kind_list),
        )
        return [_memory(r) for r in rows]

    async def same_text(self, user_id: int, text: str) -> Memory | None:
        """A memory in force with this exact text (case and spacing ignored)."""
        normal = normalize_text(text)
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND superseded_at IS NULL"
            " AND kind != 'message'"  # migration 0011's partial index
            f" AND text = ? COLLATE NOCASE AND kind IN ({_MEMORY_KIND_SQL})"
            " ORDER BY id DESC LIMIT 1",
            (user_id, normal),
        )
        return _memory(rows[0]) if rows else None

    async def existing_id(self, user_id: int, text: str, created_at: datetime) -> int | None:
        """The id of the user's memory (in force or not) with exactly this text and time: an
        import finds what an earlier import of the same file already brought in."""
        value = await self._db.scalar(
            "SELECT id FROM memories WHERE user_id = ? AND text = ? AND created_at = ?",
            (user_id, normalize_text(text), iso(created_at)),
        )
        return int(value) if value is not None else None

    async def replaced_by(self, user_id: int, memory_id: int) -> list[Memory]:
        """The user's memories that this one superseded, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND superseded_by = ? ORDER BY id",
            (user_id, memory_id),
        )
        return [_memory(row) for row in rows]

    async def keyword(
        self, user_id: int, query: str, limit: int, filter: RowFilter | None = None
    ) -> list[tuple[int, float]]:
        """(id, bm25) of the user's memories in force that match the query's words, best first."""
        return await self.fulltext.search(user_id, query, limit, filter)

    async def active_ids(self, user_id: int) -> set[int]:
        rows = await self._db.fetchall(
            "SELECT id FROM memories WHERE user_id = ? AND superseded_at IS NULL", (user_id,)
        )
        return {int(r["id"]) for r in rows}

    async def texts(self, ids: Sequence[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self._db.fetchall(
                f"SELECT id, text FROM memories WHERE id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
            out.update({int(r["id"]): r["text"] for r in rows})
        return out

    async def users(self) -> list[int]:
        rows = await self._db.fetchall("SELECT DISTINCT user_id FROM memories ORDER BY user_id")
        return [int(r["user_id"]) for r in rows]

    # -- the vector journal (which vectors Chroma holds; see migration 0006) ------------------

    async def unindexed_ids(self, user_id: int) -> list[int]:
        """Memories in force whose vector Chroma is not known to hold."""
        rows = await self._db.fetchall(
            "SELECT id FROM memories WHERE user_id = ? AND indexed = 0 AND superseded_at IS NULL"
            " ORDER BY id",
            (user_id,),
        )
        return [int(r["id"]) for r in rows]

    async def indexed_count(self, user_id: int) -> int:
        """Counted in memories_by_kind, whose condition is this one: SQLite otherwise reads
        every row of the user (250 ms at 100,000 memories, at each start's reconcile)."""
        return int(
            await self._db.scalar(
                "SELECT COUNT(*) FROM memories INDEXED BY memories_by_kind"
                " WHERE user_id = ? AND indexed = 1 AND superseded_at IS NULL",
                (user_id,),
            )
        )

    async def mark_indexed(self, ids: Sequence[int], *, user_id: int) -> None:
        """These rows' vectors are in `user_id`'s collection. A row moved to another user
        meanwhile (a link while its vector was written) stays owed: its vector is in the
        wrong collection."""
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            await self._db.execute(
                "UPDATE memories SET indexed = 1 WHERE user_id = ?"
                f" AND id IN ({','.join('?' * len(chunk))})",
                (user_id, *chunk),
            )

    async def pending_removals(self) -> dict[int, list[int]]:
        """Vectors of forgotten or superseded memories that Chroma may still hold, by user."""
        rows = await self._db.fetchall(
            "SELECT user_id, memory_id FROM memory_vector_removals ORDER BY user_id, memory_id"
        )
        out: dict[int, list[int]] = {}
        for row in rows:
            out.setdefault(int(row["user_id"]), []).append(int(row["memory_id"]))
        return out

    async def clear_removals(self, ids: Sequence[int]) -> None:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            await self._db.execute(
                "DELETE FROM memory_vector_removals"
                f" WHERE memory_id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )

    async def count(self, user_id: int | None = None, *, active_only: bool = True) -> int:
        """Memories (transcript rows left out)."""
        where = f" WHERE kind IN ({_MEMORY_KIND_SQL})"
        where += " AND superseded_at IS NULL" if active_only else ""
        if user_id is None:
            return int(await self._db.scalar(f"SELECT COUNT(*) FROM memories{where}"))
        where = (where + " AND" if where else " WHERE") + " user_id = ?"
        return int(await self._db.scalar(f"SELECT COUNT(*) FROM memories{where}", (user_id,)))

    async def all(self, user_id: int | None = None) -> list[Memory]:
        """Every memory (superseded ones too), oldest first: for export (the transcript is
        exported with the messages, not here)."""
        kinds = f"kind IN ({_MEMORY_KIND_SQL})"
        if user_id is None:
            rows = await self._db.fetchall(f"SELECT * FROM memories WHERE {kinds} ORDER BY id")
        else:
            rows = await self._db.fetchall(
                f"SELECT * FROM memories WHERE user_id = ? AND {kinds} ORDER BY id", (user_id,)
            )
        return [_memory(row) for row in rows]
