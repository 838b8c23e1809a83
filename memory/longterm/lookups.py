"""Look-ups the public memory API needs besides the records: creating a user, the rows that
pass a search's filters, a transcript row's neighbouring turns, and the rows whose vectors are
still to be written (the vectors of a bulk save are written behind)."""

from __future__ import annotations

import sqlite3
from bisect import bisect_left
from collections.abc import Sequence
from datetime import datetime

from memory.clock import iso
from memory.db import Database
from memory.longterm.keyword import RowFilter
from memory.longterm.records import memory_of_row
from memory.longterm.types import MAX_TEXT_CHARS, Kind, Memory
from memory.longterm.wording import carries

__all__ = ["RowLookups", "filtered_ids_query"]

LONG_ROW = 4000
"""A transcript row this long is a message cut to MAX_TEXT_CHARS (migration 0032's index)."""
assert LONG_ROW == MAX_TEXT_CHARS

# a `messages:a-b` span's ends; the end as migration 0028's index writes it, word for word
_SPAN_END = "CAST(substr(source_ref, instr(source_ref, '-') + 1) AS INTEGER)"
_SPAN_START = "CAST(substr(source_ref, 10, instr(source_ref, '-') - 10) AS INTEGER)"


def filtered_ids_query(user_id: int, filter: RowFilter, cap: int) -> tuple[str, tuple[object, ...]]:
    """`filtered_ids`' statement: its condition names `memories_by_kind`'s (migration 0012), so
    a search by kind seeks to that kind instead of walking every memory of the user."""
    extra, params = filter.sql()
    return (
        "SELECT id FROM memories WHERE user_id = ? AND superseded_at IS NULL"
        f" AND indexed = 1{extra} LIMIT ?",
        (user_id, *params, cap + 1),
    )


