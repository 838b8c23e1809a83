"""The alarm after a suspend or a wall-clock step, and what a late job says about why.

The scheduler's one alarm waits on an asyncio timer, on the monotonic clock, which on Linux does
not count a suspend and is not moved when the wall clock is set. Nothing looked at the alarm
again after either, so what fell due meanwhile waited after wake-up as long as the alarm still
had to run before it: a reminder due during a 10 h sleep came an hour after waking, and a 07:00
briefing on a laptop asleep overnight came at 15:30 and was skipped as missed, without a word.
Now the data-directory watch of `steward run` (`bot/lifecycle.py`, every 5 s anyway) has the
scheduler compare the two clocks and set its alarm again when they drifted apart.

And a late job said "I wasn't running when it fell due" even when Steward ran the whole time:
only the catch-up at start-up says so now; otherwise the machine slept or its clock changed.

Real APScheduler and core (tests/harness.py); only the clocks are fake (tests/fake_clocks.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fake_clocks import TwoClocks
from fakes.anthropic import FakeAnthropic
from harness import Harness, running_steward

from agent.paths import DataDirLock
from agent.scheduler import SchedulerService
from agent.scheduler.when import parse_reminder
from agent.types import Address
from bot.lifecycle import watch_data_dir
from memory.clock import FrozenClock

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
ASLEEP = "the computer I run on was asleep, or its clock was changed"
A_FEW_SECONDS = timedelta(seconds=10)  # two looks of the watch


def scheduler(h: Harness) -> SchedulerService:
    assert isinstance(h.steward.scheduler, SchedulerService)
    return h.steward.scheduler


def reminders(h: Harness) -> list[str]:
    return [t for t in h.channel.texts("c1") if t.startswith("Reminder:")]


@asynccontextmanager
async def running_scheduler(h: Harness, tmp_path: Path) -> AsyncIterator[SchedulerService]:
    """The scheduler started, with the data-directory watch beside it as `steward run` has it
    (bot/app.py)."""
    service = scheduler(h)
    lock = DataDirLock(tmp_path / "watched").acquire()
    stop = asyncio.Event()
    await service.start()
    watch = asyncio.create_task(watch_data_dir(lock, stop, each=service.check_clock))
    try:
        yield service
    finally:
        stop.set()
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await service.stop()
        lock.release()


async def test_a_reminder_due_while_the_laptop_slept_goes_out_as_it_wakes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks = TwoClocks(monkeypatch, start=NOW)
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/remind 1h stand up")
        await clocks.awake(timedelta(minutes=10), idle=service.idle)
        clocks.suspend(timedelta(hours=10))  # the lid closed at 12:10, opened at 22:10
        await clocks.awake(A_FEW_SECONDS, step=timedelta(seconds=5), idle=service.idle)
        assert reminders(h) == [f"Reminder: stand up\n(late by 9 h 10 min: {ASLEEP})"]


async def test_the_morning_briefing_on_a_laptop_asleep_overnight_comes_at_its_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Briefing at 07:00; the lid closed at 22:00 and opened at 06:30. It came at 15:30 and
    was skipped as missed (more than STEWARD_BRIEFING_GRACE), silently."""
    clocks = TwoClocks(monkeypatch, start=datetime(2026, 3, 10, 21, 0, tzinfo=UTC))
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/briefing at 07:00")
        sent_before = len(h.channel.sent)
        await clocks.awake(timedelta(hours=1), idle=service.idle)  # 22:00
        clocks.suspend(timedelta(hours=8, minutes=30))  # asleep until 06:30
        await clocks.awake(timedelta(minutes=25), idle=service.idle)  # 06:55
        assert len(h.channel.sent) == sent_before  # not before its time either
        await clocks.awake(timedelta(minutes=10), idle=service.idle)  # 07:05
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.run")
        assert event.detail["outcome"] == "sent" and event.detail["late_s"] < 60, event.detail
        assert len(h.channel.sent) > sent_before


