"""R247: R240 brought a daily check-in's next run back from a year ahead, but the check-in
sent on the fast clock keeps its started_at a year ahead, and CheckinJob._unanswered reads
`now - last.started_at < MIN_APART` (negative: under 20 hours) for a year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import running_steward
from test_r232_goals import checkin_prompts, nudge, scheduler

from memory.clock import FrozenClock

YEAR = timedelta(days=365)


async def test_a_daily_check_in_comes_again_after_a_fast_clock_is_set_right(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(nudge)
    clock = FrozenClock(datetime(2027, 3, 10, 8, 0, tzinfo=UTC))  # a year fast
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Run a 10k")
        await h.say("/goal every 1 daily 9:00")
        clock.advance(timedelta(hours=1, minutes=30))  # 2027-03-10 09:30
        await scheduler(h).run_due()
        assert len(checkin_prompts(fake_model)) == 1
        await h.say("on it")
    clock.advance(-YEAR)  # NTP sets it right while Steward is stopped: 2026-03-10 09:30
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await scheduler(h).start(alarm=False)  # R240's _bring_back: next run 2026-03-11 09:00
        for _ in range(3):  # three mornings
            clock.advance(timedelta(days=1))
            reports = await scheduler(h).run_due()
            await h.say("on it")
        reasons = [r.reason for r in reports]
    assert len(checkin_prompts(fake_model)) > 1, reasons
