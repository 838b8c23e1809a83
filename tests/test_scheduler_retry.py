"""A scheduled job whose model call fails for a while tries again, and says which job gave up
(R156: a task set "in 10 minutes" was consumed by one overloaded minute of the model API, and
the owner, who had asked nothing, was told "Sorry, I couldn't answer … please try again")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from harness import Harness, running_steward

from memory.clock import FrozenClock

TASK = "check whether the train strike is over"


@asynccontextmanager
async def _task_set(
    tmp_path: Path, fake_model: FakeAnthropic
) -> AsyncIterator[tuple[Harness, FrozenClock]]:
    """A Steward at 10:00 whose owner set a task for 10:10."""
    clock = FrozenClock(datetime(2026, 3, 25, 10, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        fake_model.reply_tool_use("task_add", {"when": "in 10 minutes", "instruction": TASK})
        fake_model.reply_text("Will do.")
        await h.say("in 10 minutes check whether the strike is over")
        yield h, clock


async def test_a_task_whose_model_call_failed_runs_again_later(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async with _task_set(tmp_path, fake_model) as (h, clock):
        told = len(h.channel.texts())
        fake_model.fail(529, times=1000, retry_after=0.01)
        clock.advance(timedelta(minutes=11))
        (failed,) = await h.steward.scheduler.run_due()
        assert failed.status == "failed" and "trying again in 5 min" in failed.reason
        assert len(h.channel.texts()) == told, "the owner asked nothing: no apology"
        assert TASK in await h.say("/remind list")
        told = len(h.channel.texts())
        fake_model.reset()
        fake_model.on_request(lambda _: Reply.text("The strike is over."))
        clock.advance(timedelta(minutes=6))
        (ran,) = await h.steward.scheduler.run_due()
        assert ran.status == "sent"
        assert h.channel.texts()[told:] == ["The strike is over."]
        assert "No reminders" in await h.say("/remind list")


async def test_a_task_that_keeps_failing_is_named_when_it_gives_up(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async with _task_set(tmp_path, fake_model) as (h, clock):
        told = len(h.channel.texts())
        fake_model.fail(529, times=10_000, retry_after=0.01)
        runs = []
        for _ in range(8 * 12):  # eight hours, five minutes at a time
            clock.advance(timedelta(minutes=5))
            runs += await h.steward.scheduler.run_due()
        said = h.channel.texts()[told:]
        listed = await h.say("/remind list")
    assert 4 <= len(runs) <= 12, [r.reason for r in runs]  # backing off: not every 5 minutes
    assert all(r.status == "failed" for r in runs)
    assert len(said) == 1, said
    assert said[0].startswith(f"Your scheduled task “{TASK}” did not run:")
    assert "overloaded" in said[0] and f"I tried {len(runs)} times over" in said[0], said[0]
    assert "No reminders" in listed


async def test_a_daily_tasks_failure_yesterday_does_not_stop_todays_tries(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R157: the failing streak was counted across days: yesterday's one failure meant no try
    again today, and a false "I tried for 6 hours"."""
    clock = FrozenClock(datetime(2026, 3, 25, 7, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        fake_model.reply_tool_use("task_add", {"when": "every day 9:00", "instruction": TASK})
        fake_model.reply_text("Will do.")
        await h.say("every day at 9 check the strike")
        fake_model.fail(400, message="bad request")  # day 1: refused, not retried
        clock.advance(timedelta(hours=2, minutes=1))  # 9:01
        (day1,) = await h.steward.scheduler.run_due()
        assert day1.status == "failed" and "trying again" not in day1.reason
        fake_model.fail(529, times=1000, retry_after=0.01)
        clock.advance(timedelta(days=1))
        (day2,) = await h.steward.scheduler.run_due()
        assert "trying again in 5 min" in day2.reason, day2.reason


async def test_a_task_tried_again_is_told_it_runs_late_and_why(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R157: a task due at 10:10 and tried again until 10:40 ran as if on time ("at this
    time"): its lateness was counted from the try again's time."""
    async with _task_set(tmp_path, fake_model) as (h, clock):
        fake_model.fail(529, times=1000, retry_after=0.01)
        for minutes in (11, 5, 5, 10):  # due 10:10; fails at 10:11, 10:16, 10:21
            clock.advance(timedelta(minutes=minutes))
            await h.steward.scheduler.run_due()
        fake_model.reset()
        fake_model.on_request(lambda _: Reply.text("Checked."))
        clock.advance(timedelta(minutes=20))
        (ran,) = await h.steward.scheduler.run_due()
    assert ran.status == "sent"
    prompt = fake_model.requests[-1].last_user_text
    assert "late: the model API was failing at its time" in prompt, prompt


async def test_a_task_the_model_answers_without_a_word_is_not_dropped_silently(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R157: an empty answer to a task was taken for the model's choice to say nothing."""
    async with _task_set(tmp_path, fake_model) as (h, clock):
        told = len(h.channel.texts())
        fake_model.reply_text("")
        clock.advance(timedelta(minutes=11))
        (ran,) = await h.steward.scheduler.run_due()
        said = h.channel.texts()[told:]
    assert ran.status == "sent"
    assert said == ["(The model gave no answer for this task.)"]


async def test_a_try_again_after_days_down_counts_from_todays_time(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R158: down three days, a daily task failed at today's 9:00, and its try again was told
    it ran three days late (from the stale first missed time), blaming the model API."""
    clock = FrozenClock(datetime(2026, 3, 25, 7, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        fake_model.reply_tool_use("task_add", {"when": "every day 9:00", "instruction": TASK})
        fake_model.reply_text("Will do.")
        await h.say("every day at 9 check the strike")
        clock.advance(timedelta(days=3, hours=2, minutes=1))  # 9:01, three days on
        fake_model.fail(529, times=1000, retry_after=0.01)
        (failed,) = await h.steward.scheduler.run_due()
        assert "trying again in 5 min" in failed.reason, failed.reason
        fake_model.reset()
        fake_model.on_request(lambda _: Reply.text("Checked."))
        clock.advance(timedelta(minutes=6))
        (ran,) = await h.steward.scheduler.run_due()
    assert ran.status == "sent"
    prompt = fake_model.requests[-1].last_user_text
    assert "(It runs 7 min late: the model API was failing" in prompt, prompt
