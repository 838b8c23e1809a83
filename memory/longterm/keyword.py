"""Keyword search over the `memories` table (FTS5, BM25) and the row filters every search path
shares: a time range, kinds and chats, written once as SQL.

The FTS5 index covers a memory's text, its subject (a transcript row's speaker) and its date
words (`terms.date_words`), so "on 6 September" and "in May" match by date too.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from memory.clock import iso
from memory.db import Database
from memory.longterm.terms import query_terms
from memory.longterm.types import Kind, Scope

__all__ = ["COMMON_TERM_DOCS", "KeywordIndex", "RowFilter"]

# A query word found in more memories than this (across the store) is dropped from the keyword
# query when rarer words remain: its weight in BM25 is small, but ranking every memory it
# matches is what makes a keyword look-up slow at 100k memories.
COMMON_TERM_DOCS = 1000
# How long a term's document count is trusted (it only grows slowly with new memories).
TERM_COUNT_SECONDS = 300.0
TERM_COUNT_CACHE = 4096
# BM25 weight of each FTS5 column: text, subject (or speaker), date words.
COLUMN_WEIGHTS = (1.0, 0.5, 0.6)


@dataclass(frozen=True)
class RowFilter:
    """What a search keeps besides the user's memories in force: created in [since, until),
    of these kinds, from these chats (rows tied to no chat always pass the chat filter)."""

    since: datetime | None = None
    until: datetime | None = None
    kinds: tuple[Kind, ...] | None = None
    chats: frozenset[int] | None = None

    @classmethod
    def of(
        cls,
        since: datetime | None,
        until: datetime | None,
        kinds: Sequence[Kind] | None,
        scope: Scope | None,
    ) -> RowFilter:
        for name, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise ValueError(f"`{name}` must be an aware datetime (it has no timezone)")
        return cls(
            since,
            until,
            tuple(kinds) if kinds is not None else None,
            scope.chats if scope is not None and scope.chats is not None else None,
        )

    def timeless(self) -> RowFilter:
        """The same filter without its time range."""
        return RowFilter(None, None, self.kinds, self.chats)

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.since, self.until, self.kinds, self.chats))

    def sql(self, table: str = "memories") -> tuple[str, list[Any]]:
        """` AND …` clauses over `table` and their parameters ('' when nothing is filtered)."""
        where: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            where.append(f"{table}.created_at >= ?")
            params.append(iso(self.since))
        if self.until is not None:
            where.append(f"{table}.created_at < ?")
            params.append(iso(self.until))
        if self.kinds is not None:
            where.append(f"{table}.kind IN ({','.join('?' * len(self.kinds)) or 'NULL'})")
            params += [k.value for k in self.kinds]
        if self.chats is not None:
            marks = ",".join("?" * len(self.chats)) or "NULL"
            where.append(f"({table}.chat_id IS NULL OR {table}.chat_id IN ({marks}))")
            params += sorted(self.chats)
        return "".join(f" AND {w}" for w in where), params

    def keeps(self, kind: Kind, chat_id: int | None, created_at: datetime) -> bool:
        """The same test in Python, for rows fetched by id (vector hits, neighbours)."""
        if self.since is not None and created_at < self.since:
            return False
        if self.until is not None and created_at >= self.until:
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.chats is None or chat_id is None or chat_id in self.chats


class KeywordIndex:
    """BM25 look-ups in `memories_fts`, always within one user's memories in force."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()  # term -> (when, n)
        # terms being counted now: a turn's two searches (memories, messages) run at once with
        # the same words, and the second waits for the first's probe instead of probing again
        self._probing: dict[str, asyncio.Future[int]] = {}

    async def search(
        self, user_id: int, query: str, limit: int, filter: RowFilter | None = None
    ) -> list[tuple[int, float]]:
        """(id, bm25) best first (bm25 is negative in SQLite: lower is better)."""
        terms = query_terms(query)
        if not terms:
            return []
        terms, common = await self._without_common(terms)
        match = " OR ".join(f'"{t}"' for t in terms)
        extra, params = (filter or RowFilter()).sql()
        # Only common words left: rank the newest matches rather than every match (FTS5 walks
        # its index backwards by rowid and stops at the limit).
        order = "memories_fts.rowid DESC" if common else "score"
        weights = ", ".join(str(w) for w in COLUMN_WEIGHTS)
        rows = await self._db.fetchall(
            f"SELECT memories.id AS id, bm25(memories_fts, {weights}) AS score"
            " FROM memories_fts JOIN memories ON memories.id = memories_fts.rowid"
            f" WHERE memories_fts MATCH ? AND memories.user_id = ?{extra}"
            f" ORDER BY {order} LIMIT ?",
            (match, user_id, *params, limit),
        )
        found = [(int(r["id"]), float(r["score"])) for r in rows]
        return sorted(found, key=lambda row: row[1]) if common else found

    async def _without_common(self, terms: list[str]) -> tuple[list[str], bool]:
        """The terms matching at most COMMON_TERM_DOCS memories; when every term is that
        common, the rarest one and True."""
        counts = await self._term_counts(terms)
        kept = [t for i, t in enumerate(terms) if counts.get(i, 0) <= COMMON_TERM_DOCS]
        if kept:
            return kept, False
        return [terms[min(range(len(terms)), key=lambda i: counts.get(i, 0))]], True

    async def _term_counts(self, terms: list[str]) -> dict[int, int]:
        """How many memories each term matches (capped), kept a few minutes: probing costs
        most of a keyword search's time at 100k memories, and the counts change slowly. A term
        another search is probing now is waited for, not probed twice."""
        now = time.monotonic()
        counts: dict[int, int] = {}
        missing: list[int] = []
        waiting: dict[int, asyncio.Future[int]] = {}
        for i, term in enumerate(terms):
            cached = self._counts.get(term)
            if cached is not None and now - cached[0] < TERM_COUNT_SECONDS:
                counts[i] = cached[1]
            elif (running := self._probing.get(term)) is not None:
                waiting[i] = running
            else:
                missing.append(i)
        if missing:
            await self._probe(terms, missing, counts, now)
        failed: list[int] = []
        for i, running in waiting.items():
            try:
                counts[i] = await asyncio.shield(running)
            except asyncio.CancelledError:
                if not running.cancelled():
                    raise  # this search itself is cancelled
                failed.append(i)  # the other search was: count it here
            except Exception:
                failed.append(i)
        if failed:
            await self._probe(terms, failed, counts, now)
        return counts

    async def _probe(
        self, terms: list[str], missing: list[int], counts: dict[int, int], now: float
    ) -> None:
        loop = asyncio.get_running_loop()
        mine = {terms[i]: loop.create_future() for i in missing if terms[i] not in self._probing}
        self._probing.update(mine)
        try:
            probe = " UNION ALL ".join(
                f"SELECT {i} AS i, (SELECT COUNT(*) FROM (SELECT 1 FROM memories_fts"
                f" WHERE memories_fts MATCH ? LIMIT {COMMON_TERM_DOCS + 1})) AS n"
                for i in missing
            )
            rows = await self._db.fetchall(probe, tuple(f'"{terms[i]}"' for i in missing))
        except BaseException:
            for term, future in mine.items():  # whoever waits probes again itself
                self._probing.pop(term, None)
                future.cancel()
            raise
        for row in rows:
            term, n = terms[int(row["i"])], int(row["n"])
            counts[int(row["i"])] = n
            self._counts[term] = (now, n)
            self._counts.move_to_end(term)
            if (future := mine.pop(term, None)) is not None:
                self._probing.pop(term, None)
                future.set_result(n)
        for term, future in mine.items():  # not answered (cannot happen): waiters probe
            self._probing.pop(term, None)
            future.cancel()
        while len(self._counts) > TERM_COUNT_CACHE:
            self._counts.popitem(last=False)
