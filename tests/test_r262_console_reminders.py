"""R262: a job set in the owner's private chat on a channel that no longer runs (the console,
before the move to Telegram) goes to the owner's private chat on a running channel; a job for a
group, or a guest's, still waits where it was set, and a turn's run says it waits."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import Harness, RecordingChannel, running_steward

from agent.scheduler.service import SchedulerService
from agent.scheduler.when import parse_reminder
from agent.types import Address, ChatKind, IncomingMessage
from bot.channels.console import CONSOLE_ADDRESS, CONSOLE_IDENTITY
from bot.commands.access import apply_owner_settings
from memory.clock import FrozenClock
from memory.people import Identity

NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
TG = Identity("telegram", "1001")
GUEST = Identity("slack", "UGUEST")


def _outgoing(h: Harness) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(h.settings.database_path) as db:
        return db.execute(
            "SELECT chats.channel, chats.platform_chat_id, status, text FROM messages"
            " JOIN chats ON chats.id = messages.chat_id WHERE direction = 'out'"
        ).fetchall()


def _scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


async def _say(h: Harness, sender: Identity, address: Address, text: str, **kw: object) -> None:
    await h.router.dispatch(IncomingMessage(sender=sender, address=address, text=text, **kw))


async def test_a_reminder_set_on_the_console_reaches_the_owner_on_telegram(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(NOW)
    # run 1: the console only (a first run, no .env)
    async with running_steward(tmp_path, None, clock=clock, STEWARD_OWNER="console:owner") as h:
        await apply_owner_settings(h.steward.stores, [CONSOLE_IDENTITY])
        console = RecordingChannel(name="console")
        h.steward.switchboard.register("console", console)
        text = "/remind tomorrow 9:00 call the bank about the loan"
        await _say(h, CONSOLE_IDENTITY, CONSOLE_ADDRESS, text)
        assert console.texts()[0].startswith("OK, #1")
    # run 2: Telegram is set up; the console no longer runs
    owners = f"console:owner,{TG}"
    async with running_steward(tmp_path, None, clock=clock, STEWARD_OWNER=owners) as h:
        await apply_owner_settings(h.steward.stores, [CONSOLE_IDENTITY, TG])
        tg = RecordingChannel(name="telegram")
        h.steward.switchboard.register("telegram", tg)
        await _say(h, TG, Address("telegram", "1001"), "/remind list")
        clock.advance(timedelta(days=1))
        [report] = await _scheduler(h).run_due()
        assert (report.kind, report.status) == ("reminder", "sent")
        assert any(t.startswith("Reminder: call the bank about the loan") for t in tg.texts())
        waiting = [m for m in _outgoing(h) if m[0] == "console" and "Reminder" in m[3]]
        assert waiting == []  # nothing left for a console that is gone
        rerouted = await h.steward.stores.audit.recent(kind="schedule.rerouted")
        assert rerouted and rerouted[0].detail["sent_to"] == "telegram:1001"


async def test_a_group_job_and_a_guests_reminder_still_wait_where_they_were_set(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text("The ferry runs today.")
    clock = FrozenClock(NOW)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_OWNER=f"{TG}"
    ) as h:
        tg, slack = RecordingChannel(name="telegram"), RecordingChannel(name="slack")
        h.steward.switchboard.register("telegram", tg)
        h.steward.switchboard.register("slack", slack)
        await _say(h, TG, Address("telegram", "1001"), "/allow slack:UGUEST")
        team = Address("slack", "CTEAM")
        await _say(h, TG, team, "/remind 10m stand-up now", chat_kind=ChatKind.CHANNEL)
        await _say(h, GUEST, Address("slack", "DGUEST"), "/remind 10m water the plants")
        # the owner's task for the team channel: a turn, posted there
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        scheduler = _scheduler(h)
        chat = await h.steward.stores.people.chat("slack", "CTEAM", ChatKind.CHANNEL)
        parsed = parse_reminder("10m check the ferry", clock.now(), scheduler.zone_for(owner))
        await scheduler.add_reminder(
            user=owner, chat=chat, address=team, parsed=parsed, kind="task"
        )
        h.steward.switchboard.unregister("slack")  # Slack stops; Telegram runs
        before = len(tg.texts())
        clock.advance(timedelta(minutes=10))
        reports = await scheduler.run_due()
        assert len(reports) == 3
        assert tg.texts()[before:] == []  # neither came to the owner's private chat
        kept = [(m[1], m[2]) for m in _outgoing(h) if m[3].startswith("Reminder:")]
        assert sorted(kept) == [("CTEAM", "failed"), ("DGUEST", "failed")]
        [task] = [r for r in reports if r.kind == "task"]
        assert task.reason == "posted; it waits for slack, which is not running"
