"""Memory records in SQLite: text, provenance, supersession, keyword search (FTS5), compactions.

This is the source of truth. Vectors live elsewhere (`vectors.py`) and are derived from it.
Every read takes a `user_id`: one user's memories never come back for another.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.labels import TRUSTED, Label

__all__ = [
    "OUTSIDE_SOURCES",
    "Compaction",
    "Kind",
    "Memory",
    "MemoryRecords",
    "NewMemory",
    "Source",
    "Trust",
    "fts_query",
    "normalize_subject",
    "normalize_text",
    "query_terms",
]


class Kind(StrEnum):
    FACT = "fact"
    PREFERENCE = "preference"
    EPISODE = "episode"
    GOAL_NOTE = "goal_note"
    BRIEFING = "briefing"
    NOTE = "note"


class Source(StrEnum):
    """Who or what a memory came from."""

    OWNER_SAID = "owner_said"
    USER_SAID = "user_said"  # a user other than the owner, about themselves
    MODEL_INFERRED = "model_inferred"
    WEB = "web"
    FEED = "feed"
    TOOL = "tool"


class Trust(StrEnum):
    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


OUTSIDE_SOURCES = frozenset({Source.WEB, Source.FEED, Source.TOOL, Source.USER_SAID})

MAX_TEXT_CHARS = 4000


@dataclass(frozen=True)
class Memory:
    id: int
    user_id: int
    chat_id: int | None
    kind: Kind
    text: str
    subject: str
    source: Source
    source_ref: str
    trust: Trust
    importance: float
    turn_id: int | None
    created_at: datetime
    superseded_by: int | None = None
    superseded_at: datetime | None = None
    label: Label = TRUSTED

    @property
    def active(self) -> bool:
        return self.superseded_at is None

    @property
    def untrusted(self) -> bool:
        return self.trust is Trust.UNTRUSTED

    def as_record(self) -> dict[str, Any]:
        """The JSON-ready form used by export."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "kind": self.kind.value,
            "text": self.text,
            "subject": self.subject,
            "source": self.source.value,
            "source_ref": self.source_ref,
            "trust": self.trust.value,
            "importance": self.importance,
            "turn_id": self.turn_id,
            "created_at": iso(self.created_at),
            "superseded_by": self.superseded_by,
            "superseded_at": iso(self.superseded_at) if self.superseded_at else None,
            "label": list(self.label.sources),
        }


@dataclass(frozen=True)
class NewMemory:
    """A memory to save. `trust` defaults from the source: outside sources are untrusted.
    `replaces` names memories this one supersedes (the model decides; see the store)."""

    user_id: int
    text: str
    kind: Kind = Kind.FACT
    subject: str = ""
    source: Source = Source.OWNER_SAID
    trust: Trust | None = None
    importance: float = 0.5
    chat_id: int | None = None
    turn_id: int | None = None
    source_ref: str = ""
    replaces: tuple[int, ...] = field(default_factory=tuple)
    created_at: datetime | None = None
    label: Label = TRUSTED
    """The sources of outside content this memory was made from; a tainted label makes the
    memory untrusted whatever `trust` says."""

    @property
    def resolved_trust(self) -> Trust:
        if self.label.tainted:
            return Trust.UNTRUSTED
        if self.trust is not None:
            return self.trust
        return Trust.UNTRUSTED if self.source in OUTSIDE_SOURCES else Trust.TRUSTED

    @property
    def resolved_label(self) -> Label:
        """The stored label: an untrusted memory always names at least its source kind."""
        if self.resolved_trust is Trust.TRUSTED:
            return TRUSTED
        return self.label if self.label.tainted else Label.untrusted(self.source.value)


@dataclass(frozen=True)
class Compaction:
    id: int
    chat_id: int
    first_message_id: int
    last_message_id: int
    episode_id: int | None
    facts_saved: int
    created_at: datetime


def normalize_text(text: str) -> str:
    return " ".join(text.split())


def normalize_subject(subject: str) -> str:
    """Subjects compare case- and punctuation-blind: "Home city" == "home-city" == "home city"."""
    return " ".join(re.findall(r"\w+", subject.casefold()))


