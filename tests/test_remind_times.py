"""Reminder times dateparser read wrong, end to end: /remind, /goal due and the reminder tool on
the last days of a month and the year, the eve of the clocks going forward, "tonight at 9",
am/pm after a clock time, a day a month does not have; and a briefing with no grace window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fakes.anthropic import FakeAnthropic
from harness import Harness, running_steward

from agent.scheduler import SchedulerService
from memory.clock import FrozenClock


def scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


async def test_a_time_alone_on_the_last_days_of_a_month_and_the_year(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 12, 31, 12, 0, tzinfo=UTC))  # Thu noon (UTC)
    async with running_steward(tmp_path, None, clock=clock) as h:
        reply = await h.say("/remind 9:00 call the bank")
        assert reply.startswith("OK, #1: Fri 2027-01-01 09:00 (in 21 h) — call the bank."), reply
    clock = FrozenClock(datetime(2026, 4, 30, 12, 0, tzinfo=UTC))
    async with running_steward(tmp_path / "april", None, clock=clock) as h:
        for n, words in enumerate(["at 9 call the bank", "9am call", "midnight take pills"], 1):
            reply = await h.say(f"/remind {words}")
            assert reply.startswith(f"OK, #{n}: Fri 2026-05-01 "), reply


async def test_the_reminder_tool_on_new_years_eve(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The model calls reminder_add(when="9:00"): it was 1 December of the year after."""
    clock = FrozenClock(datetime(2026, 12, 31, 12, 0, tzinfo=UTC))
    fake_model.reply_tool_use("reminder_add", {"when": "9:00", "text": "call the bank"})
    fake_model.reply_text("Done.")
    fake_model.reply_tool_use("reminder_add", {"when": "daily at 8:30 PM", "text": "pills"})
    fake_model.reply_text("Done.")
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("remind me at 9 to call the bank")
        result = fake_model.requests[1].tool_results[0]["content"]
        assert result == "Scheduled #1 Fri 2027-01-01 09:00 — call the bank", result
        await h.say("remind me every evening at 8:30 pm to take my pills")
        result = fake_model.requests[3].tool_results[0]["content"]
        assert result.startswith("Scheduled #2 every day at 20:30"), result


async def test_a_day_of_the_month_for_remind_and_goal_due(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 3, 3, 10, 0, tzinfo=UTC))  # Tue 3 March
    async with running_steward(tmp_path, None, clock=clock) as h:
        reply = await h.say("/remind 5th pay rent")  # was 3 May
        assert reply.startswith("OK, #1: Thu 2026-03-05 09:00"), reply
        reply = await h.say("/remind on the 1st at 18:00 pay rent")
        assert reply.startswith("OK, #2: Wed 2026-04-01 18:00"), reply
        await h.say("/goal add pay the tax bill")
        assert await h.say("/goal due 1 12th") == "#1 is due Thu 2026-03-12."  # was December
        assert await h.say("/goal due 1 the 3rd") == "#1 is due Tue 2026-03-03."  # today


async def test_a_daily_time_set_on_the_eve_of_spring_forward(tmp_path: Path) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    clock = FrozenClock(datetime(2026, 3, 28, 20, 0, tzinfo=UTC))  # Sat 21:00 CET
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/timezone Europe/Berlin")
        reply = await h.say("/remind every day at 2:30am take pills")
        assert "every day at 02:30" in reply, reply  # was 03:30, for good
        for _ in range(2):
            clock.advance(timedelta(days=1))
            await scheduler(h).run_due()
        schedule = await scheduler(h).store.get(1)
        assert schedule is not None and schedule.next_run_at is not None
        assert f"{schedule.next_run_at.astimezone(berlin):%m-%d %H:%M}" == "03-31 02:30"


async def test_tonight_am_pm_and_an_impossible_date_through_remind(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 3, 10, 13, 0, tzinfo=UTC))
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/timezone America/New_York")  # 09:00 there
        reply = await h.say("/remind tonight at 9 call mom")  # was 09:00 (in the morning)
        assert reply.startswith("OK, #1: Tue 2026-03-10 21:00"), reply
        reply = await h.say("/remind every day at 8:30 PM take pills")
        assert "every day at 20:30" in reply and "— take pills." in reply, reply
        reply = await h.say("/remind every day 12:00 AM back up the laptop")
        assert "every day at 00:00" in reply and "— back up the laptop." in reply, reply
        reply = await h.say("/remind april 31 pay rent")  # was 10 April, "31 pay rent"
        assert reply.startswith("April has no 31st."), reply
        assert len(await scheduler(h).store.for_user(1, ("reminder",))) == 3


async def test_a_briefing_on_time_is_posted_with_no_grace_window(tmp_path: Path) -> None:
    """STEWARD_BRIEFING_GRACE=0 skipped every briefing: the alarm wakes a little after the due
    instant, and any lateness was more than no grace at all."""
    clock = FrozenClock(datetime(2026, 3, 10, 5, 0, tzinfo=UTC))
    async with running_steward(tmp_path, None, clock=clock, STEWARD_BRIEFING_GRACE="0") as h:
        await h.say("/briefing at 07:00")
        clock.advance(timedelta(hours=2, seconds=0.8))  # the alarm, a little after 07:00
        [report] = await scheduler(h).run_due()
        assert report.status == "sent", report
        assert any(t.startswith("Good morning") for t in h.channel.texts())
        clock.advance(timedelta(days=1, minutes=2))  # 07:02 the next day: missed
        [report] = await scheduler(h).run_due()
        assert (report.status, report.reason) == (
            "skipped",
            "missed by 2 min, more than the 0 s grace window",
        )


async def test_the_after_a_time_and_tonight_through_remind(tmp_path: Path) -> None:
    """ "the" after a time read on into the next number ("in 20 minutes the 5pm call" was 17:00
    "call", "friday the 3rd quarter report" March); "at 11 tonight" was 11:00, "tonight at 1am"
    this morning (refused), and "tonight at 1" said at 00:20 the night after."""
    clock = FrozenClock(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))  # Wed 14:00 in Berlin
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/timezone Europe/Berlin")
        reply = await h.say("/remind in 20 minutes the 5pm call")
        assert reply.startswith("OK, #1: Wed 2026-06-10 14:20 (in 20 min) — the 5pm call."), reply
        reply = await h.say("/remind friday the 3rd quarter report")
        assert reply.startswith("OK, #2: Fri 2026-06-12 09:00"), reply
        assert "— the 3rd quarter report." in reply, reply
        reply = await h.say("/remind at 11 tonight call mom")
        assert reply.startswith("OK, #3: Wed 2026-06-10 23:00"), reply
        reply = await h.say("/remind tonight at 1am take pills")
        assert reply.startswith("OK, #4: Thu 2026-06-11 01:00"), reply
        reply = await h.say("/remind at 9 2 pills")  # was 10 February, "pills"
        assert reply.startswith("OK, #5: Thu 2026-06-11 09:00") and "— 2 pills." in reply, reply
        reply = await h.say("/remind me the 2nd draft is due")  # was the 2nd, "draft is due"
        assert reply.startswith("I couldn't find a time at the start of"), reply
        clock.advance(timedelta(hours=10, minutes=20))  # Thu 00:20 in Berlin
        reply = await h.say("/remind tonight at 1 call back")  # was Fri 01:00, 24 h 40 min on
        assert reply.startswith("OK, #6: Thu 2026-06-11 01:00 (in 40 min)"), reply
        assert len(await scheduler(h).store.for_user(1, ("reminder",))) == 6