async def test_a_box_without_a_clock_chip_sends_what_is_overdue_once_ntp_sets_its_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Raspberry Pi off for 3 days boots with the time it shut down at; Steward starts and
    finds nothing due; then NTP sets the clock 3 days on. The rent reminder, due a day after
    the shutdown, waited a day more (the alarm armed on the stale clock)."""
    clocks = TwoClocks(monkeypatch, start=NOW)
    async with running_steward(tmp_path, None, clock=clocks.clock) as h:
        await h.say("/remind 1d pay rent")
    clocks.suspend(timedelta(minutes=5))  # boots at the time it stopped at (+5 min)
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await clocks.awake(timedelta(minutes=1), idle=service.idle)
        assert reminders(h) == []
        clocks.step(timedelta(days=3))  # NTP
        await clocks.awake(A_FEW_SECONDS, step=timedelta(seconds=5), idle=service.idle)
        [sent] = reminders(h)
        assert sent.startswith("Reminder: pay rent\n(late by 2 d") and ASLEEP in sent


async def test_a_clock_set_a_day_forward_is_not_blamed_on_steward_being_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks = TwoClocks(monkeypatch, start=NOW)
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/remind 5m tea")
        clocks.step(timedelta(days=1))  # it was a day slow
        await clocks.awake(A_FEW_SECONDS, step=timedelta(seconds=5), idle=service.idle)
        [sent] = reminders(h)
        assert "wasn't running" not in sent and ASLEEP in sent


async def test_without_a_look_at_the_clocks_a_new_reminder_still_sets_the_alarm_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the watch (tests, another way of running Steward): anything that touches the
    alarm (here a new reminder) looks at the clocks too; it returned early, the earliest due
    time being unchanged."""
    clocks = TwoClocks(monkeypatch, start=NOW)
    async with running_steward(tmp_path, None, clock=clocks.clock) as h:
        service = scheduler(h)
        await service.start()
        try:
            await h.say("/remind 1h stand up")
            clocks.suspend(timedelta(hours=10))
            await clocks.awake(timedelta(minutes=5), idle=service.idle)
            await h.say("/remind 3h water the plants")
            await clocks.awake(timedelta(minutes=1), idle=service.idle)
            assert reminders(h) == [f"Reminder: stand up\n(late by 9 h 5 min: {ASLEEP})"]
        finally:
            await service.stop()


async def test_the_look_at_the_clocks_costs_an_idle_day_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle day with a reminder weeks away: the watch looks every 5 s, and while the two
    clocks agree no look reads the database or runs anything."""
    clocks = TwoClocks(monkeypatch, start=NOW)
    async with running_steward(tmp_path, None, clock=clocks.clock) as h:
        await h.say("/remind 2026-04-20 10:00 renew passport")
        service = scheduler(h)
        store = service.engine.store
        counts = {"queries": 0, "looks": 0, "moved": 0}
        real_next, real_check = store.next_run_time, service.engine.check_clock

        async def counted_next(**kwargs: object) -> datetime | None:
            counts["queries"] += 1
            return await real_next(**kwargs)  # type: ignore[arg-type]

        async def counted_check() -> bool:
            counts["looks"] += 1
            moved = await real_check()
            counts["moved"] += moved
            return moved

        monkeypatch.setattr(store, "next_run_time", counted_next)
        monkeypatch.setattr(service.engine, "check_clock", counted_check)
        async with running_scheduler(h, tmp_path):
            counts["queries"] = 0
            await clocks.awake(timedelta(hours=24), step=timedelta(minutes=10))
        assert counts["looks"] >= 100 and counts["moved"] == 0 and counts["queries"] == 0, counts
        assert reminders(h) == []


async def test_a_late_job_blames_downtime_only_at_start_up(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A late reminder or task run by the alarm (Steward was running) does not say Steward
    was down; the catch-up at start-up still does."""
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        service = scheduler(h)
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        chat = await h.steward.stores.people.chat("test", "c1", "private")

        async def task(text: str) -> None:
            parsed = parse_reminder(f"10m {text}", clock.now(), ZoneInfo("UTC"))
            await service.add_reminder(
                user=owner, chat=chat, address=Address("test", "c1"), parsed=parsed, kind="task"
            )

        await h.say("/remind 10m call back")
        await task("check the build")
        clock.advance(timedelta(hours=2, minutes=10))
        await service.run_due()  # the alarm, late: Steward ran all along
        assert reminders(h) == [f"Reminder: call back\n(late by 2 h: {ASLEEP})"]
        prompt = fake_model.requests[-1].last_user_text
        assert "2 h late: the computer Steward runs on was asleep, or its clock was changed" in (
            prompt
        )
        assert "not running" not in prompt
        await h.say("/remind 10m call again")
        await task("check the build again")
    clock.advance(timedelta(hours=3, minutes=10))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await scheduler(h).start(alarm=False)  # down meanwhile: caught up at start-up
        assert reminders(h) == [
            "Reminder: call again\n(late by 3 h: I wasn't running when it fell due)"
        ]
        assert "3 h late: Steward was not running." in fake_model.requests[-1].last_user_text


async def test_a_wait_said_as_time_survives_a_clock_set_back_and_a_time_of_day_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R101: "in 5 minutes", then the wall clock set back an hour (NTP, the owner): it came
    65 minutes later, as the moment on the clock it was stored as. A wait is a wait; "at
    13:00" stays at 13:00 on the clock."""
    clocks = TwoClocks(monkeypatch, start=NOW)  # 12:00
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/remind in 5 minutes tea")
        await h.say("/remind 13:00 call Ann")
        await clocks.awake(A_FEW_SECONDS, step=timedelta(seconds=5), idle=service.idle)
        clocks.step(timedelta(hours=-1))  # now 11:00:10 on the wall clock
        await clocks.awake(timedelta(minutes=6), step=timedelta(seconds=5), idle=service.idle)
        assert reminders(h) == ["Reminder: tea"]
        listed = await h.say("/remind list")
        assert "13:00 — call Ann" in listed and "tea" not in listed
