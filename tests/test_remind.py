"""/remind in every format, its errors, delivery at the right time, the reminder tool, and a
reminder printed on the console while `steward run` is running."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fakes.anthropic import FakeAnthropic
from harness import Harness, running_steward

from agent.scheduler import SchedulerService
from agent.types import TurnRequest
from memory.clock import FrozenClock

NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)  # Tuesday 14:00 in Berlin


def scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


async def test_every_format_is_understood_confirmed_and_listed(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        assert (await h.say("/timezone europe/berlin")).startswith(  # any case: the same zone
            "Your timezone is now Europe/Berlin (it is 14:00 there)."
        )
        expected = {
            "45s tea": "#1: Tue 2026-03-10 14:00 (in 45 s) — tea.",
            "10m stretch": "#2: Tue 2026-03-10 14:10 (in 10 min) — stretch.",
            "2h30m call back": "#3: Tue 2026-03-10 16:30 (in 2 h 30 min) — call back.",
            "tomorrow 9:00 call mom": "#4: Wed 2026-03-11 09:00 (in 19 h) — call mom.",
            "2026-12-24 18:00 dinner": "#5: Thu 2026-12-24 18:00 (in 289 d 4 h) — dinner.",
            "every monday 8:00 weekly review": (
                "#6: every Monday at 08:00, first on Mon 2026-03-16 08:00 — weekly review."
            ),
            "every day 21:00 journal": (
                "#7: every day at 21:00, first on Tue 2026-03-10 21:00 — journal."
            ),
        }
        for args, confirmation in expected.items():
            reply = await h.say(f"/remind {args}")
            assert reply.startswith("OK, " + confirmation), reply
        listing = (await h.say("/remind list")).splitlines()
        assert listing == [
            "#1 Tue 2026-03-10 14:00 — tea",
            "#2 Tue 2026-03-10 14:10 — stretch",
            "#3 Tue 2026-03-10 16:30 — call back",
            "#7 every day at 21:00 — journal (next Tue 2026-03-10 21:00)",
            "#4 Wed 2026-03-11 09:00 — call mom",
            "#6 every Monday at 08:00 — weekly review (next Mon 2026-03-16 08:00)",
            "#5 Thu 2026-12-24 18:00 — dinner",
        ]
        assert await h.say("/remind cancel 4") == "Cancelled #4: call mom"
        assert "#4" not in await h.say("/remind list")
        assert await h.say("/remind cancel 4") == (
            "There is no pending reminder #4. See /remind list."
        )
        created = await h.steward.stores.audit.recent(20, kind="schedule.created")
        assert len(created) == 7 and created[0].detail["tainted"] is False


async def test_bad_reminders_answer_with_usage_and_examples(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        for args, problem in [
            ("", "Tell me when and what."),
            ("tea", "I couldn't find a time at the start of “tea”."),
            ("2026-01-01 10:00 party", "“2026-01-01 10:00” is in the past"),
            ("every monday tea", "At what time?"),
            ("10m", "What should I remind you of?"),
            ("cancel soon", "Which one?"),
            ("cancle 3", "Did you mean /remind cancel?"),  # was "couldn't find a time"
            ("lsit", "Did you mean /remind list?"),
        ]:
            reply = await h.say(f"/remind {args}".strip())
            assert reply.startswith(problem), reply
            assert "Usage: /remind <when> <what>" in reply
            if args not in ("cancel soon", "cancle 3", "lsit"):
                assert "tomorrow 9:00 call mom" in reply  # the examples
        assert await scheduler(h).pending_for(await _owner(h)) == []


async def _owner(h: Harness):  # type: ignore[no-untyped-def]
    owner = await h.steward.stores.people.owner()
    assert owner is not None
    return owner


async def test_reminders_fire_at_their_time_once_and_are_audited(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind 45s tea")
        await h.say("/remind 10m stretch")
        sent = len(h.channel.sent)
        clock.advance(timedelta(seconds=30))
        assert await scheduler(h).run_due() == []
        clock.advance(timedelta(seconds=20))
        [report] = await scheduler(h).run_due()
        assert (report.kind, report.status, report.reason) == ("reminder", "sent", "due")
        assert h.channel.texts("c1")[sent:] == ["Reminder: tea"]
        assert await scheduler(h).run_due() == []
        clock.advance(timedelta(minutes=10))
        await scheduler(h).run_due()
        assert h.channel.texts("c1")[sent:] == ["Reminder: tea", "Reminder: stretch"]
        store = scheduler(h).store  # both schedules are done, and there is no third one
        statuses = [await store.get(schedule_id) for schedule_id in (1, 2, 3)]
        assert [s.status if s else None for s in statuses] == ["done", "done", None]
        runs = await h.steward.stores.audit.recent(10, kind="schedule.run")
        assert [(e.subject, e.detail["outcome"], e.detail["chars"]) for e in runs] == [
            ("schedule:1", "sent", len("Reminder: tea")),
            ("schedule:2", "sent", len("Reminder: stretch")),
        ]
        assert runs[0].actor == "scheduler" and runs[0].detail["reason"] == "due"
        assert (await h.steward.stores.audit.verify()).ok


async def test_a_recurring_reminder_fires_every_day_until_cancelled(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/remind every day 21:00 journal")  # UTC: the default timezone
        clock.advance(timedelta(hours=8))
        for _ in range(3):
            await scheduler(h).run_due()
            clock.advance(timedelta(days=1))
        assert h.channel.texts("c1").count("Reminder: journal") == 3
        await h.say("/remind cancel 1")
        clock.advance(timedelta(days=1))
        assert await scheduler(h).run_due() == []
        assert h.channel.texts("c1").count("Reminder: journal") == 3


async def test_remind_me_in_plain_chat_uses_the_reminder_tool(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    clock = FrozenClock(NOW)
    fake_model.reply_tool_use("reminder_add", {"when": "in 20 minutes", "text": "call back"})
    fake_model.reply_text("I'll remind you at 13:20.")
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        assert await h.say("remind me to call back in 20 minutes") == "I'll remind you at 13:20."
        assert "reminder_add" in fake_model.requests[0].tool_names
        result = fake_model.requests[1].tool_results[0]
        assert result["content"] == "Scheduled #1 Tue 2026-03-10 13:20 — call back"
        clock.advance(timedelta(minutes=20))
        await scheduler(h).run_due()
        assert h.channel.texts("c1")[-1] == "Reminder: call back"
        assert len(fake_model.requests) == 2  # the reminder itself needs no model


async def test_a_reminder_asked_for_in_a_tainted_turn_waits_for_the_owner(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    clock = FrozenClock(NOW)
    fake_model.reply_tool_use("reminder_add", {"when": "in 1 hour", "text": "wire money"})
    fake_model.reply_text("I asked the owner first.")
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        owner = await _owner(h)
        chat = await h.steward.stores.people.chat("test", "c1")
        request = TurnRequest(
            kind="task",
            user=owner,
            chat=chat,
            address=h.message("x").address,
            text="Summarise this page for me.",
            tainted=True,
        )
        await h.steward.respond(request)
        assert await scheduler(h).pending_for(owner) == []  # nothing scheduled behind their back
        [(_, prompt)] = h.channel.approvals
        assert prompt.tool == "reminder_add"
        fake_model.reply_text("Done.")
        await h.say(f"/approve {prompt.approval_id}")
        [schedule] = await scheduler(h).pending_for(owner)
        assert schedule.tainted is True  # it remembers where it came from


async def test_the_console_prints_a_reminder_that_falls_due_while_running(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    env |= {"STEWARD_DATA_DIR": str(tmp_path / "data"), "STEWARD_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"/remind 2s tea\n")
    await process.stdin.drain()
    lines: list[str] = []

    async def read_until_reminder() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            lines.append(line.decode().rstrip("\n"))
            if "Reminder: tea" in lines[-1]:
                return

    await asyncio.wait_for(read_until_reminder(), 30)  # stdin stays open meanwhile
    process.stdin.close()
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert any(line.startswith("steward> OK, #1:") for line in lines), lines
    assert lines[-1] == "steward> Reminder: tea"


async def test_another_person_may_keep_only_so_many_reminders_waiting(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """One allowed person's two hundred reminders went out before the owner's of the same
    minute, each a call to the platform: another person now keeps at most PER_PERSON_LIMIT
    waiting (the owner, as many as they like)."""
    from agent.scheduler.service import PER_PERSON_LIMIT
    from memory.people import Identity

    ann = Identity("test", "ann")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        stores = h.steward.stores
        user = await stores.people.admit(ann, "Ann")
        for n in range(PER_PERSON_LIMIT):
            said = await h.say(f"/remind every day 9:{n % 60:02d} stretch {n}", sender=ann)
            assert said.startswith("OK, #"), said
        refused = await h.say("/remind in 5 minutes one more", sender=ann)
        assert "as many as I keep for one person" in refused, refused
        assert await stores.schedules.count_active(user.id) == PER_PERSON_LIMIT
        for n in range(PER_PERSON_LIMIT + 5):  # the owner is not limited
            assert (await h.say(f"/remind every day 10:{n % 60:02d} owner {n}")).startswith("OK")


async def test_a_goal_check_in_past_the_limit_leaves_the_goal_as_it_was(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The cadence was saved before the check-in was refused: the goal showed "every day"
    with no check-in behind it."""
    from agent.scheduler.service import PER_PERSON_LIMIT
    from memory.people import Identity

    ann = Identity("test", "ann")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        stores = h.steward.stores
        user = await stores.people.admit(ann, "Ann")
        goal = await stores.goals.add(user.id, "learn the cello")
        for n in range(PER_PERSON_LIMIT):
            await h.say(f"/remind every day 9:{n % 60:02d} stretch {n}", sender=ann)
        said = await h.say(f"/goal every {goal.id} daily", sender=ann)
        assert "as many as I keep for one person" in said, said
        assert (await stores.goals.get(user.id, goal.id)).cadence is None  # type: ignore[union-attr]


