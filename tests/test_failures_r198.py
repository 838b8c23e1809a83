"""R198, when SQLite cannot be written: a reminder due meanwhile, a turn the disk filled under,
and a database another program holds locked.

The disk is "full" through SQLite's own limit on the file (`PRAGMA max_page_count`), which
fails writes with SQLITE_FULL as a full disk does (as in tests/test_disk_full.py); the lock is
another connection inside BEGIN IMMEDIATE, as a `sqlite3` shell would hold it. The scheduler
runs with its real alarm on fake clocks (tests/fake_clocks.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_clocks import TwoClocks
from fakes.anthropic import FakeAnthropic
from harness import Harness, running_steward

from agent.scheduler import SchedulerService
from agent.tools import Risk, ToolContext, tool
from agent.types import SILENT_REPLY
from bot.router import LOCKED_UNFINISHED, LOCKED_UNSTORED
from memory.errors import StorageFailed

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=10)


def reminders(h: Harness) -> list[str]:
    return [t for t in h.channel.texts("c1") if t.startswith("Reminder:")]


async def _fill(h: Harness) -> None:
    """Use up every page the database may have (a disk filling up)."""
    db = h.steward.stores.db
    [chat_id] = {m.chat_id for m in await h.steward.stores.messages.all(direction="in")}
    await db.execute(f"PRAGMA max_page_count = {await db.scalar('PRAGMA page_count')}")
    for size in (4000, 400, 40, 1):
        with contextlib.suppress(StorageFailed):
            for n in range(10_000):
                await h.steward.stores.messages.record_incoming(
                    chat_id=chat_id,
                    user_id=None,
                    text="x" * size,
                    platform_message_id=f"filler-{size}-{n}",
                    in_history=False,
                )


async def _room(h: Harness) -> None:
    await h.steward.stores.db.execute("PRAGMA max_page_count = 1073741823")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Another program holds the database's write lock (a sqlite3 shell in a transaction)."""
    with closing(sqlite3.connect(path, timeout=1, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


async def test_a_reminder_due_on_a_full_disk_goes_out_once_there_is_room_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R198: the run failed on the full disk, its alarm was spent and none was set again: the
    reminder waited for a restart, and then said "I wasn't running when it fell due"."""
    clocks = TwoClocks(monkeypatch, start=NOW)
    async with running_steward(tmp_path, None, clock=clocks.clock) as h:
        service = h.steward.scheduler
        assert isinstance(service, SchedulerService)
        await service.start()
        try:
            await h.say("/remind 5m tea")
            await _fill(h)
            await clocks.awake(timedelta(minutes=8), step=STEP, idle=service.idle)
            assert reminders(h) == []  # it could not be claimed nor sent: the disk is full
            await _room(h)
            await clocks.awake(timedelta(minutes=1), step=STEP, idle=service.idle)
            sent = reminders(h)
            await clocks.awake(timedelta(minutes=2), step=STEP, idle=service.idle)
            assert reminders(h) == sent  # once
        finally:
            await service.stop()
    [said] = sent
    assert said.startswith("Reminder: tea\n(late by 3 min")
    assert said.endswith(": my data disk was full or could not be written when it fell due)")


async def test_a_reminder_due_while_another_program_locks_the_database_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks = TwoClocks(monkeypatch, start=NOW)
    async with running_steward(tmp_path, None, clock=clocks.clock) as h:
        service = h.steward.scheduler
        assert isinstance(service, SchedulerService)
        await service.start()
        try:
            await h.say("/remind 5m tea")
            with _locked(h.settings.database_path):  # tried once (its busy wait: 5 s)
                await clocks.awake(timedelta(minutes=5, seconds=20), step=STEP, idle=service.idle)
                assert reminders(h) == []
            await clocks.awake(timedelta(minutes=2), step=timedelta(minutes=2), idle=service.idle)
        finally:
            await service.stop()
    [said] = reminders(h)
    assert said.startswith("Reminder: tea\n(late by 2 min")
    assert said.endswith(": another program had my database locked when it fell due)")


@contextlib.contextmanager
def _locked_for(path: Path, seconds: float) -> Iterator[None]:
    """Another program takes the database's write lock now and holds it `seconds` (longer than
    Steward's busy wait), from a thread of its own, as a shell in another terminal would."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            taken.set()
            done.wait(seconds)
            other.execute("ROLLBACK")

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    taken.wait(10)
    try:
        yield
    finally:
        holder.join(seconds + 10)


async def test_a_message_while_another_program_locks_the_database_is_told_so(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R198: the owner was told "the disk holding my data is full or cannot be written"."""
    fake_model.reply_text("Hello!")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        with _locked(h.settings.database_path):
            said = await h.say("hi")
        assert said == LOCKED_UNSTORED
        assert await h.say("hi again") == "Hello!"
    assert "disk" not in said and "sqlite3 shell" in said


async def test_a_write_refused_mid_turn_is_told_once_not_as_try_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R198: after the turn had acted, its next write was refused; the owner got "Sorry,
    something went wrong … please try again" (inviting a second run of what had run), then
    "I could not record my answer … check what was done". Only the second is true."""
    acted: list[str] = []
    path = tmp_path / "steward.db"

    @tool(risk=Risk.READ)
    async def archive_logs(ctx: ToolContext) -> str:
        """Archive the logs (while, here, another program takes the database for 8 s)."""
        acted.append("archived")
        holding.enter_context(_locked_for(path, 8.0))
        return "archived"

    fake_model.reply_tool_use("archive_logs", {})
    fake_model.reply_text("Archived them.")
    with contextlib.ExitStack() as holding:
        async with running_steward(tmp_path, fake_model.base_url) as h:
            assert h.settings.database_path == path
            h.steward.tools.register(archive_logs)
            await h.say("archive the logs")
            said = h.channel.texts()
    assert acted == ["archived"]
    assert said[-1] == LOCKED_UNFINISHED
    assert not [t for t in said if "try again" in t], said


async def test_a_task_held_back_by_a_locked_database_tells_the_model_why_it_is_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_model: FakeAnthropic
) -> None:
    """R198's fix for reminders left tasks: a task held back (the database locked, the disk
    full) told the model "the computer Steward runs on was asleep, or its clock was changed",
    for the model to tell the owner."""
    clocks = TwoClocks(monkeypatch, start=NOW)
    fake_model.reply_text(SILENT_REPLY)
    async with running_steward(tmp_path, fake_model.base_url, clock=clocks.clock) as h:
        service = h.steward.scheduler
        assert isinstance(service, SchedulerService)
        await service.start()
        try:
            await h.say("/remind 1h tea")  # its chat and destination, for the task's
            [owner] = {m.user_id for m in await h.steward.stores.messages.all(direction="in")}
            assert owner is not None
            [reminder] = await h.steward.stores.schedules.for_user(owner, ("reminder",))
            await h.steward.stores.schedules.add(
                user_id=owner, chat_id=reminder.chat_id, kind="task",
                trigger={"type": "once"}, payload={"text": "check the build"},
                next_run_at=NOW + timedelta(minutes=5), destination=reminder.destination,
            )  # fmt: skip
            await service.sync_alarms()
            with _locked(h.settings.database_path):  # tried once (its busy wait: 5 s)
                await clocks.awake(timedelta(minutes=5, seconds=20), step=STEP, idle=service.idle)
            assert not fake_model.requests
            await clocks.awake(timedelta(minutes=2), step=timedelta(minutes=2), idle=service.idle)
        finally:
            await service.stop()
    [trigger] = [r.last_user_text for r in fake_model.requests if "check the" in r.last_user_text]
    assert "asleep" not in trigger, trigger
    assert "another program had my database locked when it fell due" in trigger
