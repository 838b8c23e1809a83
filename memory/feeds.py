"""Briefing feeds, the items seen in them, the ledger of items already briefed, and the
owner's briefing preferences (topics, where the briefing goes).

The ledger knows an item by its feed's address and its key: one feed serving another's guid
(R255) marks nothing briefed in the other."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.visible import visible

if TYPE_CHECKING:
    import aiosqlite

__all__ = [
    "FEED_ITEM_KEEP",
    "TOPICS_MAX",
    "UNDATED_KEEP",
    "BriefingPrefs",
    "Feed",
    "FeedItem",
    "FeedStore",
    "NewItem",
]

FEED_ITEM_KEEP = timedelta(days=30)
"""An item its feed has not served for this long is forgotten (a briefing takes a week's)."""
UNDATED_KEEP = timedelta(days=180)
"""One with no date of its own is dated by when it was first seen: forgotten, and served again,
it would be news again (R132), so it is kept longer."""
TOPICS_MAX = 500
"""Characters of briefing topics: they ride in every briefing's prompt (R121: 10,017 were
taken, from chat and from the console alike, R125)."""


@dataclass(frozen=True)
class Feed:
    id: int
    user_id: int
    url: str
    title: str
    etag: str | None
    last_modified: str | None
    last_fetched_at: datetime | None
    last_status: str | None
    last_error: str | None


@dataclass(frozen=True)
class NewItem:
    """An item as a feed delivered it."""

    key: str
    title: str
    link: str = ""
    summary: str = ""
    published_at: datetime | None = None


@dataclass(frozen=True)
class FeedItem:
    id: int
    feed_id: int
    feed_url: str
    key: str
    title: str
    link: str
    summary: str
    published_at: datetime | None
    first_seen_at: datetime


@dataclass(frozen=True)
class BriefingPrefs:
    topics: str = ""
    destination: dict[str, Any] | None = None


def _feed(row: sqlite3.Row) -> Feed:
    return Feed(
        id=row["id"],
        user_id=row["user_id"],
        url=row["url"],
        title=row["title"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        last_fetched_at=parse_iso(row["last_fetched_at"]) if row["last_fetched_at"] else None,
        last_status=row["last_status"],
        last_error=row["last_error"],
    )


class FeedStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    # -- feeds -------------------------------------------------------------------------------

    async def add(self, user_id: int, url: str) -> tuple[Feed, bool]:
        """The feed for this URL, added if new; the flag says whether it was added now."""
        async with self._db.transaction() as tx:
            cursor = await tx.execute(
                "INSERT INTO feeds (user_id, url, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, url) DO NOTHING",
                (user_id, url, iso(self._clock.now())),
            )
            added = cursor.rowcount
        row = await self._db.fetchone(
            "SELECT * FROM feeds WHERE user_id = ? AND url = ?", (user_id, url)
        )
        assert row is not None
        return _feed(row), bool(added)

    async def list(self, user_id: int) -> list[Feed]:
        rows = await self._db.fetchall(
            "SELECT * FROM feeds WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [_feed(row) for row in rows]

    async def remove(self, user_id: int, feed_id: int) -> Feed | None:
        row = await self._db.fetchone(
            "SELECT * FROM feeds WHERE id = ? AND user_id = ?", (feed_id, user_id)
        )
        if row is None:
            return None
        await self._db.execute("DELETE FROM feeds WHERE id = ?", (feed_id,))
        return _feed(row)

    async def record_fetch(
        self,
        feed_id: int,
        *,
        status: str,
        error: str | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        title: str | None = None,
    ) -> None:
        """What the last fetch gave; validators are kept unless a new response replaced them."""
        await self._db.execute(
            "UPDATE feeds SET last_status = ?, last_error = ?, last_fetched_at = ?,"
            " etag = COALESCE(?, etag), last_modified = COALESCE(?, last_modified),"
            " title = COALESCE(?, title) WHERE id = ?",
            (status, error, iso(self._clock.now()), etag, last_modified, title, feed_id),
        )

    # -- items -------------------------------------------------------------------------------

    async def add_items(self, feed_id: int, items: Iterable[NewItem]) -> int:
        """Store items not seen before in this feed, note that the others are still served,
        and forget the feed's items not served for FEED_ITEM_KEEP; returns how many were new.
        An item already stored under another key is the same item (see `_twins`)."""
        items = list(items)
        twins = _twins(items)
        now = iso(self._clock.now())
        added = 0
        async with self._db.transaction() as tx:
            for item in items:
                stored = await _stored_as(tx, feed_id, item, twins)
                if stored is not None:
                    await tx.execute(
                        "UPDATE feed_items SET last_seen_at = ? WHERE id = ?", (now, stored)
                    )
                    continue
                cursor = await tx.execute(
                    "INSERT INTO feed_items (feed_id, item_key, title, link, summary,"
                    " published_at, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (feed_id, item_key) DO NOTHING",
                    (
                        feed_id,
                        item.key,
                        item.title,
                        item.link,
                        item.summary,
                        _when(item),
                        now,
                        now,
                    ),
                )
                added += cursor.rowcount
            now_at = self._clock.now()
            await tx.execute(
                "DELETE FROM feed_items WHERE feed_id = ? AND last_seen_at < CASE WHEN"
                " published_at IS NULL THEN ? ELSE ? END",
                (feed_id, iso(now_at - UNDATED_KEEP), iso(now_at - FEED_ITEM_KEEP)),
            )
        return added

    async def unbriefed(
        self, user_id: int, *, since: datetime, limit: int = 500, per_feed: int = 100
    ) -> list[FeedItem]:
        """Items of the user's feeds never briefed to them, published (or first seen) since:
        the newest `per_feed` of each feed, then the newest `limit` of those. An item is dated
        no later than it was first seen: a feed of 500 items dated 2100, new ones each fetch,
        kept every other feed's items out of every briefing (R126)."""
        rows = await self._db.fetchall(
            "SELECT * FROM (SELECT feed_items.*, feeds.url AS feed_url,"
            " MIN(COALESCE(feed_items.published_at, feed_items.first_seen_at),"
            " feed_items.first_seen_at) AS dated,"
            " ROW_NUMBER() OVER (PARTITION BY feed_items.feed_id ORDER BY"
            " MIN(COALESCE(feed_items.published_at, feed_items.first_seen_at),"
            " feed_items.first_seen_at) DESC) AS place"
            " FROM feed_items JOIN feeds ON feeds.id = feed_items.feed_id"
            " WHERE feeds.user_id = ? AND COALESCE(feed_items.published_at,"
            " feed_items.first_seen_at) >= ?"
            " AND NOT EXISTS (SELECT 1 FROM briefed_feed_items b WHERE b.user_id = feeds.user_id"
            " AND b.feed_url = feeds.url AND b.item_key = feed_items.item_key)"
            " AND NOT EXISTS (SELECT 1 FROM briefed_items b WHERE b.user_id = feeds.user_id"
            " AND b.item_key = feed_items.item_key))"
            " WHERE place <= ? ORDER BY dated DESC LIMIT ?",
            (user_id, iso(since), per_feed, limit),
        )
        return [
            FeedItem(
                id=r["id"],
                feed_id=r["feed_id"],
                feed_url=r["feed_url"],
                key=r["item_key"],
                title=r["title"],
                link=r["link"],
                summary=r["summary"],
                published_at=parse_iso(r["published_at"]) if r["published_at"] else None,
                first_seen_at=parse_iso(r["first_seen_at"]),
            )
            for r in rows
        ]

    async def mark_briefed(self, user_id: int, items: Iterable[tuple[str, str]]) -> None:
        """Record items as briefed to the user, each as (its feed's address, its key): briefed
        in that feed alone (by its address, so still when the feed is removed and added again).
        An address of "" (a briefing recorded before R255, settled after) marks the key briefed
        in every feed of the user, as the ledger did then."""
        now = iso(self._clock.now())
        async with self._db.transaction() as tx:
            for feed_url, key in items:
                if feed_url:
                    await tx.execute(
                        "INSERT INTO briefed_feed_items (user_id, feed_url, item_key, briefed_at)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (user_id, feed_url, key, now),
                    )
                else:
                    await tx.execute(
                        "INSERT INTO briefed_items (user_id, item_key, briefed_at)"
                        " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        (user_id, key, now),
                    )

    async def briefed_count(self, user_id: int) -> int:
        return int(
            await self._db.scalar(
                "SELECT (SELECT COUNT(*) FROM briefed_feed_items WHERE user_id = ?)"
                " + (SELECT COUNT(*) FROM briefed_items WHERE user_id = ?)",
                (user_id, user_id),
            )
        )

    # -- preferences -------------------------------------------------------------------------

    async def prefs(self, user_id: int) -> BriefingPrefs:
        row = await self._db.fetchone(
            "SELECT topics, destination FROM briefing_prefs WHERE user_id = ?", (user_id,)
        )
        if row is None:
            return BriefingPrefs()
        destination = json.loads(row["destination"]) if row["destination"] else None
        return BriefingPrefs(row["topics"], destination)

    async def set_topics(self, user_id: int, topics: str) -> None:
        """ValueError past TOPICS_MAX characters, or of nothing to see, in words for the owner
        (R186: `/briefing topics \\0` was saved, and answered "Briefing topics: ")."""
        topics = topics if topics.strip() else ""  # blank: none
        if topics and not visible(topics):
            raise ValueError("Those topics have nothing to see in them: name some words.")
        if len(topics) > TOPICS_MAX:
            raise ValueError(
                f"Topics are at most {TOPICS_MAX} characters (these are {len(topics):,})."
            )
        await self._db.execute(
            "INSERT INTO briefing_prefs (user_id, topics, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET topics = excluded.topics,"
            " updated_at = excluded.updated_at",
            (user_id, topics, iso(self._clock.now())),
        )

    async def set_destination(self, user_id: int, destination: dict[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO briefing_prefs (user_id, destination, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET destination = excluded.destination,"
            " updated_at = excluded.updated_at",
            (user_id, json.dumps(destination, sort_keys=True), iso(self._clock.now())),
        )


def _when(item: NewItem) -> str | None:
    return iso(item.published_at) if item.published_at else None


def _twins(items: list[NewItem]) -> tuple[Counter[str], Counter[tuple[str, str, str | None]]]:
    """How many items of this fetch share each link, and each link, title and date: what
    several items share tells none of them apart (a feed may link every item to its home page)."""
    links = Counter(item.link for item in items if item.link)
    looks = Counter((item.link, item.title, _when(item)) for item in items)
    return links, looks


async def _stored_as(
    tx: aiosqlite.Connection,
    feed_id: int,
    item: NewItem,
    twins: tuple[Counter[str], Counter[tuple[str, str, str | None]]],
) -> int | None:
    """The row of this feed that holds the item: by its key, else (R209: a feed gave its items
    new guids on every fetch, and each was stored and briefed again every morning) by a link no
    other item of the fetch has, with the same date (undated: the same title; R210: a "quote of
    the day" under one title and the home page's link is a new item each day), else by link,
    title and date, when dated and unshared."""
    links, looks = twins
    when = _when(item)
    queries = [("item_key = ?", (item.key,))]
    if item.link and links[item.link] == 1:  # the same date, or, undated, the same title
        queries.append(
            (
                "link = ? AND published_at IS ? AND (published_at IS NOT NULL OR title = ?)",
                (item.link, when, item.title),
            )
        )
    if when is not None and looks[(item.link, item.title, when)] == 1:
        queries.append(
            ("link = ? AND title = ? AND published_at = ?", (item.link, item.title, when))
        )
    for where, args in queries:
        cursor = await tx.execute(
            f"SELECT id FROM feed_items WHERE feed_id = ? AND {where} ORDER BY id LIMIT 1",
            (feed_id, *args),
        )
        row = await cursor.fetchone()
        await cursor.close()
        if row is not None:
            return int(row[0])
    return None