class RowLookups:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_user(self, display_name: str, now: datetime, timezone: str | None) -> int:
        """A new user (no identity on any channel: `people.admit` links one later)."""
        return await self._db.execute(
            "INSERT INTO users (display_name, timezone, created_at) VALUES (?, ?, ?)",
            (display_name.strip(), timezone, iso(now)),
        )

    async def create_chat(self, channel: str, title: str, kind: str, now: datetime) -> int:
        """A chat row of its own (its platform id is made unique here)."""
        count = int(await self._db.scalar("SELECT COUNT(*) FROM chats") or 0)
        return await self._db.execute(
            "INSERT INTO chats (channel, platform_chat_id, kind, title, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (channel, f"{title}#{count + 1}", kind, title, iso(now)),
        )

    async def filtered_ids(self, user_id: int, filter: RowFilter, cap: int) -> list[int] | None:
        """The ids of the user's memories in force (with vectors) that pass the filter, or None
        when more than `cap` do (the vector search then filters what Chroma returns)."""
        rows = await self._db.fetchall(*filtered_ids_query(user_id, filter, cap))
        return None if len(rows) > cap else [int(r["id"]) for r in rows]

    async def neighbours(
        self, user_id: int, hits: Sequence[tuple[int, int]], reach: int
    ) -> tuple[dict[int, list[tuple[int, int]]], dict[int, Memory]]:
        """For each (memory id, chat id) of a transcript row: up to `reach` turns before and
        after it in the same chat, as (neighbour id, distance); and those turns. One query."""
        if not hits or reach <= 0:
            return {}, {}
        parts: list[str] = []
        params: list[object] = []
        kind = Kind.MESSAGE.value
        for memory_id, chat_id in hits:
            for op, order in (("<", "DESC"), (">", "ASC")):
                parts.append(
                    f"SELECT * FROM (SELECT ? AS hit, * FROM memories WHERE chat_id = ?"
                    f" AND kind = '{kind}' AND id {op} ? AND user_id = ?"
                    f" AND superseded_at IS NULL ORDER BY id {order} LIMIT {int(reach)})"
                )
                params += [memory_id, chat_id, memory_id, user_id]
        rows = await self._db.fetchall(" UNION ALL ".join(parts), tuple(params))
        found: dict[int, Memory] = {}
        out: dict[int, list[int]] = {}
        for row in rows:
            out.setdefault(int(row["hit"]), []).append(int(row["id"]))
            if int(row["id"]) not in found:
                found[int(row["id"])] = memory_of_row(row)
        result: dict[int, list[tuple[int, int]]] = {}
        for hit, ids in out.items():
            before = sorted((i for i in ids if i < hit), reverse=True)
            after = sorted(i for i in ids if i > hit)
            result[hit] = [(i, d) for d, i in enumerate(before, 1)] + [
                (i, d) for d, i in enumerate(after, 1)
            ]
        return result, found

    async def made_in_turn(self, user_id: int, turn_id: int, kind: Kind) -> list[Memory]:
        """A user's memories of one kind that one turn made (a compaction's episode)."""
        rows = await self._db.fetchall(
            "SELECT * FROM memories WHERE user_id = ? AND turn_id = ? AND kind = ? ORDER BY id",
            (user_id, turn_id, kind.value),
        )
        return [memory_of_row(row) for row in rows]

    async def long_messages_saying(
        self, user_id: int, words: str, chat_id: int | None, limit: int
    ) -> list[tuple[Memory, str]]:
        """A user's transcript rows of messages longer than a row keeps (MAX_TEXT_CHARS, which
        the keyword index reads) whose whole text says `words` (ASCII letters in any case, as
        SQLite's `lower` folds; others as typed), newest first, each with that whole text: a
        secret pasted at the end of a long log could not be found to be forgotten (review 36)."""
        rows = await self._db.fetchall(
            # the terms of migration 0032's partial index, word for word: the few long rows
            "SELECT m.*, msg.text AS whole FROM memories m JOIN messages msg"
            " ON msg.id = m.message_id WHERE m.user_id = ? AND m.kind = 'message'"
            f" AND length(m.text) >= {LONG_ROW} AND m.superseded_at IS NULL"
            " AND (? IS NULL OR m.chat_id = ?)"
            " AND instr(lower(msg.text), lower(?)) > 0 ORDER BY m.id DESC LIMIT ?",
            (user_id, chat_id, chat_id, words, limit),
        )
        return [(memory_of_row(row), str(row["whole"])) for row in rows]

    async def corrections_of(
        self, user_id: int, message_ids: list[int]
    ) -> dict[int, list[tuple[int, Memory | None]]]:
        """For each of `message_ids` of an exchange a replaced (corrected) memory of the user
        came from (the person's message that set its turn off, or what Steward said in it), or
        that says, in its words (`carries`), a replaced fact compaction drew from its span:
        (that memory's id, the memory in force now at the end of its chain of replacements,
        None when there is none: forgotten since, or the chain runs out), oldest first.

        R249: a drawn fact's turn is the compaction's, so the message that said it went
        unmarked; it is found as forgetting finds it, by its `messages:a-b` span and words."""
        if not message_ids:
            return {}
        marks = ",".join("?" * len(message_ids))
        rows = await self._db.fetchall(
            "WITH exchange(message_id, turn_id) AS ("
            f"SELECT id, turn_id FROM messages WHERE id IN ({marks}) AND turn_id IS NOT NULL"
            f" UNION SELECT message_id, id FROM turns WHERE message_id IN ({marks}))"
            " SELECT DISTINCT e.message_id, s.id AS old, s.superseded_by AS new"
            " FROM exchange AS e JOIN memories AS s"
            " ON s.turn_id = e.turn_id AND s.superseded_at IS NOT NULL"
            " WHERE s.user_id = ? AND s.kind != ? ORDER BY s.id",
            (*message_ids, *message_ids, user_id, Kind.MESSAGE.value),
        )
        pairs = {(int(r["message_id"]), int(r["old"])): r["new"] for r in rows}
        for message_id, said, old, new, fact in await self._drawn_from(user_id, message_ids):
            if carries(fact, said):
                pairs.setdefault((message_id, old), new)
        found: dict[int, list[tuple[int, Memory | None]]] = {}
        for (message_id, old), new in sorted(pairs.items(), key=lambda p: p[0][1]):
            now = await self._in_force(user_id, new)
            found.setdefault(message_id, []).append((old, now))
        return found

    async def _drawn_from(
        self, user_id: int, message_ids: list[int]
    ) -> list[tuple[int, str, int, int | None, str]]:
        """Replaced facts compaction drew from a span (`messages:a-b`, in the chat) holding one
        of `message_ids`, the person's own or Steward's: with that message's text, for
        `carries` to keep those it says. Summaries say the whole span: not those. Only spans
        ending at or after the first of `message_ids` are read, by the index of migration 0028
        (every turn asks for its history, which comes after every compacted span: none); spans
        are matched here, then only the messages inside one are read."""
        ids = sorted(set(message_ids))
        facts = await self._db.fetchall(
            "SELECT id, superseded_by, text, chat_id, kind, source_ref"
            " FROM memories INDEXED BY memories_replaced_spans"
            " WHERE user_id = ? AND superseded_at IS NOT NULL"
            " AND source_ref GLOB 'messages:[0-9]*-[0-9]*'"
            f" AND {_SPAN_END} >= ? AND {_SPAN_START} <= ?",
            (user_id, ids[0], ids[-1]),
        )
        inside: list[tuple[int, sqlite3.Row]] = []
        for fact in facts:
            if fact["kind"] in (Kind.MESSAGE.value, Kind.EPISODE.value):
                continue
            first, _, last = str(fact["source_ref"]).removeprefix("messages:").partition("-")
            at = bisect_left(ids, int(first))
            while at < len(ids) and ids[at] <= int(last):
                inside.append((ids[at], fact))
                at += 1
        if not inside:
            return []
        wanted = sorted({message_id for message_id, _ in inside})
        rows = await self._db.fetchall(
            f"SELECT id, chat_id, text FROM messages WHERE id IN ({','.join('?' * len(wanted))})"
            " AND (direction = 'out' OR user_id = ?)",
            (*wanted, user_id),
        )
        said = {int(r["id"]): r for r in rows}
        return [  # (message, its words, the replaced fact, what replaced it, the fact's words)
            (message_id, said[message_id]["text"], fact["id"], fact["superseded_by"], fact["text"])
            for message_id, fact in inside
            if message_id in said and said[message_id]["chat_id"] == fact["chat_id"]
        ]

    async def _in_force(self, user_id: int, memory_id: int | None) -> Memory | None:
        """The end of a chain of replacements from `memory_id` (a correction corrected again),
        if it is the user's and in force; a few steps at most."""
        seen: set[int] = set()
        while memory_id is not None and memory_id not in seen and len(seen) < 20:
            seen.add(memory_id)
            row = await self._db.fetchone(
                "SELECT * FROM memories WHERE id = ? AND user_id = ?", (memory_id, user_id)
            )
            if row is None:
                return None
            if row["superseded_at"] is None:
                return memory_of_row(row)
            memory_id = row["superseded_by"]
        return None

    async def delete_message_rows(self, message_id: int) -> list[tuple[int, int]]:
        """Remove every member's row of a message; (id, user id) of each removed."""
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                "SELECT id, user_id FROM memories WHERE message_id = ? AND kind = ?",
                (message_id, Kind.MESSAGE.value),
            )
            rows = [(int(r["id"]), int(r["user_id"])) for r in await cursor.fetchall()]
            await tx.execute(
                "DELETE FROM memories WHERE message_id = ? AND kind = ?",
                (message_id, Kind.MESSAGE.value),
            )
        return rows

    async def update_message_text(self, message_id: int, text: str) -> int:
        """New text for every member's row of a message (its vector is rewritten behind)."""
        return await self._db.execute(
            "UPDATE memories SET text = ?, indexed = 0 WHERE message_id = ? AND kind = ?",
            (text, message_id, Kind.MESSAGE.value),
        )

    async def replace_words(
        self, user_id: int, kind: Kind, old: str, new: str, subject: str
    ) -> int:
        """`old` as `new` in the texts of a user's memories of one kind and subject (vectors
        rewritten behind); how many changed."""
        return await self._db.execute(
            "UPDATE memories SET text = replace(text, ?, ?), indexed = 0"
            " WHERE user_id = ? AND kind = ? AND subject = ? AND instr(text, ?) > 0",
            (old, new, user_id, kind.value, subject, old),
        )

    async def unindexed(self, limit: int) -> list[tuple[int, int, str]]:
        """(id, user id, text) of memories in force whose vectors are not written yet, a user's
        together (each user's rows are one Chroma upsert, ~6 ms whatever their number). Read
        through the small partial index of exactly those rows, in its order (user, id): SQLite
        would otherwise walk the whole table (100 ms at 100,000 memories, every pass)."""
        rows = await self._db.fetchall(
            "SELECT id, user_id, text FROM memories INDEXED BY memories_unindexed"
            " WHERE indexed = 0 AND superseded_at IS NULL ORDER BY user_id, id LIMIT ?",
            (limit,),
        )
        return [(int(r["id"]), int(r["user_id"]), str(r["text"])) for r in rows]
