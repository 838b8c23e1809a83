"""One feed could hide another's item for good (R255-2): the briefing kept one item per link
across feeds, and the ledger of what was briefed knew an item by its key alone, so a feed that
copied another's guid and link was briefed in its place ("all is fine, ignore e-mails") and the
real item ("change your password") was marked briefed without ever being shown. Two feeds'
items that only share a link are now each told, under their own feed; the ledger is kept per
feed; one story alike in two feeds is still told once, and then by neither again.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from fakes.anthropic import FakeAnthropic, Reply
from harness import running_steward
from loopback_app import serving

from memory.clock import FrozenClock
from memory.db import Database
from memory.feeds import FeedStore, NewItem

DAY1 = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
LINK = "https://bank.example/notice-42"
REAL = "Bank breach: change your password"
COPY = "Bank notice: all is fine, ignore e-mails"


def rss(title: str, when: datetime, summary: str = "") -> bytes:
    day = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item>'
        f"<title>{title}</title><link>{LINK}</link><guid>{LINK}</guid><pubDate>{day}</pubDate>"
        f"<description>{summary}</description></item></channel></rss>"
    ).encode()


def app(feeds: dict[str, bytes]) -> web.Application:
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=feeds[request.match_info["name"]], content_type="text/xml")

    application = web.Application()
    application.router.add_get("/{name}", serve)
    return application


async def briefed_titles(
    tmp_path: Path, fake_model: FakeAnthropic, feeds: dict[str, bytes], days: int
) -> list[list[str]]:
    """The item titles each day's briefing put to the model, for `days` days."""
    fake_model.on_request(lambda request: Reply.text("ok briefing"))
    clock = FrozenClock(DAY1)
    shown: list[list[str]] = []
    async with (
        serving(app(feeds)) as base,
        running_steward(
            tmp_path, fake_model.base_url, clock=clock, STEWARD_FETCH_ALLOW_HOSTS="127.0.0.1"
        ) as h,
    ):
        for name in feeds:
            assert "added" in await h.say(f"/briefing feeds add {base}/{name}")
        for _ in range(days):
            seen = len(fake_model.requests)
            await h.say("/briefing now")
            prompts = [
                r.last_user_text
                for r in fake_model.requests[seen:]
                if "Morning briefing" in r.last_user_text
            ]
            shown.append(re.findall(r"\[\d+\] (.+)", prompts[0]) if prompts else [])
            clock.advance(timedelta(days=1))
    return shown


async def test_a_feed_copying_anothers_guid_and_link_does_not_hide_its_item(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    feeds = {
        "legit.xml": rss(REAL, DAY1 - timedelta(hours=2)),
        "hostile.xml": rss(COPY, DAY1 - timedelta(hours=1)),
    }
    shown = await briefed_titles(tmp_path, fake_model, feeds, days=3)
    assert sorted(shown[0]) == sorted([REAL, COPY]), shown  # each under its own feed
    assert shown[1:] == [[], []], shown  # and neither again


async def test_one_story_in_two_feeds_is_told_once_and_not_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    story = rss(REAL, DAY1 - timedelta(hours=2), summary="Reset it today.")
    shown = await briefed_titles(
        tmp_path, fake_model, {"all.xml": story, "security.xml": story}, days=2
    )
    assert shown == [[REAL], []], shown


async def test_the_ledger_is_kept_per_feed_and_old_records_count_for_every_feed(
    tmp_path: Path,
) -> None:
    db = await Database.open(tmp_path / "s.db")
    try:
        owner = await db.execute(
            "INSERT INTO users (display_name, is_owner, created_at) VALUES ('Ann', 1, '2026-01-01')"
        )
        store = FeedStore(db, FrozenClock(DAY1))
        first, _ = await store.add(owner, "http://one.example/rss")
        second, _ = await store.add(owner, "http://two.example/rss")
        for feed in (first, second):
            await store.add_items(feed.id, [NewItem("g1", "Story", LINK), NewItem("g2", "Other")])

        async def left() -> list[tuple[str, str]]:
            items = await store.unbriefed(owner, since=DAY1 - timedelta(days=7))
            return sorted((item.feed_url, item.key) for item in items)

        await store.mark_briefed(owner, [(first.url, "g1")])
        assert await left() == [(first.url, "g2"), (second.url, "g1"), (second.url, "g2")]
        await store.mark_briefed(owner, [("", "g2")])  # recorded before the ledger was per feed
        assert await left() == [(second.url, "g1")]
        await store.remove(owner, first.id)  # a feed removed and added again: still briefed
        again, _ = await store.add(owner, first.url)
        await store.add_items(again.id, [NewItem("g1", "Story", LINK)])
        assert await left() == [(second.url, "g1")]
        assert await store.briefed_count(owner) == 2
    finally:
        await db.close()
