"""R209: a feed that gave its items new guids on every fetch (same links, same dates) had the
same items briefed every morning, with a model call each day. An item is now the same item when
its link, or its link, title and date, match one stored for the feed; a link that several items
of one fetch share (a feed linking each item to its home page) tells none of them apart."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from fakes.anthropic import FakeAnthropic, Reply
from harness import Harness, running_steward
from loopback_app import serving
from test_migrations import UNDO_0031

from memory.clock import FrozenClock
from memory.db import Database
from memory.feeds import FeedStore, NewItem

DAY1 = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
HOME = "http://news.example/"
Link = Callable[[int], str]


def _rss(count: int, fetch: int, link: Link) -> bytes:
    """`count` stories, their guids new on every fetch, their links and dates the same."""
    items = "".join(
        f"<item><title>Story {i}</title><link>{link(i)}</link>"
        f'<guid isPermaLink="false">story-{i}-fetch-{fetch}</guid>'
        f"<pubDate>{(DAY1 - timedelta(hours=i)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        f"<description>About story {i}</description></item>"
        for i in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    ).encode()


@pytest.fixture
async def feed_site() -> AsyncIterator[str]:
    """Serves /own.xml (15 stories, each its own link) and /home.xml (3 stories, all linked to
    the home page), both with new guids on every fetch."""
    fetches = {"own": 0, "home": 0}

    def serve(name: str, count: int, link: Link) -> Callable[[web.Request], object]:
        async def handler(request: web.Request) -> web.Response:
            fetches[name] += 1
            body = _rss(count, fetches[name], link)
            return web.Response(body=body, content_type="application/rss+xml")

        return handler

    app = web.Application()
    app.router.add_get("/own.xml", serve("own", 15, lambda i: f"http://news.example/{i}"))
    app.router.add_get("/home.xml", serve("home", 3, lambda i: HOME))
    async with serving(app) as base:
        yield base


async def _days(h: Harness, fake: FakeAnthropic, clock: FrozenClock, days: int) -> list[list[str]]:
    """The stories each day's briefing showed the model (none: no model call that day)."""
    shown: list[list[str]] = []
    for _ in range(days):
        asked = len(fake.requests)
        reply = await h.say("/briefing now")
        prompts = [r.last_user_text for r in fake.requests[asked:]]
        briefings = [p for p in prompts if "Morning briefing" in p]
        assert len(briefings) <= 1
        shown.append(re.findall(r"\[\d+\] (Story \d+)", briefings[0]) if briefings else [])
        if not briefings:
            assert reply.startswith("Good morning. Nothing new in your feeds"), reply
        clock.advance(timedelta(days=1))
    return shown


async def test_new_guids_for_the_same_links_are_briefed_once(
    tmp_path: Path, fake_model: FakeAnthropic, feed_site: str
) -> None:
    fake_model.on_request(lambda request: Reply.text("ok briefing"))
    clock = FrozenClock(DAY1)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_FETCH_ALLOW_HOSTS="127.0.0.1"
    ) as h:
        assert "added" in await h.say(f"/briefing feeds add {feed_site}/own.xml")
        day1, day2, day3 = await _days(h, fake_model, clock, 3)
        assert day1 == [f"Story {i}" for i in range(12)]  # a briefing shows 12
        assert day2 == ["Story 12", "Story 13", "Story 14"]
        assert day3 == []  # nothing new: no model call
        rows = await h.steward.stores.db.scalar("SELECT COUNT(*) FROM feed_items")
        assert rows == 15  # stored once each, not again at every fetch


async def test_items_sharing_the_home_page_link_are_each_briefed(
    tmp_path: Path, fake_model: FakeAnthropic, feed_site: str
) -> None:
    """One link for every item is no identity: each story still comes, once (a briefing keeps
    one item per link, so one a day), and then nothing, though their guids change too."""
    fake_model.on_request(lambda request: Reply.text("ok briefing"))
    clock = FrozenClock(DAY1)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_FETCH_ALLOW_HOSTS="127.0.0.1"
    ) as h:
        assert "added" in await h.say(f"/briefing feeds add {feed_site}/home.xml")
        days = await _days(h, fake_model, clock, 4)
        assert days == [["Story 0"], ["Story 1"], ["Story 2"], []]


