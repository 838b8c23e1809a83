"""R224: the approvals-per-minute limit counted every request stamped after "a minute ago",
with no upper bound: after the wall clock was set back an hour, the last hour's requests
(stamped "later") counted as this minute's, and every action was refused without a card."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from trust_world import World, instruction, trust_world

from memory.clock import FrozenClock


async def _ask(w: World, command: str) -> None:
    await w.h.say(instruction("shell", {"command": command}))


async def test_requests_before_a_clock_set_back_do_not_count_as_this_minutes(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        for n in range(5):  # five requests over 40 minutes: never more than one a minute
            await _ask(w, f"mkdir job-{n}")
            [(_, card)] = w.h.channel.approvals[-1:]
            await w.h.say(f"/deny {card.approval_id}")
            clock.advance(timedelta(minutes=10))
        asked = len(w.h.channel.approvals)
        clock.advance(timedelta(hours=-1))  # NTP sets a fast clock right: 08:50
        clock.advance(timedelta(minutes=10))  # ten quiet minutes later
        await _ask(w, "mkdir wanted")
        assert await w.audit_kinds("approval.rate_limited") == [], "refused as a flood"
        assert len(w.h.channel.approvals) == asked + 1  # the owner got a card


async def test_a_burst_within_a_minute_is_still_refused(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        for n in range(5):
            await _ask(w, f"mkdir burst-{n}")
            clock.advance(timedelta(seconds=5))
        asked = len(w.h.channel.approvals)
        clock.advance(timedelta(seconds=-30))  # a small correction keeps them counted
        await _ask(w, "mkdir one-more")
        assert len(await w.audit_kinds("approval.rate_limited")) == 1
        assert len(w.h.channel.approvals) == asked
