"""Forgetting an exchange and what its reminders and tasks did since (review 36, third round).

- A task run in progress when the exchange that set it is forgotten: the forget waits ("still
  going on"), as for the exchange's own turn; said done, the run wrote the words back after.
- A task's failure notice ("Your scheduled task “…” did not run") belonged to no turn: it kept
  the words, and forgetting it left them.
- A briefing listed the reminder ("15:00 rotate …"): its copy is found and forgotten by its
  number, and its answer names no command that cannot cancel a briefing.
- A task run's post to a group is the group's: it stays.
- A fact compaction drew, forgotten, takes the reminder messages that say it, and not the
  reminder a command set."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import OWNER, Harness, running_steward
from test_forget_copies import live_rows
from test_forget_what_the_exchange_set import NOW, SECRET, model

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
from memory.clock import FrozenClock, iso
from memory.schedules import ScheduleStatus
from memory.stores import Stores


async def _forget_mine(h: Harness, words: str) -> str:
    found = await h.say(f"/memory search {words}")
    numbers = re.findall(r"message #(\d+): you wrote", found)
    assert len(numbers) == 1, found
    return await h.say(f"/memory forget {numbers[0]}")


async def _sent_to_the_model_after(h: Harness, fake_model: FakeAnthropic) -> list[str]:
    asked = len(fake_model.requests)
    await h.say("hello again")
    return [json.dumps(r.body) for r in fake_model.requests[asked:]]


async def test_a_forget_during_the_task_run_it_set_waits_for_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    arrived, go = asyncio.Event(), asyncio.Event()

    async def slow(request: RecordedRequest) -> Reply:
        if "Scheduled task" in request.last_user_text and not request.tool_results:
            arrived.set()
            await go.wait()
            return Reply.text(f"Checked: the VPN takes {SECRET}.")
        return model(request)

    fake_model.on_request(slow)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say(f"track rotating the VPN password {SECRET} and check it later")
        clock.advance(timedelta(hours=2, minutes=1))
        assert h.steward.scheduler is not None and h.steward.memory is not None
        running = asyncio.create_task(h.steward.scheduler.run_due())
        await asyncio.wait_for(arrived.wait(), 10)
        owner = await h.steward.stores.people.resolve(OWNER)
        assert owner is not None
        with closing(sqlite3.connect(h.settings.database_path)) as con:
            [(mine,)] = con.execute(
                "SELECT id FROM memories WHERE kind = 'message' AND text LIKE 'track rotating%'"
            ).fetchall()
        # as the console forgets: not in the chat's line
        waiting = await asyncio.wait_for(h.steward.memory.forget(owner.id, mine), 10)
        assert waiting is not None and waiting.underway is not None
        go.set()
        await running
        assert "Forgotten" in await _forget_mine(h, "track rotating")  # once it is over
        assert not any(SECRET in body for body in await _sent_to_the_model_after(h, fake_model))
        assert live_rows(h.settings.database_path, SECRET) == []


async def test_a_tasks_failure_notice_goes_with_the_exchange(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    def failing(request: RecordedRequest) -> Reply:
        if "Scheduled task" in request.last_user_text:
            return Reply.error(400, message="bad request")
        return model(request)

    fake_model.on_request(failing)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say(f"track rotating the VPN password {SECRET} and check it later")
        clock.advance(timedelta(hours=2, minutes=1))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        assert any("did not run" in text and SECRET in text for _, text in h.channel.sent[-2:])
        assert "Forgotten" in await _forget_mine(h, "track rotating")
        assert not any(SECRET in body for body in await _sent_to_the_model_after(h, fake_model))
        assert live_rows(h.settings.database_path, SECRET) == []


async def test_a_briefing_that_listed_the_reminder_is_found_and_forgotten_by_its_number(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A briefing's copy of a reminder is the briefing's: not cut out of it by matching words
    (a reminder "Run the backups" would lose "Run" wherever it stood), but found by
    `/memory search` and forgotten by its number; the answer names no command for it (a
    briefing is not "/remind cancel")."""
    fake_model.on_request(model)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say(f"remind me in 2 hours to rotate the VPN password {SECRET}")
        await h.say("/briefing at 13:30")
        clock.advance(timedelta(minutes=31))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        assert any(SECRET in text for _, text in h.channel.sent[-2:])  # the briefing said it
        assert "Forgotten" in await _forget_mine(h, "remind me in 2 hours")
        found = await h.say(f"/memory search {SECRET}")
        [briefing] = re.findall(r"message #(\d+): Steward wrote", found)
        said = await h.say(f"/memory forget {briefing}")
        assert "Forgotten" in said and "/remind cancel" not in said, said
        left = live_rows(h.settings.database_path, SECRET)
        assert ("messages", "text") not in left and ("memories", "text") not in left, left
        assert "No memories or messages match" in await h.say(f"/memory search {SECRET}")


