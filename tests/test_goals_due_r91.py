"""Due dates said as a month and goals due in the briefing (review 91): "a half marathon in
March" is due by the end of March whatever day it is said (it took yesterday's day of the
month), the tool tells the model the day it was read as, and the morning briefing names the
goals overdue, due today or within three days (it said "no goal steps or reminders" on the
very day one was due) — in the owner's private chat only, never in a channel's briefing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import RecordingChannel, running_steward, said_last
from test_migrations import UNDO_0031

from agent.scheduler.when import parse_day
from memory.clock import FrozenClock, parse_iso

BERLIN = ZoneInfo("Europe/Berlin")
AUCKLAND = ZoneInfo("Pacific/Auckland")


def _local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


def _half_marathon(words: str):  # type: ignore[no-untyped-def]
    def reply(request: RecordedRequest) -> Reply:
        if request.tool_results:
            return Reply.text("Done.")
        if "half marathon" in said_last(request):
            return Reply.tool_use("goal_add", {"title": "Run a half marathon", "due": words})
        return Reply.text("ok")

    return reply


@pytest.mark.parametrize("day", [21, 24])
@pytest.mark.parametrize("words", ["March", "in March"])
async def test_a_month_alone_is_due_by_its_end_whatever_day_it_is_said(
    tmp_path: Path, fake_model: FakeAnthropic, day: int, words: str
) -> None:
    fake_model.on_request(_half_marathon(words))
    clock = FrozenClock(_local(BERLIN, 2026, 10, day, 8, 0))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("I want to run a half marathon in March")
        goal = await h.steward.stores.goals.get(1, 1)
        assert goal is not None and goal.due_at
        assert parse_iso(goal.due_at).astimezone(BERLIN).date() == date(2027, 3, 31)
        # the model is told the day, to tell the owner
        [result] = fake_model.requests[-1].tool_results
        assert result["content"] == "Goal #1 added: Run a half marathon (due Wed 2027-03-31)"
        assert h.steward.scheduler is not None
        [checkin] = await h.steward.scheduler.store.for_user(1, ("checkin",))
        assert checkin.next_run_at == _local(BERLIN, 2027, 3, 30, 9, 0)  # not the 19th
        await h.say("/goal add Read 12 books")
        assert await h.say(f"/goal due 2 {words}") == "#2 is due Wed 2027-03-31."


def test_a_month_alone_is_its_last_day_and_every_other_phrase_reads_as_before() -> None:
    said = _local(BERLIN, 2026, 10, 21, 8, 0)
    for words in ("March", "in March", "by March", "march 2027"):
        assert parse_day(words, said, BERLIN) == date(2027, 3, 31), words
    assert parse_day("feb", said, BERLIN) == date(2027, 2, 28)
    # this month is this month's end, to its last day; the day after, next year's
    assert parse_day("october", _local(BERLIN, 2026, 10, 31, 22, 0), BERLIN) == date(2026, 10, 31)
    assert parse_day("october", _local(BERLIN, 2026, 11, 1, 8, 0), BERLIN) == date(2027, 10, 31)
    # a day given, or no month named: as before
    assert parse_day("1 March", said, BERLIN) == date(2027, 3, 1)
    assert parse_day("march 11th", said, BERLIN) == date(2027, 3, 11)
    assert parse_day("the 15th", said, BERLIN) == date(2026, 11, 15)
    assert parse_day("next month", said, BERLIN) == date(2026, 11, 21)
    assert parse_day("in 2 months", said, BERLIN) == date(2026, 12, 21)
    assert parse_day("friday", said, BERLIN) == date(2026, 10, 23)


def _briefing(request: RecordedRequest) -> Reply:
    if "Morning briefing for" in request.last_user_text:
        return Reply.text("Good morning! Your goals are below.")
    return Reply.text("ok")


async def test_the_briefing_names_goals_overdue_due_today_and_soon_in_private_only(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Auckland, 13 hours ahead: at 07:00 there it is still the day before in UTC, so a goal
    due today would read as due soon on UTC's calendar."""
    fake_model.on_request(_briefing)
    clock = FrozenClock(_local(AUCKLAND, 2026, 10, 26, 12, 0))  # Mon
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        slack = RecordingChannel(name="slack")
        h.steward.switchboard.register("slack", slack)
        await h.say("/timezone Pacific/Auckland")
        await h.say("/briefing at 07:00")
        for number, (title, due) in enumerate(
            [
                ("Submit the tax return", "tomorrow"),
                ("Renew the passport", "today"),
                ("Book the flights", "fri"),
                ("Paint the fence", "sat"),
                ("Learn Portuguese", ""),
                ("Call the accountant", "tomorrow"),  # two on one day: by number
            ],
            1,
        ):
            await h.say(f"/goal add {title}")
            if due:
                await h.say(f"/goal due {number} {due}")
        assert h.steward.scheduler is not None
        clock.advance(timedelta(hours=19))  # Tue 07:00 in Auckland
        [report] = [r for r in await h.steward.scheduler.run_due() if r.kind == "briefing"]
        assert report.status == "sent", report
        # no feeds, steps or reminders: the goals due are the briefing, not "nothing today",
        # and with nothing new to read it is written without the model (R176)
        assert report.reason == "nothing new: sent without the model", report
        assert not [r for r in fake_model.requests if "Morning briefing" in r.last_user_text]
        posted = h.channel.texts()[-1]
        due = posted.split("\nGoals due:\n", 1)[1].split("\n\n", 1)[0]
        assert due.splitlines() == [  # the fence (Sat 2026-10-31) and Portuguese are not due
            "- Overdue: #2 Renew the passport (was due Mon 2026-10-26)",
            "- Due today: #1 Submit the tax return",
            "- Due today: #6 Call the accountant",
            "- Due soon: #3 Book the flights (due Fri 2026-10-30)",
        ]

        # posted where others read it: the feed items alone, so nothing here, and no goal
        await h.say("/briefing to #news")
        await h.say("/briefing now")
        posted = slack.sent[-1][1]
        assert posted.startswith("Good morning. Nothing new in your feeds today"), posted
        assert "tax" not in posted and "passport" not in posted and "Due" not in posted
        assert not [r for r in fake_model.requests if "Morning briefing" in r.last_user_text]


