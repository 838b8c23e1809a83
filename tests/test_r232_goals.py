"""R232: goals tracked across months. Check-ins due together in one chat are one turn and one
message (25 goals at 09:00 were 25 messages and 25 model calls); a closed goal's due date stays
its day across /timezone and a new STEWARD_TIMEZONE; the check-in prompt's "Last check-in" is
the last one sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply, Usage
from harness import Harness, echo_reply, running_steward

from agent.scheduler import SchedulerService
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


# -- F1: one message for the check-ins due together --------------------------------------------


async def test_check_ins_due_together_are_one_turn_and_one_message(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("hi")
        await _goals(h, 25)
        before, calls = len(h.channel.sent), len(fake_model.requests)
        clock.advance(timedelta(hours=1, minutes=30))
        await scheduler(h).run_due()
        posted = [t for _, t in h.channel.sent[before:]]
        assert posted == [NUDGE], posted
        [prompt] = checkin_prompts(fake_model)[-1:]
        assert len(fake_model.requests) - calls == 1
        assert all(f"goal #{i}: “Habit number {i}”" in prompt for i in range(1, 26)), prompt
        assert "25 goal check-ins are due together" in prompt
        # each schedule is on record as run (sent, by that one turn) and waits for tomorrow
        store = scheduler(h).store
        for schedule in await store.for_user(1, ("checkin",)):
            [run] = await store.runs(schedule.id)
            assert run.status.value == "sent", run
            assert schedule.next_run_at == datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
        clock.advance(timedelta(minutes=1))
        assert await scheduler(h).run_due() == []
        assert len(h.channel.sent) == before + 1
        # the next morning: one message again
        clock.advance(timedelta(days=1))
        await scheduler(h).run_due()
        assert [t for _, t in h.channel.sent[before:]] == [NUDGE, NUDGE]


async def test_check_ins_held_by_quiet_hours_come_as_one_message(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Quiet hours move every check-in to their end, the same minute: still one message."""
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/quiet 22:00-09:30")
        await _goals(h, 6)
        before = len(h.channel.sent)
        clock.advance(timedelta(hours=1))  # 09:00: held back
        reports = await scheduler(h).run_due()
        assert {r.status for r in reports} == {"deferred"} and len(reports) == 6
        assert len(h.channel.sent) == before
        clock.advance(timedelta(minutes=31))
        await scheduler(h).run_due()
        assert [t for _, t in h.channel.sent[before:]] == [NUDGE]


async def test_a_group_skipped_for_the_budget_is_named_and_counted_then_comes_the_next_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    def spend(request: RecordedRequest) -> Reply:
        if "Goal check-in for goal" in request.last_user_text:
            return Reply.text(NUDGE, usage=Usage(900, 100, 0, 0))
        return Reply.text("ok", usage=Usage(3000, 0, 0, 0))  # the day's budget, spent

    fake_model.on_request(spend)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_DAILY_TOKEN_BUDGET="2000"
    ) as h:
        await _goals(h, 4)
        await h.say("tell me a long story")
        before, calls = len(h.channel.sent), len(fake_model.requests)
        clock.advance(timedelta(hours=1))
        await scheduler(h).run_due()
        assert len(fake_model.requests) == calls  # no model call
        notices = [t for _, t in h.channel.sent[before:] if "token budget" in t]
        assert len(notices) == 1 and "your check-in for goal #1 “Habit number 1”" in notices[0]
        assert NUDGE not in h.channel.texts()
        assert "Skipped today for the budget: 4 check-ins" in await h.say("/usage")
        clock.advance(timedelta(days=1))  # a new day, a new budget
        await scheduler(h).run_due()
        assert h.channel.texts().count(NUDGE) == 1
        assert len(checkin_prompts(fake_model)) == 1


async def test_a_goal_that_is_not_due_is_left_out_of_the_group(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Progress noted quiets that goal's check-in alone: the others still go, together."""
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await _goals(h, 3)
        clock.advance(timedelta(minutes=10))
        await h.say("/goal note 2 did it")
        clock.advance(timedelta(minutes=50))
        reports = await scheduler(h).run_due()
        prompt = checkin_prompts(fake_model)[-1]
        assert "goal #1:" in prompt and "goal #3:" in prompt and "goal #2:" not in prompt
        skipped = [r for r in reports if r.status == "skipped"]
        assert len(skipped) == 1 and skipped[0].reason.startswith("progress noted")
        assert h.channel.texts().count(NUDGE) == 1


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
