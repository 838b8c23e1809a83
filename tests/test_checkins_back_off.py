"""Check-ins nobody answers stop until the owner writes, and none goes out twice in a day when
the time zone moves (R135: 28 daily nudges in a row, ignored, each one more memory; two
check-ins on the day a traveller changed zone)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import echo_reply, running_steward

from memory.clock import FrozenClock

NOW = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
"""Each day's look is at 09:30, half an hour after the check-ins' 09:00: at 08:00 each would be
23 h late with its next time an hour away, and skipped as slept through (R210)."""
NUDGE = "How's the training going? Try a 5 km run today."


def nudge(request: RecordedRequest) -> Reply:
    if "Goal check-in for goal" in request.last_user_text:
        return Reply.text(NUDGE)
    return echo_reply(request)


async def test_three_unanswered_check_ins_then_quiet_until_the_owner_writes(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(nudge)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Run a half marathon")
        await h.say("/goal every 1 daily 9:00")
        assert h.steward.scheduler is not None
        for _ in range(30):  # a month (R136: the window of runs read let 3 more out a week)
            clock.advance(timedelta(days=1))
            await h.steward.scheduler.run_due()
        assert h.channel.texts().count(NUDGE) == 3
        await h.say("sorry, been busy")
        clock.advance(timedelta(days=1))
        await h.steward.scheduler.run_due()
        assert h.channel.texts().count(NUDGE) == 4


async def test_a_time_zone_change_brings_no_second_check_in_that_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2026, 3, 10, 7, 30, tzinfo=UTC))  # 08:30 in Berlin
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/goal add Run a half marathon")
        await h.say("/goal every 1 daily 9:00")
        assert h.steward.scheduler is not None
        clock.advance(timedelta(hours=1))  # 09:30 Berlin: the first goes out
        await h.steward.scheduler.run_due()
        assert h.channel.texts().count(NUDGE) == 1
        clock.advance(timedelta(hours=1))
        await h.say("/timezone America/New_York")  # 05:30 there: 09:00 comes again today
        for _ in range(8):
            clock.advance(timedelta(hours=1))
            await h.steward.scheduler.run_due()
        assert h.channel.texts().count(NUDGE) == 1
        await h.say("on it")
        clock.advance(timedelta(days=1))
        await h.steward.scheduler.run_due()
        assert h.channel.texts().count(NUDGE) == 2
