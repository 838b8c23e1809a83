"""R209: the daily token budget against many daily goal check-ins and a briefing. The notice
named nothing ("paused self-initiated work"), so the owner never learnt their briefing was
skipped five days running; and due check-ins ran in id order, so under a tight budget the same
goals got one every day and the others never."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply, Usage
from harness import Harness, running_steward
from loopback_app import serving

from memory.clock import FrozenClock

START = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
CHECKIN = Usage(900, 100, 0, 0)  # 1,000 tokens a check-in
BUDGET = "2500"  # three check-ins a day (the third starts below it), then it is spent


def _answer(request: RecordedRequest) -> Reply:
    if "check-in" in request.last_user_text:
        return Reply.text("Nudge: keep going.", usage=CHECKIN)
    return Reply.text("Briefing text", usage=Usage(10, 5, 0, 0))


@asynccontextmanager
async def _feed() -> AsyncIterator[str]:
    """A feed with new items on every fetch, so each briefing needs the model."""
    fetched = {"n": 0}

    async def feed(request: web.Request) -> web.Response:
        fetched["n"] += 1
        n = fetched["n"]
        items = "".join(
            f"<item><title>News {n}-{i}</title><link>http://n.example/{n}/{i}</link>"
            f"<guid>{n}-{i}</guid></item>"
            for i in range(3)
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>N</title>{items}'
        return web.Response(
            body=(body + "</channel></rss>").encode(), content_type="application/rss+xml"
        )

    app = web.Application()
    app.router.add_get("/f.xml", feed)
    async with serving(app) as base:
        yield base + "/f.xml"


async def _set_up(h: Harness, goals: int, feed: str | None) -> None:
    await h.say("/timezone Europe/Berlin")
    for i in range(goals):
        await h.say(f"/goal add Goal {i + 1}")
        await h.say(f"/goal every {i + 1} every day 9:00")
    if feed is not None:
        await h.say(f"/briefing feeds add {feed}")
        await h.say("/briefing at 10:00")


async def _day(h: Harness, clock: FrozenClock, day: int) -> list[int]:
    """One day's 09:00 check-ins and 10:00 briefing: the goals checked in on."""
    clock.advance(START + timedelta(days=day, hours=2) - clock.now())  # 09:00 in Berlin
    reports = await h.steward.scheduler.run_due()
    clock.advance(timedelta(hours=1))
    reports += await h.steward.scheduler.run_due()
    schedules = h.steward.stores.schedules
    sent = [r.schedule_id for r in reports if r.kind == "checkin" and r.status == "sent"]
    return sorted([int((await schedules.get(i)).payload["goal_id"]) for i in sent])  # type: ignore[union-attr]


def _notices(h: Harness) -> list[str]:
    return [t for t in h.channel.texts() if "token budget" in t]


async def test_the_notice_names_what_the_budget_skipped_and_usage_lists_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_answer)
    clock = FrozenClock(START)
    async with (
        _feed() as feed,
        running_steward(
            tmp_path,
            fake_model.base_url,
            clock=clock,
            STEWARD_DAILY_TOKEN_BUDGET="1500",  # two check-ins: under A_DAY (R232), it decides
            STEWARD_FETCH_ALLOW_HOSTS="127.0.0.1",
        ) as h,
    ):
        await _set_up(h, 5, feed)
        assert await _day(h, clock, 0) == [1, 2]
        [notice] = _notices(h)
        assert "I skipped your check-in for goal #3 “Goal 3”" in notice
        usage = await h.say("/usage")
        assert "Skipped today for the budget: the 10:00 briefing, 3 check-ins" in usage

        assert await _day(h, clock, 1) == [3, 4]
        _, second = _notices(h)
        assert "I skipped your check-in for goal #5 “Goal 5”" in second  # 3 and 4 went
        # the rest of the last day it ran out: the briefing is named, not only the first job
        assert "(Tue 10 Mar), it skipped 4 jobs in all: the 10:00 briefing, 3 check-ins." in (
            second
        )


async def test_every_goal_gets_its_check_in_over_the_days_under_a_tight_budget(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_answer)
    clock = FrozenClock(START)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_DAILY_TOKEN_BUDGET=BUDGET
    ) as h:
        await _set_up(h, 9, None)
        days = [await _day(h, clock, day) for day in range(3)]
    assert days[0] == [1, 2, 3]  # never checked in on: in id order
    assert days[1] == [4, 5, 6]  # then the goals least recently checked in on
    assert days[2] == [7, 8, 9]


async def test_a_task_the_budget_skipped_is_named_by_what_it_does(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    spent = Usage(600, 0, 0, 0)  # the chat that sets the task spends the 1,000
    fake_model.reply(
        Reply.tool_use(
            "task_add", {"when": "in 2 hours", "instruction": "check the strike"}, usage=spent
        )
    )
    fake_model.reply_text("I'll check at noon.", usage=spent)
    clock = FrozenClock(START)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_DAILY_TOKEN_BUDGET="1000"
    ) as h:
        await h.say("in 2 hours check the train strike")
        clock.advance(timedelta(hours=2, minutes=1))
        (report,) = await h.steward.scheduler.run_due()
        assert (report.kind, report.status) == ("task", "skipped")
        [notice] = _notices(h)
        assert "I skipped your scheduled task “check the strike”" in notice
        assert "Skipped today for the budget: 1 task" in await h.say("/usage")
