"""R209: an owner with 40 goals and 300 reminders got a 280-line briefing (each goal due listed
twice, and all of it in a prompt asking for "under 250 words") and a 16,921-character
`/remind list`. Each part of the briefing now stops at a few lines and counts the rest, a goal
due is listed once with its next step, and `/remind list` shows 30 at a time."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, running_steward
from loopback_app import serving

from memory.clock import FrozenClock

NOW = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # 06:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
LOOPBACK = {"STEWARD_FETCH_ALLOW_HOSTS": "127.0.0.1"}  # the feed below is served on loopback
RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>
<item><title>Something new</title><link>http://news.example/new</link><guid>n1</guid>
<pubDate>Tue, 10 Mar 2026 04:00:00 GMT</pubDate><description>A story.</description></item>
</channel></rss>"""


async def _rss(_: web.Request) -> web.Response:
    return web.Response(text=RSS, content_type="text/xml")


@pytest.fixture
async def feed_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/rss.xml", _rss)
    async with serving(app) as base:
        yield base + "/rss.xml"


async def _goals(h: Harness, clock: FrozenClock, count: int = 40) -> None:
    """Each with a next step, and a due day from today to in four days: 27 are due by the
    briefing's count (today or within three days), and 1 in 6 has no due day (yesterday is
    refused)."""
    for i in range(count):
        await h.say(f"/goal add Goal number {i} with a reasonably descriptive title")
        await h.say(f"/goal next {i + 1} do the next concrete thing for goal {i}")
        due = (clock.now() + timedelta(days=i % 6 - 1)).astimezone(BERLIN)
        await h.say(f"/goal due {i + 1} {due:%Y-%m-%d}")


async def _reminders(h: Harness, clock: FrozenClock) -> None:
    """150 daily, 120 one-off (every 37 minutes from 07:30), 30 weekly: 300 in all."""
    for i in range(150):
        await h.say(f"/remind every day {6 + i % 17:02d}:{(i * 7) % 60:02d} daily thing {i}")
    for i in range(120):
        at = (clock.now() + timedelta(minutes=90 + 37 * i)).astimezone(BERLIN)
        await h.say(f"/remind {at:%Y-%m-%d %H:%M} one-off task {i}")
    for i in range(30):
        await h.say(f"/remind every tuesday {7 + i % 12:02d}:15 weekly thing {i}")


def _briefing(request: RecordedRequest) -> Reply:
    if "Morning briefing for" in request.last_user_text:
        return Reply.text("Good morning! [1] Something new — http://news.example/new")
    return Reply.text("ok")


async def test_a_big_briefing_lists_each_goal_once_and_counts_what_it_leaves_out(
    tmp_path: Path, fake_model: FakeAnthropic, feed_url: str
) -> None:
    fake_model.on_request(_briefing)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock, **LOOPBACK) as h:
        await h.say("/timezone Europe/Berlin")
        await _goals(h, clock)
        await _reminders(h, clock)
        sent = len(h.channel.sent)
        await h.say("/briefing now")
        [posted] = h.channel.texts()[sent:]  # nothing new in feeds: the plain text, one message
        assert len(posted) < 4_000, len(posted)
        ids = Counter(re.findall(r"#(\d+) Goal number", posted))
        assert ids and max(ids.values()) == 1, ids  # a goal due is not again a next step
        # 27 goals due, 10 shown, each with its next step; 10 of the 13 others' next steps
        assert (
            "Goals due:\n- Due today: #2 Goal number 1 with a reasonably descriptive title: "
            "next step — do the next concrete thing for goal 1\n"
        ) in posted
        assert "\n…and 17 more: /goal list\n\nGoal next steps:\n" in posted
        assert len(re.findall(r"^- Due ", posted, re.M)) == 10
        assert len(re.findall(r"^- #\d+ .*: next step — ", posted, re.M)) == 10
        assert "\n…and 3 more: /goal list\n\nReminders today:\n" in posted
        reminders = posted.split("Reminders today:\n", 1)[1].splitlines()
        assert len(reminders) == 16, reminders  # 15, then how many more and where they are
        assert reminders[-1] == "…and 191 more today: /remind list", reminders[-1]
        assert reminders[0] == "- 06:52 daily thing 136"  # the soonest first
        assert reminders[1:15] == sorted(reminders[1:15])

        # with a feed item the model writes it, from the same capped lines
        assert "added" in await h.say(f"/briefing feeds add {feed_url}")
        await h.say("/briefing now")
        [request] = [r for r in fake_model.requests if "Morning briefing" in r.last_user_text]
        prompt = request.last_user_text.split("Morning briefing for", 1)[1]  # not the context
        assert len(prompt) < 5_000, len(prompt)
        assert "\n…and 17 more: /goal list" in prompt and "\n…and 3 more: /goal list" in prompt
        assert prompt.endswith("\n- 07:06 daily thing 18\n…and 191 more today: /remind list")
        assert "keep that line as it is" in prompt
        assert max(Counter(re.findall(r"#(\d+) Goal number", prompt)).values()) == 1


async def test_remind_list_shows_30_at_a_time_and_the_command_for_the_next(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/timezone Europe/Berlin")
        await _reminders(h, clock)
        first = (await h.say("/remind list")).splitlines()
        assert len(first) == 31, len(first)
        assert first[-1] == (
            "…and 270 more: /remind list 2 shows the next 30, /remind list all every one."
        )
        assert first[0].endswith(" — daily thing 136 (next Tue 2026-03-10 06:52)"), first[0]
        assert first == (await h.say("/remind list 1")).splitlines()
        second = (await h.say("/remind list 2")).splitlines()
        assert second[0] == "Reminders 31 to 60 of 300:"
        assert len(second) == 32 and not set(second[1:31]) & set(first[:30])
        assert second[-1].startswith("…and 240 more: /remind list 3 shows the next 30")
        last = (await h.say("/remind list 10")).splitlines()
        assert last[0] == "Reminders 271 to 300 of 300:" and len(last) == 31  # no more line
        assert "/remind list 10 shows the last page" in await h.say("/remind list 11")
        assert len((await h.say("/remind list all")).splitlines()) == 300
        for bad in ("/remind list x", "/remind list 0"):
            refused = await h.say(bad)
            assert "is not a page number: /remind list 2 shows reminders 31 to 60" in refused
            assert "Usage: /remind" in refused, refused