def _memory(row: sqlite3.Row) -> Memory:
    return Memory(
        id=row["id"],
        user_id=row["user_id"],
        chat_id=row["chat_id"],
        kind=Kind(row["kind"]),
        text=row["text"],
        subject=row["subject"],
        source=Source(row["source"]),
        source_ref=row["source_ref"],
        trust=Trust(row["trust"]),
        importance=float(row["importance"]),
        turn_id=row["turn_id"],
        created_at=parse_iso(row["created_at"]),
        superseded_by=row["superseded_by"],
        superseded_at=parse_iso(row["superseded_at"]) if row["superseded_at"] else None,
        label=Label.from_json(row["label"]),
    )


# Words that carry no meaning for a keyword look-up: without them, a question such as "what is my
# sister's name?" searches for "sister" and "name" only, and common words do not flood the OR.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each few
    for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just let me more most my myself no nor not now of off on once
    only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t d ll m re ve don doesn didn isn aren wasn weren won wouldn
    shouldn couldn hasn haven remember recall know tell said say says told anything
    something thing things please also user owner steward get got like
    """.split()  # noqa: SIM905
)
# "like" is a stop word in questions ("what does she like") but a meaningful one in memories:
# the index keeps it; only the query drops it (the vector side covers preferences).

_TERM = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str, *, max_terms: int = 12) -> list[str]:
    """The meaningful words of free text, lower-cased, in order, without repeats."""
    seen: dict[str, None] = {}
    for term in _TERM.findall(text.casefold()):
        if term in STOPWORDS or (len(term) < 2 and not term.isdigit()):
            continue
        seen.setdefault(term, None)
        if len(seen) >= max_terms:
            break
    return list(seen)


def fts_query(text: str, *, max_terms: int = 12) -> str | None:
    """An FTS5 MATCH expression for free text: its meaningful words, each quoted, OR-ed (the
    porter tokenizer stems them, so "birthdays" finds "birthday"). None when nothing meaningful
    is left."""
    terms = query_terms(text, max_terms=max_terms)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


# A query word found in more memories than this (across the store) is dropped from the keyword
# query when rarer words remain: its weight in BM25 is small, but ranking every memory it
# matches is what makes a keyword look-up slow at 100k memories.
COMMON_TERM_DOCS = 2000


def _restored_label(record: dict[str, Any]) -> str:
    """An imported memory keeps its label; an untrusted one from an older export gets its
    source kind as the label."""
    sources = [str(s) for s in record.get("label") or []]
    if Trust(record["trust"]) is Trust.UNTRUSTED:
        return Label.untrusted(*sources, str(record["source"])).to_json()
    return TRUSTED.to_json()


class MemoryRecords:
    """The `memories` table and its FTS5 index."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- writing ------------------------------------------------------------------------------

    async def insert(self, new: NewMemory, *, supersede: Iterable[int] = ()) -> Memory:
        """Insert a memory and retire `supersede` (ids of this user's memories in force) in one
        transaction."""
        text = normalize_text(new.text)
        if not text:
            raise ValueError("a memory needs some text")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"a memory is at most {MAX_TEXT_CHARS} characters")
        if not 0.0 <= new.importance <= 1.0:
            raise ValueError("importance is between 0 and 1")
        created = iso(new.created_at or self._clock.now())
        now = iso(self._clock.now())
        retire = sorted(set(supersede))
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT INTO memories (user_id, chat_id, kind, text, subject, subject_key, source,"
                " source_ref, trust, importance, turn_id, created_at, label)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
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
                    created,
                    new.resolved_label.to_json(),
                ),
            )
            memory_id = int(cursor.lastrowid or 0)
            for old in retire:
                await tx.execute(
                    "UPDATE memories SET superseded_by = ?, superseded_at = ?"
                    " WHERE id = ? AND user_id = ? AND superseded_at IS NULL",
                    (memory_id, now, old, new.user_id),
                )
        memory = await self.get(new.user_id, memory_id)
        assert memory is not None
        return memory

    async def insert_many(self, rows: Sequence[NewMemory]) -> list[int]:
        """Bulk insert without supersession checks (import, benchmarks); returns the new ids."""
        ids: list[int] = []
        async with self._db.transaction() as tx:
            for new in rows:
                cursor = await tx.execute(
                    "INSERT INTO memories (user_id, chat_id, kind, text, subject, subject_key,"
                    " source, source_ref, trust, importance, turn_id, created_at, label)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        new.user_id,
                        new.chat_id,
                        new.kind.value,
                        normalize_text(new.text),
                        new.subject.strip(),
                        normalize_subject(new.subject),
                        new.source.value,
                        new.source_ref,
                        new.resolved_trust.value,
                        float(new.importance),
                        new.turn_id,
                        iso(new.created_at or self._clock.now()),
                        new.resolved_label.to_json(),
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    async def restore(self, record: dict[str, Any], *, user_id: int, chat_id: int | None) -> int:
        """Insert an exported record as it was (import); supersession links are set afterwards
        with `link_superseded`."""
        return await self._db.execute(
            "INSERT INTO memories (user_id, chat_id, kind, text, subject, subject_key, source,"
            " source_ref, trust, importance, turn_id, created_at, superseded_at, label)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
            (
                user_id,
                chat_id,
                Kind(record["kind"]).value,
                normalize_text(str(record["text"])),
                str(record.get("subject") or ""),
                normalize_subject(str(record.get("subject") or "")),
                Source(record["source"]).value,
                str(record.get("source_ref") or ""),
                Trust(record["trust"]).value,
                float(record.get("importance", 0.5)),
                iso(parse_iso(str(record["created_at"]))),
                iso(parse_iso(str(record["superseded_at"])))
                if record.get("superseded_at")
                else None,
                _restored_label(record),
            ),
        )

    async def link_superseded(self, memory_id: int, superseded_by: int | None) -> None:
        await self._db.execute(
            "UPDATE memories SET superseded_by = ? WHERE id = ?", (superseded_by, memory_id)
        )

    async def delete(self, user_id: int, memory_id: int) -> Memory | None:
        """Remove a memory for good; returns what was removed."""
        memory = await self.get(user_id, memory_id)
        if memory is None:
            return None
        await self._db.execute(
            "DELETE FROM memories WHERE id = ? AND user_id = ?", (memory_id, user_id)
        )
        return memory

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
        """The user's memories in force, newest first."""
        params: list[Any] = [user_id]
        where = "user_id = ? AND superseded_at IS NULL"
        if kinds is not None:
            kind_list = [k.value for k in kinds]
            where += f" AND kind IN ({','.join('?' * len(kind_list))})"
            params += kind_list
        rows = await self._db.fetchall(
            f"SELECT * FROM memories WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_memory(row) for row in rows]

    async def important(self, user_id: int, limit: int, min_importance: float) -> list[Memory]:
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND superseded_at IS NULL"
            " AND importance >= ? AND kind != 'episode'"
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
            " AND superseded_at IS NULL"
            f" AND kind IN ({','.join('?' * len(kind_list))})",
            (user_id, key, *kind_list),
        )
        return [_memory(r) for r in rows]

    async def same_text(self, user_id: int, text: str) -> Memory | None:
        """A memory in force with this exact text (case and spacing ignored)."""
        normal = normalize_text(text)
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND superseded_at IS NULL"
            " AND text = ? COLLATE NOCASE ORDER BY id DESC LIMIT 1",
            (user_id, normal),
        )
        return _memory(rows[0]) if rows else None

    async def keyword(self, user_id: int, query: str, limit: int) -> list[tuple[int, float]]:
        """(id, bm25) of the user's memories in force that match the query's words, best first."""
        terms = query_terms(query)
        if not terms:
            return []
        terms, common = await self._without_common(terms)
        match = " OR ".join(f'"{t}"' for t in terms)
        # Only common words left: rank the newest matches rather than every match (FTS5 walks
        # its index backwards by rowid and stops at the limit).
        order = "memories_fts.rowid DESC" if common else "score"
        rows = await self._db.fetchall(
            "SELECT memories.id AS id, bm25(memories_fts, 1.0, 0.5) AS score"
            " FROM memories_fts JOIN memories ON memories.id = memories_fts.rowid"
            f" WHERE memories_fts MATCH ? AND memories.user_id = ? ORDER BY {order} LIMIT ?",
            (match, user_id, limit),
        )
        found = [(int(r["id"]), float(r["score"])) for r in rows]
        return sorted(found, key=lambda row: row[1]) if common else found

    async def _without_common(self, terms: list[str]) -> tuple[list[str], bool]:
        """The terms matching at most COMMON_TERM_DOCS memories; when every term is that
        common, the rarest one and True."""
        probe = " UNION ALL ".join(
            f"SELECT {i} AS i, (SELECT COUNT(*) FROM (SELECT 1 FROM memories_fts"
            f" WHERE memories_fts MATCH ? LIMIT {COMMON_TERM_DOCS + 1})) AS n"
            for i in range(len(terms))
        )
        rows = await self._db.fetchall(probe, tuple(f'"{t}"' for t in terms))
        counts = {int(r["i"]): int(r["n"]) for r in rows}
        kept = [t for i, t in enumerate(terms) if counts.get(i, 0) <= COMMON_TERM_DOCS]
        if kept:
            return kept, False
        return [terms[min(range(len(terms)), key=lambda i: counts.get(i, 0))]], True

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
        return int(
            await self._db.scalar(
                "SELECT COUNT(*) FROM memories"
                " WHERE user_id = ? AND indexed = 1 AND superseded_at IS NULL",
                (user_id,),
            )
        )

    async def mark_indexed(self, ids: Sequence[int]) -> None:
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            await self._db.execute(
                f"UPDATE memories SET indexed = 1 WHERE id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
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
        where = " WHERE superseded_at IS NULL" if active_only else ""
        if user_id is None:
            return int(await self._db.scalar(f"SELECT COUNT(*) FROM memories{where}"))
        where = (where + " AND" if where else " WHERE") + " user_id = ?"
        return int(await self._db.scalar(f"SELECT COUNT(*) FROM memories{where}", (user_id,)))

    async def all(self, user_id: int | None = None) -> list[Memory]:
        """Every memory (superseded ones too), oldest first: for export."""
        if user_id is None:
            rows = await self._db.fetchall("SELECT * FROM memories ORDER BY id")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM memories WHERE user_id = ? ORDER BY id", (user_id,)
            )
        return [_memory(row) for row in rows]

    # -- compactions --------------------------------------------------------------------------

    async def record_compaction(
        self,
        *,
        chat_id: int,
        first_message_id: int,
        last_message_id: int,
        episode_id: int | None,
        facts_saved: int,
        turn_id: int | None,
    ) -> int:
        return await self._db.execute(
            "INSERT INTO memory_compactions (chat_id, first_message_id, last_message_id,"
            " episode_id, facts_saved, turn_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                first_message_id,
                last_message_id,
                episode_id,
                facts_saved,
                turn_id,
                iso(self._clock.now()),
            ),
        )

    async def compacted_through(self, chat_id: int) -> int:
        """The id of the last message of this chat already summarised into an episode (0: none)."""
        value = await self._db.scalar(
            "SELECT MAX(last_message_id) FROM memory_compactions WHERE chat_id = ?", (chat_id,)
        )
        return int(value or 0)

    async def latest_compaction(self, chat_id: int) -> Compaction | None:
        row = await self._db.fetchone(
            "SELECT * FROM memory_compactions WHERE chat_id = ? ORDER BY last_message_id DESC,"
            " id DESC LIMIT 1",
            (chat_id,),
        )
        if row is None:
            return None
        return Compaction(
            id=row["id"],
            chat_id=row["chat_id"],
            first_message_id=row["first_message_id"],
            last_message_id=row["last_message_id"],
            episode_id=row["episode_id"],
            facts_saved=row["facts_saved"],
            created_at=parse_iso(row["created_at"]),
        )