async def test_what_makes_an_item_the_same(tmp_path: Path) -> None:
    """A link alone in its fetch, with the same title or date, is the same item; a new title
    on a new date under that link is a new one (a feed of one item a day, linked to its home
    page); without a link, the same title and date."""
    db = await Database.open(tmp_path / "s.db")
    store = FeedStore(db, FrozenClock(DAY1))
    try:
        owner = await db.execute(
            "INSERT INTO users (display_name, is_owner, created_at) VALUES ('Ann', 1, '2026-01-01')"
        )
        feed, _ = await store.add(owner, "http://news.example/rss")
        day2 = DAY1 + timedelta(days=1)

        def item(key: str, title: str, link: str = HOME, when: datetime = DAY1) -> NewItem:
            return NewItem(key=key, title=title, link=link, published_at=when)

        assert await store.add_items(feed.id, [item("g1", "Quote of the day")]) == 1
        assert await store.add_items(feed.id, [item("g2", "Quote of the day")]) == 0
        assert await store.add_items(feed.id, [item("g3", "Quote, edited")]) == 0  # same date
        assert await store.add_items(feed.id, [item("g4", "Next quote", when=day2)]) == 1
        # R210: one title under the home page's link, a new item every day
        day3 = day2 + timedelta(days=1)
        assert await store.add_items(feed.id, [item("g8", "Next quote", when=day3)]) == 1
        assert await store.add_items(feed.id, [item("g5", "No link", link="")]) == 1
        assert await store.add_items(feed.id, [item("g6", "No link", link="")]) == 0
        assert await store.add_items(feed.id, [item("g7", "No link", link="", when=day2)]) == 1
        # two items of one fetch alike in link, title and date are told apart by their guids
        twins = [item("t1", "Same"), item("t2", "Same")]
        assert await store.add_items(feed.id, twins) == 2
        assert await store.add_items(feed.id, twins) == 0
    finally:
        await db.close()


async def test_the_upgrade_keeps_one_copy_of_an_item_stored_again(tmp_path: Path) -> None:
    """Before R209 a feed with new guids each fetch stored each item again: the upgrade keeps
    the oldest copy, briefed if any copy was, and leaves items that only share a link."""
    db = await Database.open(tmp_path / "s.db")
    try:
        owner = await db.execute(
            "INSERT INTO users (display_name, is_owner, created_at) VALUES ('Ann', 1, '2026-01-01')"
        )
        feed, _ = await FeedStore(db, FrozenClock(DAY1)).add(owner, "http://news.example/rss")
        rows = [  # key, title, link, first seen: a1-a3 one story stored by three fetches,
            # h1 and h2 two stories, t1 and t2 two stories alike stored by one fetch (R210)
            ("a1", "A", "http://news.example/a", "2026-03-07"),
            ("a2", "A", "http://news.example/a", "2026-03-08"),
            ("a3", "A", "http://news.example/a", "2026-03-09"),
            ("h1", "H1", HOME, "2026-03-09"),
            ("h2", "H2", HOME, "2026-03-09"),
            ("t1", "T", HOME, "2026-03-09"),
            ("t2", "T", HOME, "2026-03-09"),
        ]
        for key, title, link, seen in rows:
            await db.execute(
                "INSERT INTO feed_items (feed_id, item_key, title, link, published_at,"
                " first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, '2026-03-09', ?, ?)",
                (feed.id, key, title, link, seen, seen),
            )
        await db.execute("INSERT INTO briefed_items VALUES (?, 't1', '2026-03-09')", (owner,))
        await db.execute("INSERT INTO briefed_items VALUES (?, 'a3', '2026-03-09')", (owner,))
        await db.execute("DROP INDEX feed_items_by_link")  # back to version 26
        # what 0031 added goes too
        for statement in UNDO_0031:
            await db.execute(statement)
        await db.execute("DELETE FROM schema_version WHERE version >= 27")
    finally:
        await db.close()
    db = await Database.open(tmp_path / "s.db")
    try:
        kept = [r["item_key"] for r in await db.fetchall("SELECT item_key FROM feed_items")]
        assert sorted(kept) == ["a1", "h1", "h2", "t1", "t2"]
        store = FeedStore(db, FrozenClock(DAY1))
        left = await store.unbriefed(owner, since=DAY1 - timedelta(days=7))
        assert sorted(item.key for item in left) == ["h1", "h2", "t2"]
    finally:
        await db.close()
