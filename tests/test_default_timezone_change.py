"""A new STEWARD_TIMEZONE between starts moves recurring times, the briefing and goal due dates
of everyone on the default zone, as /timezone does; someone with a zone of their own keeps it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import Harness, running_steward

from agent.scheduler import SchedulerService
from memory.clock import FrozenClock
from memory.people import Identity

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # a Wednesday
LISBON = ZoneInfo("Europe/Lisbon")  # UTC+1 in June
FRIEND = Identity("test", "friend")


def scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


async def next_run(h: Harness, schedule_id: int) -> datetime:
    schedule = await scheduler(h).store.get(schedule_id)
    assert schedule is not None and schedule.next_run_at is not None
    return schedule.next_run_at


async def test_a_new_default_timezone_moves_reminders_briefing_and_due_dates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:  # the default: UTC
        assert "every day at 08:00" in await h.say("/remind every day at 8 pills")  # 1
        await h.say("/briefing at 07:00")  # 2
        await h.say("/goal add File taxes")
        assert await h.say("/goal due 1 friday") == "#1 is due Fri 2026-06-12."  # check-in: 3
        await h.steward.stores.people.admit(FRIEND, "Friend")
        await h.say("/timezone Asia/Tokyo", sender=FRIEND, chat="f")
        await h.say("/remind every day at 8 tea", sender=FRIEND, chat="f")  # 4
        friends = await next_run(h, 4)

    caplog.set_level(logging.INFO, logger="agent.scheduler.default_zone")
    async with running_steward(tmp_path, None, clock=clock, STEWARD_TIMEZONE="Europe/Lisbon") as h:
        assert (await next_run(h, 1)).astimezone(LISBON) == datetime(2026, 6, 11, 8, tzinfo=LISBON)
        assert (await next_run(h, 2)).astimezone(LISBON) == datetime(2026, 6, 11, 7, tzinfo=LISBON)
        assert "(next Thu 2026-06-11 08:00)" in await h.say("/remind list")
        shown = await h.say("/goal show 1")
        assert "Due: Fri 2026-06-12\n" in shown, shown
        assert "Check-ins: Thu 2026-06-11 09:00" in shown, shown
        assert await next_run(h, 4) == friends  # 08:00 in Tokyo, as before
        [line] = [r.getMessage() for r in caplog.records if "STEWARD_TIMEZONE" in r.getMessage()]
        assert "2 recurring schedule(s) and 1 goal due date(s)" in line, line

        clock.advance(timedelta(hours=19))  # Thu 07:00 UTC, 08:00 in Lisbon: on time
        reports = await scheduler(h).run_due()
        [pills] = [r for r in reports if r.schedule_id == 1]
        assert pills.status == "sent" and "late" not in pills.reason, pills

    caplog.clear()
    async with running_steward(
        tmp_path, None, clock=clock, STEWARD_TIMEZONE="Europe/Lisbon"
    ) as h:  # the same zone again: nothing moves
        assert "Due: Fri 2026-06-12\n" in await h.say("/goal show 1")
        assert not [r for r in caplog.records if "STEWARD_TIMEZONE" in r.getMessage()]


async def test_a_reminder_due_while_down_still_comes_late_under_a_new_default(
    tmp_path: Path,
) -> None:
    """The missed run is not skipped by the move: it is sent "late", then follows Lisbon."""
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind every day at 13 lunch pills")
    clock.advance(timedelta(hours=2))  # 14:00 UTC: 13:00 UTC passed while it was down
    async with running_steward(tmp_path, None, clock=clock, STEWARD_TIMEZONE="Europe/Lisbon") as h:
        reports = await scheduler(h).run_due()
        assert [(r.kind, r.status) for r in reports] == [("reminder", "sent")], reports
        assert (await next_run(h, 1)).astimezone(LISBON) == datetime(2026, 6, 11, 13, tzinfo=LISBON)


async def test_a_due_date_keeps_its_day_between_zones_a_day_apart(tmp_path: Path) -> None:
    """Review 85: the end of Saturday in a +14 zone is 23:59 of Friday at -10; read as "moved
    already", the goal was left due a day early, by /timezone and by a new default alike."""
    wednesday = FrozenClock(datetime(2026, 6, 10, 12, 0, tzinfo=UTC))
    async with running_steward(tmp_path / "a", None, clock=wednesday) as h:
        await h.say("/timezone Pacific/Kiritimati")
        await h.say("/goal add File taxes")
        assert "Sat 2026-06-13" in await h.say("/goal due 1 saturday")
        await h.say("/timezone Pacific/Honolulu")
        assert "Due: Sat 2026-06-13" in await h.say("/goal show 1")
    auckland = {"STEWARD_TIMEZONE": "Pacific/Auckland"}  # UTC+13 in December
    async with running_steward(tmp_path / "b", None, clock=wednesday, **auckland) as h:
        await h.say("/goal add File taxes")
        assert "2026-12-18" in await h.say("/goal due 1 2026-12-18")
    pago = {"STEWARD_TIMEZONE": "Pacific/Pago_Pago"}  # UTC-11: 24 hours behind
    async with running_steward(tmp_path / "b", None, clock=wednesday, **pago) as h:
        assert "Due: Fri 2026-12-18" in await h.say("/goal show 1")
