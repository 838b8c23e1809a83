"""The catch-up after Steward was down (R209): after 3 days down, a daily reminder 23 h 51 min
late came at start-up and again 9 minutes later at its time, and 40 daily check-ins made 40
model calls at start-up (82 % of the day's budget). Now a repeating reminder whose next time is
nearer than it is late, and a repeating check-in over an hour late, wait for their next time,
recorded as skipped; a reminder missed by a little, and a one-off, are still sent late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, echo_reply, running_steward

from agent.scheduler import SchedulerService
from memory.clock import FrozenClock

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # the owner's zone is UTC
NUDGE = "How is the marathon training going?"
DOWN = "I wasn't running when it fell due"


def nudge(request: RecordedRequest) -> Reply:
    if "Goal check-in for goal" in request.last_user_text:
        return Reply.text(NUDGE)
    return echo_reply(request)


def scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


def reminders(h: Harness) -> list[str]:
    return [t for t in h.channel.texts("c1") if t.startswith("Reminder:")]


async def advance(h: Harness, clock: FrozenClock, span: timedelta) -> None:
    """Steward running: the clock moves on in 5-minute steps, due jobs run at each."""
    for _ in range(int(span / timedelta(minutes=5))):
        clock.advance(timedelta(minutes=5))
        await scheduler(h).run_due()


async def test_a_daily_reminder_due_again_sooner_than_it_is_late_goes_once_at_its_time(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind every day 12:19 stretch")
    clock.advance(timedelta(days=3, minutes=10))  # back at 12:10: 23 h 51 min late
    async with running_steward(tmp_path, None, clock=clock) as h:
        [report] = await scheduler(h).start(alarm=False)
        assert report.status == "skipped"
        assert report.reason == (
            "missed by 23 h 51 min while I was not running; its next time is nearer (in 9 min)"
        )
        assert reminders(h) == []
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.run")
        assert event.detail["outcome"] == "skipped" and event.detail["missed_earlier"] == 2
        await advance(h, clock, timedelta(hours=1))
        assert reminders(h) == ["Reminder: stretch"]  # once, at 12:19, on time


async def test_a_daily_reminder_slept_through_goes_once_at_its_time(tmp_path: Path) -> None:
    """R210: Steward kept running while the laptop slept from 12:05 to the next day's 12:10: the
    reminder came 23 h 51 min late on waking, then again at 12:19."""
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind every day 12:19 take the pill")
        await advance(h, clock, timedelta(minutes=5))
        clock.advance(timedelta(days=1, minutes=5))  # the lid opens: 12:10, a day on
        [report] = await scheduler(h).run_due()
        assert report.status == "skipped", report
        assert "while the computer slept or its clock changed" in report.reason
        await advance(h, clock, timedelta(minutes=20))
        assert reminders(h) == ["Reminder: take the pill"]


async def test_a_daily_reminder_missed_by_an_hour_is_still_sent_late_once(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind every day 11:10 water the plants")
    clock.advance(timedelta(days=3, minutes=10))  # back at 12:10: 1 h late, next in 23 h
    async with running_steward(tmp_path, None, clock=clock) as h:
        [report] = await scheduler(h).start(alarm=False)
        assert report.status == "sent" and report.reason == "late by 1 h"
        late = f"Reminder: water the plants\n(late by 1 h: {DOWN})"
        assert reminders(h) == [late]
        await advance(h, clock, timedelta(hours=2))
        assert reminders(h) == [late]


async def test_a_one_off_reminder_missed_while_down_is_always_sent_late(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind 2026-03-10 12:19 renew the passport")
    clock.advance(timedelta(days=3, minutes=10))
    async with running_steward(tmp_path, None, clock=clock) as h:
        [report] = await scheduler(h).start(alarm=False)
        assert report.status == "sent"
        assert reminders(h) == [f"Reminder: renew the passport\n(late by 2 d 23 h: {DOWN})"]


async def test_a_daily_check_in_missed_while_down_makes_no_model_call_and_comes_next_time(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(nudge)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Run a marathon")
        await h.say("/goal every 1 daily 9:00")
    clock.advance(timedelta(days=3))  # back at 12:00: 3 h late, next in 21 h
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        asked = len(fake_model.requests)
        [report] = await scheduler(h).start(alarm=False)
        assert report.kind == "checkin" and report.status == "skipped"
        assert (
            report.reason
            == "missed by 3 h while I was not running, more than the 1 h it may be late"
        )
        assert len(fake_model.requests) == asked and NUDGE not in h.channel.texts()
        [schedule] = await scheduler(h).store.for_user(1, ("checkin",))
        assert schedule.next_run_at == datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
        await advance(h, clock, timedelta(hours=21, minutes=5))
        assert h.channel.texts().count(NUDGE) == 1  # at 09:00 the next day, once
        assert len(fake_model.requests) == asked + 1
