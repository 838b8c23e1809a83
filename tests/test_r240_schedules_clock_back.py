"""R240: a repeating job run while the clock was a year fast stored its next run a year on;
NTP set the clock right and it stayed silent for a year, Steward running or restarted.

Real APScheduler and core (tests/harness.py); only the clocks are fake (tests/fake_clocks.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_clocks import TwoClocks
from harness import running_steward
from test_scheduler_wakeup import A_FEW_SECONDS, reminders, running_scheduler

from agent.scheduler.service import SchedulerService

FIVE_S = timedelta(seconds=5)
WRONG = datetime(2027, 3, 10, 8, 58, tzinfo=UTC)  # the clock a year fast
YEAR = timedelta(days=365)
NEXT_MORNING = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)  # the next 09:00 once set right


async def awake_past(clocks: TwoClocks, service: SchedulerService, at: datetime) -> None:
    """Time passes until a minute after `at`: in 10-minute steps, then, from ten minutes
    before it, in 5-second ones (a 10-minute step would have the alarm go off late)."""
    idle = service.idle
    await clocks.awake(
        at - timedelta(minutes=10) - clocks.now(), step=timedelta(minutes=10), idle=idle
    )
    await clocks.awake(at + timedelta(minutes=1) - clocks.now(), step=FIVE_S, idle=idle)


async def test_a_daily_reminder_runs_again_after_a_clock_a_year_fast_is_set_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running the whole time: the pills reminder fires at 09:00 on the fast clock, its next
    run is stored as 2027-03-11 09:00; NTP then sets the clock back a year. It comes the next
    morning, not in a year, and the move is on record."""
    clocks = TwoClocks(monkeypatch, start=WRONG)
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/remind every day 9:00 pills")
        await clocks.awake(timedelta(minutes=5), step=FIVE_S, idle=service.idle)
        assert reminders(h) == ["Reminder: pills"]
        clocks.step(-YEAR)  # NTP: 2026-03-10 09:03
        await clocks.awake(A_FEW_SECONDS, step=FIVE_S, idle=service.idle)
        listed = await h.say("/remind list")
        assert "next Wed 2026-03-11 09:00" in listed, listed
        await awake_past(clocks, service, NEXT_MORNING)
        assert reminders(h) == ["Reminder: pills"] * 2, "the daily reminder waits a year"
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.moved")
        assert event.detail["was"].startswith("2027-03-11T09:00")


async def test_a_daily_reminder_runs_again_when_steward_restarts_on_a_clock_set_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same across a restart: no step is seen, the stored next run (a year on) is
    looked at as the scheduler starts."""
    clocks = TwoClocks(monkeypatch, start=WRONG)
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/remind every day 9:00 pills")
        await clocks.awake(timedelta(minutes=5), step=FIVE_S, idle=service.idle)
        assert reminders(h) == ["Reminder: pills"]
    clocks.step(-YEAR)  # set right while Steward was stopped
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await awake_past(clocks, service, NEXT_MORNING)
        assert reminders(h) == ["Reminder: pills"], "the daily reminder waits a year"


async def test_a_clock_set_back_an_hour_after_the_run_does_not_bring_it_again_today(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a next run beyond the one after its next time is moved: the 09:00 pills, then
    the clock set back an hour (09:00 comes round again on the wall), come once today and
    again tomorrow, while running and across a restart."""
    clocks = TwoClocks(monkeypatch, start=WRONG)
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/remind every day 9:00 pills")
        await clocks.awake(timedelta(minutes=5), step=FIVE_S, idle=service.idle)
        clocks.step(timedelta(hours=-1))  # 08:03
        await clocks.awake(timedelta(hours=2), step=timedelta(minutes=5), idle=service.idle)
        assert reminders(h) == ["Reminder: pills"], "09:00 came twice today"
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await awake_past(clocks, service, WRONG + timedelta(days=1, minutes=2))  # 03-11 09:00
        assert reminders(h) == ["Reminder: pills"]
        assert await h.steward.stores.audit.recent(5, kind="schedule.moved") == []
