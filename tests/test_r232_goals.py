"""R232: goals tracked across months. At most a few repeating check-ins a day go to one person,
the goals taking turns (25 goals at 09:00 were 25 messages and 25 model calls); a closed goal's
due date stays
its day across /timezone and a new STEWARD_TIMEZONE; the check-in prompt's "Last check-in" is
the last one sent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply, Usage
from harness import Harness, echo_reply, running_steward, until

from agent.scheduler import SchedulerService
from agent.scheduler.checkins import A_DAY
from memory.clock import FrozenClock

NUDGE = "NUDGE: how is it going?"


def scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


def checkin_prompts(model: FakeAnthropic) -> list[str]:
    return [
        r.last_user_text.rsplit("</context>", 1)[-1]
        for r in model.requests
        if "Goal check-in for goal" in r.last_user_text
    ]


def nudge(request: RecordedRequest) -> Reply:
    if "Goal check-in for goal" in request.last_user_text:
        return Reply.text(NUDGE, usage=Usage(900, 100, 0, 0))
    return echo_reply(request)


async def _goals(h: Harness, count: int, cadence: str = "daily 9:00") -> None:
    for i in range(count):
        await h.say(f"/goal add Habit number {i + 1}")
        await h.say(f"/goal every {i + 1} {cadence}")


# -- F1: a few check-ins a day, the goals taking turns ----------------------------------------


def goals_in(model: FakeAnthropic, start: int) -> list[int]:
    """The goals of the check-in prompts sent from the `start`th request on."""
    return [
        int(r.last_user_text.split("Goal check-in for goal #", 1)[1].split(":", 1)[0])
        for r in model.requests[start:]
        if "Goal check-in for goal" in r.last_user_text
    ]


async def test_many_daily_goals_are_a_few_check_ins_a_day_taking_turns(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """25 daily goals were 25 messages and 25 model calls every morning: A_DAY go, the goals
    least recently checked in on first, and the rest on the days after."""
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await _goals(h, 25)
        days = []
        for _ in range(3):
            calls = len(fake_model.requests)
            clock.advance(timedelta(days=1) if days else timedelta(hours=1, minutes=30))
            reports = await scheduler(h).run_due()
            days.append(goals_in(fake_model, calls))
            await h.say("on it")  # answered: the unanswered rule stays out of it
        skipped = [r.reason for r in reports if r.status == "skipped"]
    assert [len(day) for day in days] == [A_DAY] * 3
    assert days[0] == [1, 2, 3] and days[1] == [4, 5, 6] and days[2] == [7, 8, 9], days
    assert len(skipped) == 25 - A_DAY
    assert all(r.startswith(f"{A_DAY} check-ins went to you today already") for r in skipped)


async def test_a_due_dates_own_check_in_goes_however_many_went_that_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The day before a due date is its one check-in: never left for another day."""
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await _goals(h, A_DAY)
        await h.say("/goal add Tax return")
        await h.say(f"/goal due {A_DAY + 1} 2026-03-12")  # its check-in: Mar 11 09:00
        clock.advance(timedelta(days=1, hours=1, minutes=30))  # Mar 11 09:30
        calls = len(fake_model.requests)
        await scheduler(h).run_due()
    assert sorted(goals_in(fake_model, calls)) == [*range(1, A_DAY + 1), A_DAY + 1]


# -- F2: a closed goal's due date across a time zone change --------------------------------------


