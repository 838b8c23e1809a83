"""The scheduler across restarts and crashes, misfires, daylight saving, quiet hours, the idle
day, and the real APScheduler alarm on a short schedule.

(Over 400 lines: many short cases on one clock and store fixture.)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fakes.anthropic import FakeAnthropic
from harness import OWNER, Harness, RecordingChannel, names, running_steward

from agent.delivery import RESENT
from agent.scheduler import SchedulerService
from agent.scheduler.when import parse_reminder
from agent.types import Address, ChatKind, IncomingMessage
from memory.clock import FrozenClock, iso

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


def reminders(h: Harness) -> list[str]:
    return [t for t in h.channel.texts("c1") if t.startswith("Reminder:")]


async def stored_reminders(h: Harness) -> int:
    return len(
        await h.steward.stores.messages.find_text("Reminder:", direction="out", at_start=True)
    )


async def schedule_status(h: Harness) -> str:
    """The status of the test's one schedule."""
    schedule = await scheduler(h).store.get(1)
    assert schedule is not None
    return schedule.status


async def test_a_restart_between_scheduling_and_firing_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind 10m tea")
    clock.advance(timedelta(minutes=5))
    async with running_steward(tmp_path, None, clock=clock) as h:
        assert await scheduler(h).start(alarm=False) == []  # rebuilt, not yet due
        clock.advance(timedelta(minutes=5))
        [report] = await scheduler(h).run_due()
        assert report.status == "sent" and reminders(h) == ["Reminder: tea"]
    clock.advance(timedelta(minutes=5))
    async with running_steward(tmp_path, None, clock=clock) as h:
        assert await scheduler(h).start(alarm=False) == []
        assert reminders(h) == [] and await stored_reminders(h) == 1


