"""R203: a reminder whose message was stored just before another program locked the database
(its send could not begin) was settled as "the message log delivers it", and waited, pending,
for a restart: the redelivery loop took only failed messages.

The lock is another connection inside BEGIN IMMEDIATE (tests/test_failures_r198.py), taken at
the moment Steward's connection is about to note the reminder's send (SQLite's trace callback);
the scheduler runs with its real alarm on fake clocks.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from pathlib import Path

import pytest
from fake_clocks import TwoClocks
from harness import Harness, running_steward, until
from test_failures_r198 import NOW, STEP, _locked_for, reminders

from agent.scheduler import SchedulerService


async def _lock_at_the_next_send(h: Harness, holding: contextlib.ExitStack) -> None:
    """Another program takes the lock (for longer than Steward's busy wait) just before the
    next send is noted: the message is stored, its send cannot begin."""
    path = h.settings.database_path
    conn = h.steward.stores.db._conn

    taken: list[bool] = []

    def trace(statement: str) -> None:
        if "SET sending_since" in statement and not taken:
            taken.append(True)
            holding.enter_context(_locked_for(path, 6.5))

    await conn.set_trace_callback(trace)


async def test_a_reminder_stored_before_a_lock_goes_out_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks = TwoClocks(monkeypatch, start=NOW)
    with contextlib.ExitStack() as holding:
        async with running_steward(tmp_path, None, clock=clocks.clock) as h:
            service = h.steward.scheduler
            assert isinstance(service, SchedulerService)
            redelivery = asyncio.create_task(h.steward.courier.keep_redelivering(every=0.2))
            await service.start()
            try:
                await h.say("/remind 5m tea")
                await _lock_at_the_next_send(h, holding)
                await clocks.awake(timedelta(minutes=5, seconds=20), step=STEP, idle=service.idle)
                assert reminders(h) == []  # stored; its send could not begin
                await h.steward.stores.db._conn.set_trace_callback(None)
                await clocks.awake(timedelta(minutes=1), step=STEP, idle=service.idle)
                await until(lambda: reminders(h), "the reminder, from the redelivery", 10)
            finally:
                redelivery.cancel()
                await service.stop()
            events = await h.steward.stores.audit.recent(20, kind="schedule.recovered")
    assert [e.detail["outcome"] for e in events] == ["stored before the failed write"]
    [said] = reminders(h)
    assert said.startswith("Reminder: tea"), said