async def test_a_check_in_refused_at_the_limit_keeps_the_one_it_would_replace(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The old check-in was cancelled before the new one was refused: someone holding more
    than the limit from before it existed lost their goal's check-in by changing its cadence."""
    from agent.scheduler.service import PER_PERSON_LIMIT
    from memory.people import Identity

    ann = Identity("test", "ann")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        stores = h.steward.stores
        user = await stores.people.admit(ann, "Ann")
        goal = await stores.goals.add(user.id, "learn the cello")
        assert "every day" in await h.say(f"/goal every {goal.id} daily", sender=ann)
        before = await h.steward.scheduler.checkin_for(user, goal.id)
        assert before is not None
        for n in range(PER_PERSON_LIMIT):  # written before the limit existed
            await stores.schedules.add(
                user_id=user.id,
                chat_id=before.chat_id,
                kind="reminder",
                trigger={"type": "once", "at": "2099-01-01T09:00:00+00:00"},
                payload={"text": f"old {n}"},
                next_run_at=datetime(2099, 1, 1, 9, tzinfo=UTC),
                destination=before.destination,
            )
        said = await h.say(f"/goal every {goal.id} weekly", sender=ann)
        assert "as many as I keep for one person" in said, said
        after = await h.steward.scheduler.checkin_for(user, goal.id)
        assert after is not None and after.id == before.id
        kept = await stores.goals.get(user.id, goal.id)
        assert kept is not None and kept.cadence == "every day at 09:00"


async def test_the_words_people_use_for_cancel_memory_counts_and_approval_ids(
    tmp_path: Path,
) -> None:
    """`/remind remove 1`, `/remind delete 1` read as reminders that could not find a time;
    `/memory recent 5` was unknown; `/approve #k3f9` (ids are shown with #) was refused."""
    async with running_steward(tmp_path, None) as h:
        for text in ("10m tea", "20m stretch", "tomorrow 9:00 delete old backups"):
            assert "#" in await h.say(f"/remind {text}")
        for text in ("30m a", "40m b"):
            await h.say(f"/remind {text}")
        assert "Cancelled #1" in await h.say("/remind remove 1")
        assert "Cancelled #2" in await h.say("/remind delete 2")
        several = await h.say("/remind remove 4, 5")  # as README says of cancel (it was one)
        assert "Cancelled #4" in several and "Cancelled #5" in several
        assert "old backups" in await h.say("/remind list")  # still a reminder's words
        for text in ("one", "two", "three"):
            await h.say(f"/remember note {text}")
        listed = await h.say("/memory recent 2")
        assert "The 2 most recent of 3 memories" in listed, listed
        assert "not a count" in await h.say("/memory recent lots")
        assert await h.say("/approve #zzzz") == await h.say("/approve zzzz")
        assert await h.say("/approve show #zzzz") == await h.say("/approve show zzzz")


async def test_remind_me_to_and_cancelling_several_as_people_type_them(tmp_path: Path) -> None:
    """`/remind me in 10m to call Ann` could not find a time; `/remind cancel 1 2` and
    `/remind cancel 2, 3` were refused (`/goal done 1 2` closes both)."""
    async with running_steward(tmp_path, None) as h:
        said = await h.say("/remind me in 10m to call Ann")
        assert said.startswith("OK, #1: ") and "— call Ann." in said, said
        assert "— to Bob's." in await h.say("/remind in 2h to Bob's")  # said so: kept
        for text in ("20m tea", "30m stretch", "40m water"):
            assert "#" in await h.say(f"/remind {text}")
        assert await h.say("/remind cancel 1 2") == "Cancelled #1: call Ann\nCancelled #2: to Bob's"
        assert await h.say("/remind cancel 3,4") == "Cancelled #3: tea\nCancelled #4: stretch"
        assert await h.say("/remind cancel 5 finally") == "Cancelled #5: water"  # a remark
        assert "#6" in await h.say("/remind 50m tea")
        assert "#7" in await h.say("/remind 55m stretch")
        said = await h.say("/remind cancel 6 0 7")  # 0 is an id: the list goes on after it
        assert said.startswith("Cancelled #6: tea") and said.endswith("Cancelled #7: stretch")
        assert "No reminders" in await h.say("/remind list")


async def test_several_command_lines_in_one_message_are_several_commands(tmp_path: Path) -> None:
    """Pasted together, two /remind lines were one reminder whose text held the second."""
    async with running_steward(tmp_path, None) as h:
        await h.say("/remind tomorrow 9:00 call mom\n/remind tomorrow 10:00 dentist")
        listed = await h.say("/remind list")
        assert "call mom" in listed and "dentist" in listed
        assert "/remind" not in listed and len(listed.splitlines()) == 2, listed
        # a reminder whose later lines are not commands stays one reminder
        await h.say("/remind tomorrow 8:00 buy:\n- milk\n- eggs")
        assert len((await h.say("/remind list")).splitlines()) == 3


async def test_lines_that_are_not_commands_stay_with_the_command_above(tmp_path: Path) -> None:
    """'/remind 10m tea', '/remind 20m stretch', 'thanks!' became one reminder; '/tmp is
    full' under a reminder was answered 'I don't know /tmp' and lost; a /timezone line did
    not reach the /remind line after it (review 36)."""
    async with running_steward(tmp_path, None) as h:
        await h.say("/remind 10m tea\n/remind 20m stretch\nthanks!")
        listed = await h.say("/remind list")
        assert len(listed.splitlines()) == 2 and "stretch" in listed, listed
        answer = await h.say("/remind 30m check disk\n/tmp is full")
        assert "I don't know" not in answer
        assert "/tmp is full" in await h.say("/remind list")
        await h.say("/timezone Asia/Tokyo\n/remind tomorrow 9:00 standup")
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        scheduler = h.steward.scheduler
        assert isinstance(scheduler, SchedulerService)
        standup = [
            s
            for s in await scheduler.store.for_user(owner.id, ("reminder",))
            if "standup" in s.payload.get("text", "")
        ]
        assert [s.next_run_at.astimezone(ZoneInfo("Asia/Tokyo")).hour for s in standup] == [9]