async def test_a_closed_goals_due_day_survives_a_timezone_change_and_reopen(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    clock = FrozenClock(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/goal add Tax return")
        assert await h.say("/goal due 1 2026-06-01") == "#1 is due Mon 2026-06-01."
        await h.say("/goal done 1")
        await h.say("/timezone Asia/Tokyo")
        listed = await h.say("/goal list all")
        assert await scheduler(h).store.for_user(1, ("checkin",)) == []  # none for it closed
        await h.say("/goal reopen 1")
        shown = await h.say("/goal show 1")
    assert "(due 2026-06-01)" in listed, listed
    assert "Due: Mon 2026-06-01\n" in shown, shown
    assert "Check-ins: Sun 2026-05-31 09:00" in shown, shown


async def test_a_new_default_timezone_moves_a_closed_goals_due_date(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 5, 4, 10, 0, tzinfo=UTC))
    async with running_steward(tmp_path, None, clock=clock) as h:  # UTC
        await h.say("/goal add Tax return")
        assert await h.say("/goal due 1 2026-06-01") == "#1 is due Mon 2026-06-01."
        await h.say("/goal drop 1")
    async with running_steward(tmp_path, None, clock=clock, STEWARD_TIMEZONE="Asia/Tokyo") as h:
        listed = await h.say("/goal list all")
        assert "(due 2026-06-01)" in listed, listed
        assert await scheduler(h).store.for_user(1, ("checkin",)) == []


# -- F3: the last check-in the prompt names is one that was sent -------------------------------


async def test_the_check_in_prompt_names_the_last_check_in_that_was_sent(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Three daily nudges go unanswered (Mar 11-13), the next are held back; the owner writes
    on Mar 30: the Mar 31 prompt names Mar 13, not Mar 30's skipped run. The first names
    none (not the schedule's making)."""
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Learn Spanish")
        await h.say("/goal every 1 daily 9:00")
        for _ in range(20):  # Mar 11 .. Mar 30
            clock.advance(timedelta(days=1))
            await scheduler(h).run_due()
        assert h.channel.texts().count(NUDGE) == 3
        clock.advance(timedelta(hours=2))
        await h.say("back from holiday")
        clock.advance(timedelta(hours=22))  # Mar 31 09:30
        await scheduler(h).run_due()
    assert h.channel.texts().count(NUDGE) == 4
    prompts = checkin_prompts(fake_model)
    assert "Last check-in: none yet." in prompts[0], prompts[0]
    assert "Last check-in: Fri 2026-03-13." in prompts[-1], prompts[-1]


async def test_the_daily_allowance_holds_when_alarms_overlap(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R234: goals due a minute apart, a model slower than that: each alarm's run counted only
    the check-ins already sent, not those waiting on the model, and all six went."""
    gate = asyncio.Event()

    async def slow(request: RecordedRequest) -> Reply:
        if "Goal check-in for goal" in request.last_user_text:
            await gate.wait()
        return nudge(request)

    fake_model.on_request(slow)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        for i in range(6):  # each in a chat of its own: no check-in waits behind another
            await h.say(f"/goal add Habit number {i + 1}", chat=f"c{i}")
            await h.say(f"/goal every {i + 1} daily 9:0{i}", chat=f"c{i}")
        calls = len(fake_model.requests)
        runs = []
        for i in range(6):
            clock.advance(datetime(2026, 3, 10, 9, i, 30, tzinfo=UTC) - clock.now())
            runs.append(asyncio.create_task(scheduler(h).run_due()))
            await until(  # asking the model (held), or done without it
                lambda i=i: len(goals_in(fake_model, calls)) > i or runs[-1].done(),
                f"the run of 9:0{i}",
            )
        gate.set()
        await asyncio.gather(*runs)
        assert goals_in(fake_model, calls) == [1, 2, 3]


async def test_a_guests_check_in_is_written_to_them_not_the_owner(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A guest's goal is checked in on in the guest's chat: the prompt said "Write the owner",
    and the model greeted the guest as if they were the owner, or spoke of "your owner"."""
    from memory.people import Identity

    fake_model.on_request(nudge)
    guest = Identity("test", "priya")
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.steward.stores.people.admit(guest, "Priya")
        await h.say("/goal add Run a 10k", sender=guest, chat="priya-dm")
        await h.say("/goal every 1 daily 9:00", sender=guest, chat="priya-dm")
        await h.say("/goal add Read more")
        await h.say("/goal every 2 daily 9:00")
        clock.advance(timedelta(hours=1, minutes=30))
        await scheduler(h).run_due()
        prompts = checkin_prompts(fake_model)
    guests = [p for p in prompts if "Run a 10k" in p]
    owners = [p for p in prompts if "Read more" in p]
    assert len(guests) == 1 and len(owners) == 1, prompts
    assert "Write the owner" not in guests[0]
    assert "the person this goal belongs to (not the owner)" in guests[0]
    assert "Write the owner one short" in owners[0]
