"""R224: a wall clock set back is seen by whichever looks at the clocks first.

`check_clock()` (the data-directory watch, every 5 s) moved waits said as time ("in 5 minutes")
back with the clock (R101), but `sync_alarms()` looks at the clocks too, and its look took the
step without moving them: a reminder added or cancelled in the seconds between the step and
the watch's next look, and "in 5 minutes" came 65 minutes later.

Real APScheduler and core (tests/harness.py); only the clocks are fake (tests/fake_clocks.py).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fake_clocks import TwoClocks
from harness import running_steward
from test_scheduler_wakeup import A_FEW_SECONDS, NOW, reminders, running_scheduler

FIVE_S = timedelta(seconds=5)


@pytest.mark.parametrize(
    ("before", "after", "reply"),
    [
        (None, "/remind 18:00 call Ann", "OK, #2"),  # a later reminder added
        ("/remind 18:00 call Ann", "/remind cancel 2", "Cancelled #2"),  # a later one cancelled
    ],
    ids=["added", "cancelled"],
)
async def test_a_wait_keeps_its_length_when_the_alarm_is_touched_right_after_a_set_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str | None, after: str, reply: str
) -> None:
    """The earliest alarm stays "tea" all along, so `sync_alarms()` only looks at the clocks:
    that look must move the wait back as `check_clock()` would have."""
    clocks = TwoClocks(monkeypatch, start=NOW)  # 12:00
    async with (
        running_steward(tmp_path, None, clock=clocks.clock) as h,
        running_scheduler(h, tmp_path) as service,
    ):
        await h.say("/remind in 5 minutes tea")
        if before is not None:
            await h.say(before)
        await clocks.awake(A_FEW_SECONDS, step=FIVE_S, idle=service.idle)
        clocks.step(timedelta(hours=-1))  # NTP sets the clock back: 11:00:10 on the wall
        assert (await h.say(after)).startswith(reply)  # before the watch's next look
        await clocks.awake(timedelta(minutes=4), step=FIVE_S, idle=service.idle)
        assert reminders(h) == [], "a wait is not cut short either"
        await clocks.awake(timedelta(minutes=2), step=FIVE_S, idle=service.idle)
        assert reminders(h) == ["Reminder: tea"], "the 5-minute wait came an hour late"