async def test_dates_past_the_horizon_or_not_dates_are_refused_with_usage(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """9999-12-31 was taken, and in a zone east of UTC every later turn failed on its local
    date (year 10000); 2027-13-01 was read as 13 January without a word (review 121)."""
    fake_model.reply_text("hi")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("/goal add Someday")
        for command in ("/goal due 1 9999-12-31", "/remind 9999-12-31 23:59 x"):
            said = await h.say(command)
            assert "more than 100 years ahead" in said and "/" in said.split("ahead", 1)[1], said
        for command in ("/goal due 1 2027-13-01", "/remind 2027-13-01 09:00 x"):
            said = await h.say(command)
            assert "2027-13-01 is not a date" in said, said
        goal = await h.steward.stores.goals.get(1, 1)
        assert goal is not None and not goal.due_at
        assert h.steward.scheduler is not None
        assert await h.steward.scheduler.store.for_user(1, ("reminder",)) == []
        # as a version before the cap stored them: the upgrade (0024) takes the dates out
        assert (await h.say("/remind 2030-01-01 09:00 far")).startswith("OK")
        db = h.steward.stores.db
        await db.execute("UPDATE goals SET due_at = '9999-12-31T23:59:00+00:00'")
        await db.execute("UPDATE schedules SET next_run_at = '9999-12-31T23:59:00+00:00'")
        # back to version 23: what later migrations added goes too
        await db.execute("DROP INDEX feed_items_last_seen")
        await db.execute("ALTER TABLE feed_items DROP COLUMN last_seen_at")
        await db.execute("DROP TABLE message_files")
        # what 0031 added goes too
        for statement in UNDO_0031:
            await db.execute(statement)
        await db.execute("DELETE FROM schema_version WHERE version >= 24")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        said = await h.say("/timezone Pacific/Kiritimati")
        assert "Pacific/Kiritimati" in said and "went wrong" not in said, said
        assert await h.say("hello") == "hi"
        assert "Someday" in await h.say("/goal list")
        goal = await h.steward.stores.goals.get(1, 1)
        assert goal is not None and not goal.due_at
        assert "far" not in await h.say("/remind list")