async def test_a_task_runs_post_to_a_group_stays_the_groups(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(model)
    async with running_steward(tmp_path / "data", fake_model.base_url) as h:
        await h.say(f"track rotating the VPN password {SECRET} and check it later")
        owner = await h.steward.stores.people.resolve(OWNER)
        assert owner is not None
        [task] = await h.steward.stores.schedules.for_user(owner.id, ("task",))
        group = await h.steward.stores.people.chat("test", "team-group", "group")
        posted = "Team: the VPN maintenance window is Friday 18:00."
        with closing(sqlite3.connect(h.settings.database_path)) as con, con:
            [(chat,)] = con.execute(
                "SELECT chat_id FROM turns WHERE user_id = ? LIMIT 1", (owner.id,)
            ).fetchall()
            turn = con.execute(
                "INSERT INTO turns (chat_id, user_id, kind, status, transcript, started_at)"
                " VALUES (?, ?, 'task', 'completed', '[]', '2026-03-10T15:00:00+00:00')",
                (chat, owner.id),
            ).lastrowid
            con.execute(
                "INSERT INTO schedule_runs (schedule_id, kind, due_at, started_at, status,"
                " turn_id) VALUES (?, 'task', '2026-03-10', '2026-03-10', 'sent', ?)",
                (task.id, turn),
            )
            con.execute(
                "INSERT INTO messages (chat_id, user_id, direction, text, status, turn_id,"
                " created_at, updated_at) VALUES (?, NULL, 'out', ?, 'sent', ?,"
                " '2026-03-10', '2026-03-10')",
                (group.id, posted, turn),
            )
        assert "Forgotten" in await _forget_mine(h, "track rotating")
        with closing(sqlite3.connect(h.settings.database_path)) as con:
            [(text,)] = con.execute(
                "SELECT text FROM messages WHERE chat_id = ?", (group.id,)
            ).fetchall()
        assert text == posted


async def test_a_compacted_fact_forgotten_leaves_a_reminder_set_by_command(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    def compacting(request: RecordedRequest) -> Reply:
        if request.system_text == COMPACTION_SYSTEM:
            fact = {"text": "Takes vitamin D tablets.", "importance": 0.6}
            return Reply.text(json.dumps({"summary": "chat", "facts": [fact]}))
        if request.system_text == EXTRACTION_SYSTEM:
            return Reply.text('{"memories": []}')
        return Reply.text("Okay, noted. " + "x" * 200)

    fake_model.on_request(compacting)
    clock = FrozenClock(NOW)
    async with running_steward(
        tmp_path / "data", fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="150"
    ) as h:
        await h.say("/remind every day 15:00 take vitamin D tablets")
        clock.advance(timedelta(hours=2, minutes=1))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        for i in range(6):
            await h.say(f"something else entirely number {i} " + "y" * 200)
        owner = await h.steward.stores.people.resolve(OWNER)
        assert owner is not None
        [reminder] = await h.steward.stores.schedules.for_user(owner.id, ("reminder",))
        facts = [m for m in await h.memories() if m.text == "Takes vitamin D tablets."]
        assert facts
        said = await h.say(f"/memory forget {facts[0].id}")
        assert "Forgotten" in said, said
        after = await h.steward.stores.schedules.get(reminder.id)
        assert after is not None and after.status is ScheduleStatus.ACTIVE
        assert after.payload["text"] == "take vitamin D tablets"


async def test_a_short_goal_title_is_not_cut_out_of_other_scheduled_messages(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A goal "Run" forgotten with its exchange: its title leaves the goal, not every "Run" in
    what the person's reminders and briefings said (too short to look for, as elsewhere)."""

    def runner(request: RecordedRequest) -> Reply:
        if "start running" in request.last_user_text and not request.tool_results:
            return Reply.tool_use("goal_add", {"title": "Run"})
        return model(request)

    fake_model.on_request(runner)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say("/remind in 1 hour Running shoes to the repair shop")
        clock.advance(timedelta(hours=1, minutes=1))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        await h.say("I want to start running, track it please")
        assert "Forgotten" in await _forget_mine(h, "start running")
        with closing(sqlite3.connect(h.settings.database_path)) as con:
            texts = [t for (t,) in con.execute("SELECT text FROM messages WHERE schedule_id > 0")]
        assert any("Running shoes to the repair shop" in t for t in texts), texts


async def test_a_failed_tasks_notice_is_not_taken_for_its_run_having_sent(tmp_path: Path) -> None:
    """The failure notice now goes with the run's turn; after a crash, recovery asks whether the
    run had sent by a message of a turn of its kind since it began: the notice of a failed turn
    is not one (the run would have been settled as sent)."""
    stores = await Stores.open(tmp_path / "s.db", FrozenClock(NOW))
    try:
        owner = await stores.people.ensure_owner([OWNER])
        chat = await stores.people.chat("test", "c1", "private")
        db = stores.db  # the rows a run leaves, as it leaves them
        for status in ("failed", "completed"):
            turn = await db.execute(
                "INSERT INTO turns (chat_id, user_id, kind, status, transcript, started_at)"
                " VALUES (?, ?, 'task', ?, '[]', ?)",
                (chat.id, owner.id, status, iso(NOW)),
            )
            await db.execute(
                "INSERT INTO messages (chat_id, direction, text, status, turn_id, created_at,"
                " updated_at) VALUES (?, 'out', ?, 'sent', ?, ?, ?)",
                (chat.id, f"{status} turn's message", turn, iso(NOW), iso(NOW)),
            )
            found = await stores.schedules.turn_message_since(chat.id, "task", NOW)
            if status == "failed":
                assert found is None
            else:
                assert found is not None
    finally:
        await stores.close()


async def test_a_waiting_turns_history_loses_what_a_forgotten_task_said(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Review 36, fifth round: a task's report ("Checked: … <secret>") is chat history; a turn
    that waits for an approval holds it in its prompt, sent again when approved. Forgetting
    the exchange that set the task blanked the report in the chat, not in that prompt."""

    def reporting(request: RecordedRequest) -> Reply:
        if request.tool_results:
            return Reply.text("Done.")
        if "Scheduled task" in request.last_user_text:
            return Reply.text(f"Checked: the VPN takes {SECRET} now.")
        if "make a folder" in request.last_user_text:
            return Reply.tool_use("shell", {"command": "mkdir later", "network": False})
        return model(request)

    fake_model.on_request(reporting)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say(f"track rotating the VPN password {SECRET} and check it later")
        clock.advance(timedelta(hours=2, minutes=1))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        await h.say("please make a folder for it")
        [pending] = await h.steward.stores.approvals.pending()
        assert "Forgotten" in await _forget_mine(h, "track rotating")
        asked = len(fake_model.requests)
        await h.say(f"/approve {pending.id}")
        resumed = [json.dumps(r.body) for r in fake_model.requests[asked:]]
        assert resumed and not any(SECRET in body for body in resumed)


async def test_another_goal_of_the_same_title_keeps_its_memories(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Review 36, fifth round: the title was replaced in every goal memory that quoted it, an
    older goal's of the same title too (one dropped in March and taken up again in May)."""
    fake_model.on_request(model)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=FrozenClock(NOW)) as h:
        title = f"Rotate VPN password {SECRET}"
        await h.say(f"/goal add {title}")
        owner = await h.steward.stores.people.resolve(OWNER)
        assert owner is not None
        [older] = await h.steward.stores.goals.active(owner.id)
        await h.say(f"/goal note {older.id} asked IT in March")
        await h.say(f"/goal drop {older.id}")
        await h.say(f"track rotating the VPN password {SECRET} and check it later")
        [newer] = await h.steward.stores.goals.active(owner.id)
        assert newer.id != older.id and newer.title == title
        assert "Forgotten" in await _forget_mine(h, "track rotating")
        kept = [m.text for m in await h.memories() if m.subject == f"goal {older.id}"]
        assert kept and all(title in text for text in kept), kept