async def test_a_reminder_missed_while_down_is_sent_at_start_up_marked_late(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind 10m call back")
    clock.advance(timedelta(hours=2, minutes=20))
    async with running_steward(tmp_path, None, clock=clock) as h:
        [report] = await scheduler(h).start(alarm=False)
        assert report.reason == "late by 2 h 10 min"
        assert reminders(h) == [
            "Reminder: call back\n(late by 2 h 10 min: I wasn't running when it fell due)"
        ]
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.run")
        assert event.detail["late_s"] == 2 * 3600 + 600


class HangingChannel(RecordingChannel):
    """A platform that never answers: the process dies while the send is under way."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = asyncio.Event()

    async def send_text(self, address: Address, text: str) -> str | None:
        self.sending.set()
        await asyncio.Event().wait()
        return None


async def test_a_crash_in_the_middle_of_sending_sends_once(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind 1m tea")
        h.steward.switchboard.register("test", hanging := HangingChannel())
        clock.advance(timedelta(minutes=1))
        run = asyncio.create_task(scheduler(h).run_due())
        # the send under way, not merely the reminder stored: cancelled before its send
        # began, it is sent after the restart as a first send, unmarked (and the test was
        # flaky under load)
        await asyncio.wait_for(hanging.sending.wait(), 30)
        run.cancel()  # the "crash": the reminder is stored but neither sent nor marked
        await asyncio.gather(run, return_exceptions=True)
    clock.advance(timedelta(minutes=3))
    async with running_steward(tmp_path, None, clock=clock) as h:
        assert await h.steward.courier.redeliver() == 1  # what app.run does at start-up
        assert await scheduler(h).start(alarm=False) == []
        # the send was under way: it goes once more, marked, never a silent second copy
        assert h.channel.texts("c1") == [f"{RESENT}\n\nReminder: tea"]
        assert await stored_reminders(h) == 1
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.recovered")
        assert event.detail["outcome"] == "sent before the restart"
        assert await schedule_status(h) == "done"


async def test_a_crash_after_sending_but_before_marking_done_does_not_send_again(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind 1m tea")
        clock.advance(timedelta(minutes=1))
        await scheduler(h).run_due()
        # The state a crash leaves when the "done" transaction never committed:
        h.edit_database("UPDATE schedule_runs SET status = 'firing', finished_at = NULL")
        due = iso(NOW + timedelta(minutes=1))
        h.edit_database("UPDATE schedules SET status = 'firing', next_run_at = ?", (due,))
    clock.advance(timedelta(hours=1))
    async with running_steward(tmp_path, None, clock=clock) as h:
        assert await scheduler(h).start(alarm=False) == []
        assert reminders(h) == [] and await stored_reminders(h) == 1
        assert await schedule_status(h) == "done"


async def test_a_crash_after_a_briefing_with_nothing_new_was_sent_does_not_send_it_again(
    tmp_path: Path,
) -> None:
    """With nothing new the briefing goes out without a turn, and recovery looked for a turn's
    reply only: a crash before the run was marked done sent it again at the next start."""
    clock = FrozenClock(NOW.replace(hour=5))
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/briefing at 07:00")
        clock.advance(timedelta(hours=2))
        [report] = await scheduler(h).run_due()
        assert report.status == "sent"
        assert len([t for t in h.channel.texts("c1") if t.startswith("Good morning")]) == 1
        h.edit_database("UPDATE schedule_runs SET status = 'firing', finished_at = NULL")
        h.edit_database(
            "UPDATE schedules SET status = 'firing', next_run_at = ? WHERE kind = 'briefing'",
            (iso(clock.now()),),
        )
    clock.advance(timedelta(minutes=10))
    async with running_steward(tmp_path, None, clock=clock) as h:
        await scheduler(h).start(alarm=False)
        assert [t for t in h.channel.texts("c1") if t.startswith("Good morning")] == []
        runs = await h.steward.stores.schedules.runs()
        assert [(r.kind, str(r.status)) for r in runs] == [("briefing", "sent")]


async def test_a_crash_after_claiming_but_before_sending_sends_late(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind 1m tea")
        clock.advance(timedelta(minutes=1))
        [schedule] = await scheduler(h).store.due(clock.now())
        assert await scheduler(h).store.claim(schedule, late_seconds=0, text="Reminder: tea")
    clock.advance(timedelta(minutes=30))
    async with running_steward(tmp_path, None, clock=clock) as h:
        [report] = await scheduler(h).start(alarm=False)
        assert report.status == "sent" and report.reason == "late by 30 min"
        assert await stored_reminders(h) == 1
        runs = await scheduler(h).store.runs()
        assert [r.status.value for r in runs] == ["interrupted", "sent"]


async def test_a_task_cut_short_after_it_acted_is_not_run_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A task's turn added a reminder (allowed unasked), then the process died before it
    replied; with no reply on record the task fired again and added a second one."""

    from fakes.anthropic import RecordedRequest, Reply

    hang = True

    async def model(request: RecordedRequest) -> Reply:
        content = request.messages[-1]["content"]
        if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
            if hang:
                await asyncio.Event().wait()  # the process dies here
            return Reply.text("Added the reminder.")
        return Reply.tool_uses([("reminder_add", {"when": "2026-03-20 09:00", "text": "rent"})])

    async def rent_reminders(h: Harness) -> int:
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        pending = await scheduler(h).pending_for(owner, ("reminder",))
        return len([s for s in pending if s.payload.get("text") == "rent"])

    fake_model.on_request(model)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        owner = await h.steward.stores.people.owner()
        chat = await h.steward.stores.people.chat("test", "c1", "private")
        task = parse_reminder("1m set my rent reminder", NOW, ZoneInfo("UTC"))
        await scheduler(h).add_reminder(
            user=owner, chat=chat, address=Address("test", "c1"), parsed=task, kind="task"
        )
        clock.advance(timedelta(minutes=1))
        run = asyncio.create_task(scheduler(h).run_due())
        for _ in range(500):
            if await rent_reminders(h):
                break
            await asyncio.sleep(0.01)
        run.cancel()  # the crash: the action ran, no reply yet
        await asyncio.gather(run, return_exceptions=True)
    hang = False
    clock.advance(timedelta(minutes=2))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        assert await scheduler(h).start(alarm=False) == []
        assert await rent_reminders(h) == 1
        [note] = [t for t in h.channel.texts("c1") if "I was restarted while" in t]
        assert "I did not run it again" in note
        runs = await scheduler(h).store.runs()
        assert [r.status.value for r in runs] == ["interrupted"]


async def test_recovery_binds_a_turn_to_its_own_run_not_another_of_the_chat(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Two tasks of one chat were both firing when Steward stopped; the first's turn had
    acted. Matched by chat and kind, that turn was taken for the second's too: the second,
    which never reached the model, was closed as 'cut short after acting' and lost."""

    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        stores, store = h.steward.stores, scheduler(h).store
        owner = await stores.people.owner()
        chat = await stores.people.chat("test", "c1", "private")
        for what in ("1m task A", "2m task B"):
            await scheduler(h).add_reminder(
                user=owner, chat=chat, address=Address("test", "c1"),
                parsed=parse_reminder(what, NOW, ZoneInfo("UTC")), kind="task",
            )  # fmt: skip
        clock.advance(timedelta(minutes=2))
        first, second = await store.due(clock.now())
        run_a = await store.claim(first, late_seconds=0, text=None)
        assert run_a is not None and await store.claim(second, late_seconds=0, text=None)
        turn = await stores.turns.start(  # A's turn, which wrote a file, then the crash
            kind="task", model="m", chat_id=chat.id, user_id=owner.id, message_id=None,
            run_id=run_a,
        )  # fmt: skip
        await stores.audit.record(
            "tool.requested", actor=f"turn:{turn}", subject="write_file",
            risk="write_internal", decision="allow",
        )  # fmt: skip
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        reports = await scheduler(h).start(alarm=False)
        assert [(r.schedule_id, r.status) for r in reports] == [(second.id, "sent")]
        runs = {r.schedule_id: r for r in await scheduler(h).store.runs()}
        assert "not run again" in runs[first.id].reason
        # a turn written before runs were recorded on turns (an upgrade mid-run) is still
        # found the old way, by chat, kind and time
        stores = h.steward.stores
        await _claimed_task_a_day_on(h, clock, "C")
        legacy = await stores.turns.start(
            kind="task", model="m", chat_id=chat.id, user_id=owner.id, message_id=None
        )
        await stores.audit.record(
            "tool.requested", actor=f"turn:{legacy}", subject="write_file",
            risk="write_internal", decision="allow",
        )  # fmt: skip
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        assert await scheduler(h).start(alarm=False) == []
        # a run whose own turn is known and only read is due again, even beside a turn of
        # the same kind without a run (/briefing now) that acted
        stores = h.steward.stores
        fourth, run_d = await _claimed_task_a_day_on(h, clock, "D")
        own = await stores.turns.start(
            kind="task", model="m", chat_id=chat.id, user_id=owner.id, message_id=None,
            run_id=run_d,
        )  # fmt: skip
        other = await stores.turns.start(
            kind="task", model="m", chat_id=chat.id, user_id=owner.id, message_id=None
        )
        for turn, risk in ((own, "read"), (other, "write_internal")):
            await stores.audit.record(
                "tool.requested", actor=f"turn:{turn}", subject="x", risk=risk, decision="allow"
            )
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        reports = await scheduler(h).start(alarm=False)
        assert [(r.schedule_id, r.status) for r in reports] == [(fourth.id, "sent")]


async def _claimed_task_a_day_on(h: Harness, clock: FrozenClock, name: str) -> tuple[Any, int]:
    """A day later, the owner's one-shot task `name` in c1, fallen due and claimed (firing)."""

    owner = await h.steward.stores.people.owner()
    chat = await h.steward.stores.people.chat("test", "c1", "private")
    clock.advance(timedelta(days=1))
    await scheduler(h).add_reminder(
        user=owner, chat=chat, address=Address("test", "c1"),
        parsed=parse_reminder(f"1m task {name}", clock.now(), ZoneInfo("UTC")), kind="task",
    )  # fmt: skip
    clock.advance(timedelta(minutes=2))
    [due] = await scheduler(h).store.due(clock.now())
    run = await scheduler(h).store.claim(due, late_seconds=0, text=None)
    assert run is not None
    return due, run


async def test_a_briefing_missed_by_more_than_its_grace_window_is_skipped(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    clock = FrozenClock(datetime(2026, 3, 10, 5, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/briefing at 07:00")
    clock.advance(timedelta(hours=4, minutes=30))  # back at 09:30: 2 h 30 min late
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        [report] = await scheduler(h).start(alarm=False)
        assert report.status == "skipped"
        assert report.reason == "missed by 2 h 30 min, more than the 2 h grace window"
        assert fake_model.requests == [] and h.channel.sent == []
        [schedule] = await scheduler(h).store.for_user(1, ("briefing",))
        assert schedule.next_run_at == datetime(2026, 3, 11, 7, 0, tzinfo=UTC)  # tomorrow
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.run")
        assert event.detail["outcome"] == "skipped"

        # Within the grace window it is posted late rather than not at all.
        clock.advance(timedelta(days=1))  # 09:30 the next day, 2 h 30 min late again
        await scheduler(h).store.update(schedule.id, next_run_at=clock.now() - timedelta(hours=1))
        [report] = await scheduler(h).run_due()
        assert report.status == "sent"  # no feeds: the one-line briefing, no model needed


async def test_a_recurring_job_does_not_fire_several_times_to_catch_up(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind every day 21:00 journal")
    clock.advance(timedelta(days=3, hours=10))  # down for three evenings; back at 22:00
    async with running_steward(tmp_path, None, clock=clock) as h:
        [report] = await scheduler(h).start(alarm=False)
        assert report.reason == "late by 1 h"  # as late as the latest evening it missed
        assert len(reminders(h)) == 1
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.run")
        assert event.detail["missed_earlier"] == 3
        [schedule] = await scheduler(h).pending_for(await _owner(h))
        assert schedule.next_run_at == datetime(2026, 3, 14, 21, 0, tzinfo=UTC)


async def _owner(h: Harness) -> Any:
    owner = await h.steward.stores.people.owner()
    assert owner is not None
    return owner


async def _fire_times(h: Harness, clock: FrozenClock, until: datetime) -> list[datetime]:
    """Step the clock a quarter hour at a time, noting when reminders went out."""
    fired = []
    while clock.now() < until:
        clock.advance(timedelta(minutes=15))
        for report in await scheduler(h).run_due():
            if report.status == "sent":
                fired.append(clock.now())
    return fired


async def test_recurring_times_follow_daylight_saving(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2026, 3, 27, 12, 0, tzinfo=UTC))
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/remind every day 8:00 stretch")
        await h.say("/remind every day 2:30 night owl")
        fired = await _fire_times(h, clock, datetime(2026, 3, 30, 12, 0, tzinfo=UTC))
        assert fired == [
            datetime(2026, 3, 28, 1, 30, tzinfo=UTC),  # 02:30 CET
            datetime(2026, 3, 28, 7, 0, tzinfo=UTC),  # 08:00 CET
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # 02:30 does not exist: 03:30 CEST
            datetime(2026, 3, 29, 6, 0, tzinfo=UTC),  # 08:00 CEST
            datetime(2026, 3, 30, 0, 30, tzinfo=UTC),  # 02:30 CEST
            datetime(2026, 3, 30, 6, 0, tzinfo=UTC),
        ]
        clock.advance(datetime(2026, 10, 23, 12, 0, tzinfo=UTC) - clock.now())
        await scheduler(h).run_due()  # one late run each for the months in between
        fired = await _fire_times(h, clock, datetime(2026, 10, 26, 12, 0, tzinfo=UTC))
        assert fired == [
            datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
            datetime(2026, 10, 24, 6, 0, tzinfo=UTC),
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 happens twice: once only
            datetime(2026, 10, 25, 7, 0, tzinfo=UTC),  # 08:00 CET
            datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
            datetime(2026, 10, 26, 7, 0, tzinfo=UTC),
        ]


async def test_changing_timezone_moves_recurring_schedules(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/remind every day 21:00 journal")
        await h.say("/remind 2026-03-11 09:00 dentist")
        reply = await h.say("/timezone America/New_York")
        assert "1 recurring schedule(s) now follow it." in reply
        # R107: the one-off keeps its moment, and the reply says where that falls now
        assert "One-off reminders keep their moment" in reply
        assert "dentist" in reply and "Wed 2026-03-11 05:00" in reply
        # R111: in a group, a count and where to look, never the reminders' words
        group = Address("test", "g1")
        message = IncomingMessage(
            sender=OWNER, address=group, text="/timezone Europe/London", chat_kind=ChatKind.GROUP
        )
        await h.router.dispatch(message)
        said = h.channel.texts("g1")[-1]
        assert "1 one-off reminder(s) keep their moment" in said and "dentist" not in said
        await h.say("/timezone America/New_York")
        journal, dentist = sorted(
            await scheduler(h).pending_for(await _owner(h)), key=lambda s: s.id
        )
        assert journal.next_run_at == datetime(2026, 3, 11, 1, 0, tzinfo=UTC)  # 21:00 EDT
        assert dentist.next_run_at == datetime(2026, 3, 11, 9, 0, tzinfo=UTC)  # unchanged
        assert "I don't know the timezone" in await h.say("/timezone Mars/Olympus")
        assert (await h.say("/timezone")).startswith("Your timezone: America/New_York.")


async def test_quiet_hours_hold_back_self_initiated_messages_but_not_reminders(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(datetime(2026, 3, 10, 21, 0, tzinfo=UTC))
    async with running_steward(tmp_path, None, clock=clock) as h:
        assert (await h.say("/quiet 22:00-07:00")).startswith("Quiet hours 22:00-07:00")
        await h.say("/briefing at 06:00")
        await h.say("/remind 2h30m take the bread out")
        fired = []
        while clock.now() < datetime(2026, 3, 11, 9, 0, tzinfo=UTC):
            clock.advance(timedelta(minutes=10))
            fired += [(clock.now(), r.kind, r.status) for r in await scheduler(h).run_due()]
        assert fired == [
            (datetime(2026, 3, 10, 23, 30, tzinfo=UTC), "reminder", "sent"),
            (datetime(2026, 3, 11, 6, 0, tzinfo=UTC), "briefing", "deferred"),
            (datetime(2026, 3, 11, 7, 0, tzinfo=UTC), "briefing", "sent"),
        ]
        [event] = await h.steward.stores.audit.recent(1, kind="schedule.deferred")
        assert event.detail["until"].startswith("2026-03-11T07:00")
        assert await h.say("/quiet") == "Quiet hours: 22:00-07:00 (your time)."
        assert "Usage:" in await h.say("/quiet late")
        assert await h.say("/quiet off") == "Quiet hours are off."


async def test_a_friends_task_put_off_to_the_next_day_is_listed_at_its_new_time(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Review 70: the list showed the time asked for, not the one the task was put off to."""
    from fakes.anthropic import Reply, Usage

    from memory.people import Identity

    fake_model.on_request(
        lambda _: Reply.text("Sure.", usage=Usage(input_tokens=5000, output_tokens=100))
    )
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_GUEST_DAILY_TOKENS="8000"
    ) as h:
        friend_id = Identity("test", "friend")
        await h.steward.stores.people.admit(friend_id, "Friend")
        friend = await h.steward.stores.people.resolve(friend_id)
        assert friend is not None
        await h.say("hello", sender=friend_id, chat="f")
        chat = await h.steward.stores.people.chat("test", "f", "private")
        task = parse_reminder("2h tidy my notes", clock.now(), ZoneInfo("UTC"))
        await scheduler(h).add_reminder(
            user=friend, chat=chat, address=Address("test", "f"), parsed=task, kind="task"
        )
        assert "(moved to" not in await h.say("/remind list", sender=friend_id, chat="f")
        await h.say("and another thing", sender=friend_id, chat="f")  # the allowance is spent
        clock.advance(timedelta(hours=2))
        [report] = await scheduler(h).run_due()
        assert report.status == "skipped"
        listing = await h.say("/remind list", sender=friend_id, chat="f")
        assert "Tue 2026-03-10 10:00" in listing  # as asked
        assert "(moved to Wed 2026-03-11 10:00)" in listing, listing


async def test_an_idle_day_costs_nothing(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Learn Go")
        await h.say("/goal every 1 every monday 9:00")  # next check-in in six days
        await h.say("/remind 2026-03-20 10:00 renew passport")
        await h.say("/briefing at 07:00")
        await h.say("/briefing off")
        sent = len(h.channel.sent)
        for _ in range(24 * 12):  # a day, every five minutes
            clock.advance(timedelta(minutes=5))
            assert await scheduler(h).run_due() == []
        assert fake_model.requests == []
        assert len(h.channel.sent) == sent
        assert await h.steward.stores.turns.count() == 0


async def test_the_alarm_clock_is_rebuilt_from_sqlite_and_fires_a_short_schedule(
    tmp_path: Path,
) -> None:
    async with running_steward(tmp_path, None) as h:  # the system clock
        await h.say("/remind 2s ping")
    async with running_steward(tmp_path, None) as h:  # restarted before it fell due
        await scheduler(h).start()
        try:
            assert reminders(h) == []
            await h.say("/remind 1s pong")
            for _ in range(100):
                if len(reminders(h)) == 2:
                    break
                await asyncio.sleep(0.05)
            await scheduler(h).idle()
            assert sorted(reminders(h)) == ["Reminder: ping", "Reminder: pong"]
        finally:
            await scheduler(h).stop()


class SlowChannel(RecordingChannel):
    """A reminder whose text starts "slow" takes `delay` seconds to send; all else is instant."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def send_text(self, address: Address, text: str) -> str | None:
        if text.startswith("Reminder: slow"):
            await asyncio.sleep(self.delay)
        return await super().send_text(address, text)


async def test_one_alarm_serves_thousands_of_schedules_and_a_long_run_delays_nothing(
    tmp_path: Path,
) -> None:
    """The alarm is one job armed at SQLite's earliest next run (not one job per schedule),
    and it is re-armed before a run starts, so a reminder due during a slow run is on time."""
    async with running_steward(tmp_path, None) as h:
        slow = SlowChannel(delay=2.5)
        h.steward.switchboard.register("test", slow)
        service = scheduler(h)
        await h.say("/remind 3h tea")
        [far] = await service.store.due(datetime.now(UTC) + timedelta(hours=4))
        for i in range(500):
            await service.store.add(
                user_id=far.user_id,
                chat_id=far.chat_id,
                kind="reminder",
                trigger={"type": "once", "at": iso(datetime.now(UTC) + timedelta(days=30))},
                payload={"text": f"someday {i}"},
                next_run_at=datetime.now(UTC) + timedelta(days=30, minutes=i),
                destination=far.destination,
            )
        await service.start()
        try:
            assert len(service.engine._alarm.get_jobs()) == 1
            began = asyncio.get_running_loop().time()
            await h.say("/remind 1s slow one")
            await h.say("/remind 2s quick one")
            sent: dict[str, float] = {}
            for _ in range(120):
                for text in slow.texts("c1"):
                    if text.startswith("Reminder:"):
                        sent.setdefault(text, asyncio.get_running_loop().time() - began)
                if len(sent) == 2:
                    break
                await asyncio.sleep(0.05)
            assert set(sent) == {"Reminder: slow one", "Reminder: quick one"}
            # the quick one fell due while the slow send (2.5 s) was still under way
            assert sent["Reminder: quick one"] < sent["Reminder: slow one"]
            await service.idle()
            assert len(service.engine._alarm.get_jobs()) == 1  # re-armed for the 3 h reminder
        finally:
            await service.stop()


async def test_alarms_during_a_burst_of_due_reminders_do_not_retry_each_others_runs(
    tmp_path: Path,
) -> None:
    """Thirty reminders due at once and three alarms' calls of run_due at the same moment:
    each reminder is sent once, by one call; the others leave what is in hand alone instead
    of trying to claim every pending run again (which made a burst of reminders quadratic)."""
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        for i in range(30):
            await h.say(f"/remind 10m tea {i}")
        clock.advance(timedelta(minutes=11))
        service = scheduler(h)
        results = await asyncio.gather(*(service.run_due() for _ in range(3)))
        reports = [r for batch in results for r in batch]
        assert sorted(r.status for r in reports) == ["sent"] * 30
        assert sorted(reminders(h)) == sorted(f"Reminder: tea {i}" for i in range(30))
        assert await service.run_due() == []


async def test_tasks_run_as_self_initiated_turns_that_keep_their_taint(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    clock = FrozenClock(NOW)
    fake_model.reply_text("The strike is over.")
    fake_model.reply_text("SKIP")
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        owner = await _owner(h)
        # Two chats: a reply the tainted task writes would taint a later turn in its own chat.
        jobs = (("10m check the strike", True, "c1"), ("20m check the weather", False, "c2"))
        for text, tainted, chat_id in jobs:
            chat = await h.steward.stores.people.chat("test", chat_id)
            address = h.message("x", chat=chat_id).address
            parsed = parse_reminder(text, clock.now(), scheduler(h).zone_for(owner))
            await scheduler(h).add_reminder(
                user=owner, chat=chat, address=address, parsed=parsed, kind="task", tainted=tainted
            )
        clock.advance(timedelta(minutes=10))
        [report] = await scheduler(h).run_due()
        assert (report.kind, report.status) == ("task", "sent")
        assert "check the strike" in fake_model.requests[0].last_user_text
        assert h.channel.texts("c1")[-1] == "The strike is over."
        clock.advance(timedelta(minutes=10))
        [report] = await scheduler(h).run_due()
        assert report.status == "silent"  # the model said SKIP: nothing sent
        assert h.channel.texts("c2") == []
        rows = await h.turns()
        assert [(r.kind, r.tainted) for r in rows] == [("task", True), ("task", False)]
        found = await h.steward.stores.messages.find_text("The strike is over.")
        reply = next((m for m in found if m.text == "The strike is over."), None)
        assert reply is not None and names(reply.label, "task:#1")  # the reply keeps the label


async def test_the_start_up_redelivery_sends_only_what_was_waiting_before(tmp_path: Path) -> None:
    """At start-up what an earlier process left undelivered is sent again; a reply already on
    its way by then (the channels are up) was sent a second time."""
    async with running_steward(tmp_path, None) as h:
        stores = h.steward.stores
        chat = await stores.people.chat("test", "c9", "private")
        await stores.messages.record_outgoing(chat_id=chat.id, text="left by the crash")
        backlog = await h.steward.courier.backlog()
        await stores.messages.record_outgoing(chat_id=chat.id, text="on its way right now")
        assert await h.steward.courier.redeliver(only=backlog) == 1
        assert h.channel.texts("c9") == ["left by the crash"]


class DownChannel(RecordingChannel):
    """A channel whose every send fails as a network outage does (not a refusal)."""

    calls = 0

    async def send_text(self, address: Address, text: str) -> str | None:
        self.calls += 1
        from agent.outbox import DeliveryError

        raise DeliveryError("Telegram: network is unreachable")


async def test_a_message_that_keeps_failing_is_tried_for_a_week_then_given_up(
    tmp_path: Path,
) -> None:
    """A fault that looks passing was retried every five minutes for ever; an outage must
    not lose the owner's messages either. It is tried for a week, then given up."""
    from agent.delivery import MAX_AGE
    from memory.labels import TRUSTED

    clock = FrozenClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    async with running_steward(tmp_path, None, clock=clock) as h:
        down = DownChannel()
        h.steward.switchboard.register("test", down)
        chat = await h.steward.stores.people.chat("test", "c9", "group")
        courier = h.steward.courier
        assert not await courier.send(Address("test", "c9"), chat.id, "the news", label=TRUSTED)

        async def one_pass() -> str:
            task = asyncio.create_task(courier.keep_redelivering(every=0.01, max_delay=0.01))
            await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            row = await h.steward.stores.db.fetchone(
                "SELECT status FROM messages WHERE chat_id = ?", (chat.id,)
            )
            return str(row["status"])

        assert await one_pass() == "failed"  # an hour's outage: still trying
        tried = down.calls
        clock.advance(MAX_AGE - timedelta(hours=1))
        assert await one_pass() == "failed" and down.calls > tried
        clock.advance(timedelta(hours=2))
        assert await one_pass() == "undeliverable"
        tried = down.calls
        assert await one_pass() == "undeliverable" and down.calls == tried  # no more calls


async def _due_soon(
    h: Harness, channel: RecordingChannel, texts: tuple[str, ...], seconds: float
) -> SchedulerService:
    """`channel` as the test platform, a reminder of each of `texts` due in `seconds` on the
    system clock, and the scheduler started with its real alarm."""
    from agent.scheduler.when import Parsed

    h.steward.switchboard.register("test", channel)
    service = h.steward.scheduler
    assert isinstance(service, SchedulerService)
    owner = await h.steward.stores.people.owner()
    assert owner is not None
    chat = await h.steward.stores.people.chat("test", "c1", "private")
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    for text in texts:
        await service.add_reminder(
            user=owner, chat=chat, address=Address("test", "c1"), parsed=Parsed(at, text)
        )
    await service.start()
    return service


class _SlowChannel(RecordingChannel):
    """A platform slow to take one reminder (or a long model turn before it)."""

    async def send_text(self, address: Address, text: str) -> str | None:
        if text.startswith("Reminder: slow"):
            await asyncio.sleep(3.0)
        return await super().send_text(address, text)


async def test_a_run_held_in_hand_does_not_set_the_alarm_spinning(tmp_path: Path) -> None:
    """Two reminders due together: while the first was sent, the second was still 'active' and
    past due, held by that call. A reminder added meanwhile re-armed the alarm at it: the alarm
    went off at once, found it held and armed again, ~4,000 wake-ups in 2 s on the loop."""
    import time

    async with running_steward(tmp_path, None) as h:  # the system clock: the real alarm
        # due together: one call takes both
        service = await _due_soon(h, _SlowChannel(), ("slow one", "after it"), 1.0)
        try:
            await asyncio.sleep(1.6)  # "slow one" is being sent; "after it" is held
            await h.say("/remind 10m stretch")  # the owner adds one meanwhile
            cpu = time.process_time()
            await asyncio.sleep(1.5)
            spent = time.process_time() - cpu
            await service.idle()
            channel = h.steward.switchboard.get("test")
            sent = sorted(t for _, t in channel.sent if t.startswith("Reminder"))
            assert sent == ["Reminder: after it", "Reminder: slow one"]
            assert spent < 0.5, f"{spent:.2f} s of CPU while waiting on one slow send"
        finally:
            await service.stop()


class _SlowToAnswer(RecordingChannel):
    """The platform takes a message at once and answers slowly (a slow network, or a long
    message's second part waiting out Telegram's flood control)."""

    async def send_text(self, address: Address, text: str) -> str | None:
        taken = await super().send_text(address, text)
        await asyncio.sleep(1.5)
        return taken


async def test_a_stop_while_a_reminder_is_being_sent_does_not_send_it_twice(
    tmp_path: Path,
) -> None:
    """Stopping cancelled the send after the platform had the message but before its delivery
    was recorded: the next start's redelivery sent it again."""
    async with running_steward(tmp_path, None) as h:  # the system clock: the real alarm
        slow = _SlowToAnswer()
        service = await _due_soon(h, slow, ("tea",), 0.5)
        for _ in range(60):
            if slow.texts("c1"):
                break
            await asyncio.sleep(0.05)
        assert slow.texts("c1") == ["Reminder: tea"]
        await service.stop()  # what SIGTERM does, mid-send
    async with running_steward(tmp_path, None) as h:
        await h.steward.courier.redeliver(only=await h.steward.courier.backlog())
        await h.steward.scheduler.start(alarm=False)
        assert [t for t in h.channel.texts("c1") if t.startswith("Reminder")] == []


class _Down(RecordingChannel):
    async def send_text(self, address: Address, text: str) -> str | None:
        from agent.outbox import DeliveryError

        raise DeliveryError("Telegram: 502 Bad Gateway")


async def test_a_daily_reminder_queued_through_an_outage_arrives_once_and_says_it_is_late(
    tmp_path: Path,
) -> None:
    """Telegram down for three days: each day's reminder queued a copy, and when it came back
    all three arrived at once, none saying it was late. Two schedules that say the same words
    are two reminders, each sent once."""
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind every day 21:00 take pills")
        await h.say("/remind every day 14:00 take pills")  # another schedule, the same words
        h.steward.switchboard.register("test", _Down())
        for _ in range(3):  # three days, each reminder on time
            clock.advance(timedelta(hours=2))  # 14:00
            await scheduler(h).run_due()
            clock.advance(timedelta(hours=7))  # 21:00
            await scheduler(h).run_due()
            clock.advance(timedelta(hours=15))  # 12:00 the next day
        up = RecordingChannel()
        h.steward.switchboard.register("test", up)
        assert await h.steward.courier.redeliver() == 2  # one of each schedule
        afternoon, late, evening, later = up.texts("c1")
        assert afternoon == evening == "Reminder: take pills"  # as stored: parts match
        assert late == (
            "(Sent late: the message above was written 22 h ago; it could not be delivered "
            "until now.)"
        )
        assert later.startswith("(Sent late: the message above was written 15 h ago;")
        undelivered = await h.steward.stores.messages.undelivered()
        assert undelivered == []


class _Hangs(RecordingChannel):
    def __init__(self) -> None:
        super().__init__()
        self.started = asyncio.Event()
        self.cancelled = False

    async def send_text(self, address: Address, text: str) -> str | None:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return await super().send_text(address, text)


async def test_a_second_interrupt_during_the_stop_grace_still_stops_the_run(
    tmp_path: Path,
) -> None:
    """Stopping waits a while for a run in flight; cancelled during that wait (a second
    Ctrl-C), it left the run going while the stores closed under it."""
    async with running_steward(tmp_path, None) as h:
        hangs = _Hangs()
        service = await _due_soon(h, hangs, ("tea",), 0.3)
        await asyncio.wait_for(hangs.started.wait(), 5)
        stopping = asyncio.create_task(service.stop())
        await asyncio.sleep(0.2)
        stopping.cancel()  # the second signal
        await asyncio.gather(stopping, return_exceptions=True)
        assert hangs.cancelled


async def test_a_briefing_with_nothing_new_queued_through_an_outage_goes_out_once(
    tmp_path: Path,
) -> None:
    clock = FrozenClock(NOW.replace(hour=5))
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/briefing at 07:00")
        h.steward.switchboard.register("test", _Down())
        for _ in range(2):  # two mornings, on time, nothing new
            clock.advance(timedelta(hours=2))
            await scheduler(h).run_due()
            clock.advance(timedelta(hours=22))
        up = RecordingChannel()
        h.steward.switchboard.register("test", up)
        assert await h.steward.courier.redeliver() == 1
        briefing, note = up.texts("c1")
        assert briefing.startswith("Good morning") and note.startswith("(Sent late:")


async def test_a_schedule_with_outside_sources_is_stored_tainted(tmp_path: Path) -> None:
    """The flag the jobs read (`tainted`) and the label could disagree: sources given with
    `tainted=False` stored a labelled schedule that fired as trusted."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("hello")
        stores = h.steward.stores
        owner = await stores.people.owner()
        assert owner is not None
        chat = await stores.people.chat("test", "c1")
        made = await stores.schedules.add(
            user_id=owner.id, chat_id=chat.id, kind="task",
            trigger={"type": "once", "at": iso(NOW + timedelta(hours=1))},
            payload={"text": "x"}, next_run_at=NOW + timedelta(hours=1),
            destination={"channel": "test", "chat_id": "c1"},
            tainted=False, sources=("web:https://evil.example/",),
        )  # fmt: skip
        stored = await stores.schedules.get(made.id)
    assert stored is not None and stored.tainted and stored.label.sources
