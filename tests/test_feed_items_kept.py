"""What the briefing keeps of its feeds: an item its feed stopped serving is forgotten after
FEED_ITEM_KEEP, one still served is kept however old, and a fetch stores a bounded number."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from agent.scheduler.feeds import ITEMS_PER_FETCH, _parse
from memory.clock import FrozenClock
from memory.db import Database
from memory.feeds import FEED_ITEM_KEEP, UNDATED_KEEP, Feed, FeedStore, NewItem

START = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


@asynccontextmanager
async def _feed(
    tmp_path: Path,
) -> AsyncIterator[tuple[Database, FrozenClock, FeedStore, int, Feed]]:
    """A database with the owner and one feed of theirs, on a clock the test moves."""
    db = await Database.open(tmp_path / "s.db")
    clock = FrozenClock(START)
    store = FeedStore(db, clock)
    try:
        owner = await db.execute(
            "INSERT INTO users (display_name, is_owner, created_at) VALUES ('Ann', 1, '2026-01-01')"
        )
        feed, _ = await store.add(owner, "http://news.example/rss")
        yield db, clock, store, owner, feed
    finally:
        await db.close()


async def test_items_no_longer_served_are_forgotten_and_the_rest_kept(tmp_path: Path) -> None:
    """R126: a hostile feed added 40,000 rows a briefing, and rows were never removed."""
    async with _feed(tmp_path) as (db, clock, store, _owner, feed):
        a, b, c = (NewItem(key=k, title=k.upper(), published_at=START) for k in ("a", "b", "c"))
        assert await store.add_items(feed.id, [a, b]) == 2
        clock.advance(FEED_ITEM_KEEP - timedelta(days=10))
        assert await store.add_items(feed.id, [a]) == 0  # b is no longer served
        clock.advance(timedelta(days=15))
        assert await store.add_items(feed.id, [a, c]) == 1
        keys = [r["item_key"] for r in await db.fetchall("SELECT item_key FROM feed_items")]
        assert sorted(keys) == ["a", "c"]
        # a kept its first sighting: it is still dated when first seen, not new again
        first = await db.scalar("SELECT first_seen_at FROM feed_items WHERE item_key = 'a'")
        assert first.startswith("2026-03-01")


def test_a_fetch_stores_at_most_its_first_items() -> None:
    items = "".join(f"<item><title>Item {i}</title><guid>g{i}</guid></item>" for i in range(2_000))
    rss = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'
    ).encode()
    headers = httpx.Headers({"content-type": "application/rss+xml"})
    parsed = _parse(rss, "http://a.example/feed", headers)
    assert parsed is not None
    assert len(parsed[1]) == ITEMS_PER_FETCH
    assert parsed[1][0].title == "Item 0"


def test_a_long_feed_listed_oldest_first_keeps_its_newest_items() -> None:
    """An archive of 400 posts, oldest first: the first 300 were kept, so a new post never
    came in again (R132)."""
    items = "".join(
        f"<item><title>Post {i}</title><guid>p{i}</guid>"
        f"<pubDate>{(START + timedelta(days=i)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        "</item>"
        for i in range(400)
    )
    rss = (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'
    ).encode()
    parsed = _parse(rss, "http://a.example/feed", httpx.Headers({"content-type": "text/xml"}))
    assert parsed is not None
    titles = {item.title for item in parsed[1]}
    assert len(titles) == ITEMS_PER_FETCH and "Post 399" in titles and "Post 0" not in titles


async def test_an_undated_item_back_after_weeks_is_not_news_again(tmp_path: Path) -> None:
    """Dated by when first seen, an undated item forgotten at 30 days and served again was
    offered as this week's news (R132)."""
    async with _feed(tmp_path) as (db, clock, store, owner, feed):
        evergreen = NewItem(key="e", title="Evergreen")
        await store.add_items(feed.id, [evergreen])
        clock.advance(timedelta(days=39))
        await store.add_items(feed.id, [NewItem(key="t", title="Today")])  # e not served
        assert await store.add_items(feed.id, [evergreen]) == 0  # back: not new
        week = await store.unbriefed(owner, since=clock.now() - timedelta(days=7))
        assert [item.title for item in week] == ["Today"]
        clock.advance(UNDATED_KEEP + timedelta(days=1))
        await store.add_items(feed.id, [])
        assert await db.scalar("SELECT COUNT(*) FROM feed_items") == 0
