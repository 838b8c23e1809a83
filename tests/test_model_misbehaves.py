"""A model that misbehaves, and what it costs the owner (R199), through the real turn loop, the
real SDK and the loopback fakes: a task put off by the spent budget runs the next day; a model
writing slowly is given up at STEWARD_MODEL_TIMEOUT; a self-initiated turn stops when the budget
runs out part-way; invisible replies and reminders are no answer and no reminder; what the API
billed is kept when a stream breaks and its retry fails, and when a turn is cut short; ids too
large for SQLite and a blank due date are the model's mistakes, not crashes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply, Usage
from fakes.telegram import FakeTelegram
from harness import OWNER, Harness, running_steward, telegram_channel, until

from agent.types import TurnRequest
from bot.channels.formatting import telegram_visible_text
from memory.clock import FrozenClock
from memory.turns import TokenUsage, TurnStatus

NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
OWNER_TG = 1001
NO_ANSWER = "(The model gave no answer this time; please ask again.)"


def _billed(input_tokens: int, output_tokens: int = 0) -> Usage:
    """Usage with no prompt-cache figures (the fake estimates those left out)."""
    return Usage(input_tokens, output_tokens, 0, 0)


async def _job(h: Harness, kind: str = "task", text: str = "check the trains") -> TurnRequest:
    owner = await h.steward.stores.people.owner()
    chat = await h.steward.stores.people.chat("test", "c1")
    assert owner is not None
    return TurnRequest(kind=kind, user=owner, chat=chat, address=h.message("").address, text=text)


async def _chat_turns(h: Harness, status: str) -> list:  # type: ignore[type-arg]
    """The chat turns once the first has `status` (it is stored just after the reply goes)."""
    turns: list = []  # type: ignore[type-arg]
    for _ in range(200):
        turns = [t for t in await h.turns() if t.kind == "chat"]
        if turns and turns[0].status == status:
            break
        await asyncio.sleep(0.05)
    return turns


# -- 1. a one-off task the spent budget skipped runs the next day ------------------------------


async def test_a_one_off_task_skipped_for_the_spent_budget_runs_the_next_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """It was reported skipped and dropped: nothing said, nothing pending, never run."""
    clock = FrozenClock(NOW)
    spent = _billed(600)  # the chat that sets the task spends the 1,000
    fake_model.reply(
        Reply.tool_use(
            "task_add", {"when": "in 2 hours", "instruction": "check the strike"}, usage=spent
        )
    )
    fake_model.reply_text("I'll check at noon.", usage=spent)
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_DAILY_TOKEN_BUDGET="1000", clock=clock
    ) as h:
        await h.say("in 2 hours check the train strike")
        scheduler = h.steward.scheduler
        owner = await h.steward.stores.people.owner()
        assert scheduler is not None and owner is not None

        clock.advance(timedelta(hours=2, minutes=1))  # 12:01, the budget spent
        (report,) = await scheduler.run_due()
        assert (report.kind, report.status) == ("task", "skipped")
        (waiting,) = await scheduler.pending_for(owner)
        assert waiting.next_run_at == datetime(2026, 3, 11, 12, 0, tzinfo=UTC)  # same time
        (notice,) = [t for t in h.channel.texts() if "token budget" in t]  # told once, so
        assert "A one-time task you scheduled waits and runs tomorrow at its time" in notice

        clock.advance(timedelta(days=1))  # a new budget day, at its time
        fake_model.reply_text("The strike is over.")
        (report,) = await scheduler.run_due()
        assert (report.kind, report.status) == ("task", "sent")
        assert h.channel.texts()[-1] == "The strike is over."
        assert await scheduler.pending_for(owner) == []
    assert "check the strike" in fake_model.requests[-1].last_user_text


# -- 2. STEWARD_MODEL_TIMEOUT bounds a streamed answer -----------------------------------------


async def test_a_model_streaming_slowly_is_given_up_at_the_model_timeout(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """One delta every 0.3 s for 9 s with a 2 s timeout: the SDK's timeout is per read, so the
    answer came whole after 9 s (40 s in the review) and /status waited behind it."""
    fake_model.stream_delay = 0.3
    fake_model.reply_text("slow " * 96, usage=_billed(7000, 1))  # 30 deltas
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path,
            fake_model.base_url,
            STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}",
            STEWARD_MODEL_TIMEOUT="2",
        ) as h,
        telegram_channel(h, tg),
    ):
        started = time.monotonic()
        tg.push_message("hi", user_id=OWNER_TG)
        await asyncio.sleep(0.5)
        tg.push_message("/status", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", count=2, timeout=20)
        waited = time.monotonic() - started
        said = [telegram_visible_text(t) for t in tg.sent_texts(OWNER_TG)]
        (turn,) = await _chat_turns(h, "failed")
        fake_model.stream_delay = 0
        fake_model.reply_text("Quick answer.")  # the next message is answered as ever
        tg.push_message("are you there?", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", count=3, timeout=20)
        last = telegram_visible_text(tg.sent_texts(OWNER_TG)[-1])
    assert waited < 7, waited  # 9 s and more without the bound
    assert said[0].startswith(
        "Sorry, I couldn't answer: the model took longer than 2 seconds to answer "
        "(STEWARD_MODEL_TIMEOUT). Please try again in a little while"
    ), said
    assert "STEWARD_MODEL_TIMEOUT=300" in said[0]
    assert said[1].startswith("Up ") and "Model:" in said[1]  # /status, not behind it
    assert turn.status == "failed" and turn.usage.input_tokens == 7000  # billed, counted
    assert last == "Quick answer."


async def test_a_long_answer_streamed_within_the_timeout_still_arrives(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The bound is the whole answer, not a shorter one: 3 s of steady writing, 5 s allowed."""
    fake_model.stream_delay = 0.1
    fake_model.reply_text("word " * 96)  # 30 deltas
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path,
            fake_model.base_url,
            STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}",
            STEWARD_MODEL_TIMEOUT="5",
        ) as h,
        telegram_channel(h, tg),
    ):
        tg.push_message("write a lot", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", timeout=20)
        (turn,) = await _chat_turns(h, "completed")
    assert telegram_visible_text(tg.sent_texts(OWNER_TG)[-1]) == ("word " * 96).strip()
    assert turn.status == "completed"


# -- 3. the budget is checked between a self-initiated turn's steps ---------------------------


async def test_a_self_initiated_turn_stops_once_the_budget_is_spent_midway(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A task calling a tool at every step ran all 8: 339,796 tokens of a 1,000 budget."""
    fake_model.on_request(lambda r: Reply.tool_use("current_time", {}, usage=_billed(40_000)))
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_DAILY_TOKEN_BUDGET="1000"
    ) as h:
        outcome = await h.steward.respond(await _job(h))
        again = await h.steward.respond(await _job(h))
        usage = await h.say("/usage")
    assert (outcome.status, outcome.steps) == (TurnStatus.STEP_LIMIT, 1)
    assert len(fake_model.requests) == 1
    assert "today's token budget for work I start on my own" in outcome.text
    assert "Tell me to continue" in outcome.text
    assert again.status is TurnStatus.SKIPPED and again.skipped_for == "budget"
    assert "40,000 of 1,000 tokens" in usage


async def test_the_owners_own_chat_turn_is_not_stopped_by_the_budget(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The budget is for what Steward starts on its own: the owner's messages are answered."""
    fake_model.reply(Reply.tool_use("current_time", {}, usage=Usage(input_tokens=40_000)))
    fake_model.reply_text("It is ten.")
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_DAILY_TOKEN_BUDGET="1000"
    ) as h:
        assert await h.say("what time is it?") == "It is ten."


# -- 4. a reply of invisible characters alone is no answer ------------------------------------


async def test_a_reply_of_invisible_characters_alone_is_no_answer(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """ "\\u3164" and "\\u200b\\u2060" went out as blank messages, stored as sent."""
    fake_model.reply_text("\u3164")
    fake_model.reply(Reply.tool_use("current_time", {}, text="\u200b\u2060"))
    fake_model.reply_text("\u200b\u2060")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert await h.say("hi") == NO_ANSWER
        assert await h.say("what time is it?") == NO_ANSWER
        out = [m.text for m in await h.steward.stores.messages.all(direction="out")]
    assert out == [NO_ANSWER, NO_ANSWER]


# -- 5. reminder_add refuses invisible text ---------------------------------------------------


async def test_reminder_add_refuses_text_of_invisible_characters_alone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The model's "\\u200b\\u2060" was scheduled and fired as "Reminder: " and nothing."""
    fake_model.reply(
        Reply.tool_uses(
            [
                ("reminder_add", {"text": "\u200b\u2060", "when": "in 10 minutes"}),
                ("task_add", {"instruction": "\u3164", "when": "in 10 minutes"}),
            ]
        )
    )
    fake_model.reply_text("I could not.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("remind me in 10 minutes")
        owner = await h.steward.stores.people.owner()
        assert h.steward.scheduler is not None and owner is not None
        pending = await h.steward.scheduler.pending_for(owner)
    results = fake_model.requests[1].tool_results
    assert [r.get("is_error") for r in results] == [True, True]
    assert "say what it is about in words, e.g. “call mom”" in str(results[0]["content"])
    assert pending == []


# -- 6. a broken stream whose retry fails keeps its billed tokens -----------------------------


async def test_a_broken_stream_whose_unstreamed_retry_fails_keeps_its_tokens(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The stream reported 50,000 input tokens and broke; the retry got 500s: the turn kept
    TokenUsage(0, 0, 0, 0), where a retry that answered counts both."""
    fake_model.stream_delay = 0.05
    billed = _billed(50_000, 40)
    fake_model.reply(
        replace(Reply.text("Here is the start of it", usage=billed), cut_after_events=5)
    )
    fake_model.fail(500, times=5)
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path,
            fake_model.base_url,
            STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}",
            STEWARD_MODEL_RETRIES="1",
        ) as h,
        telegram_channel(h, tg),
    ):
        tg.push_message("answer me", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", timeout=30)
        (turn,) = await _chat_turns(h, "failed")
        budget = await h.steward.runner.budget_spent()
    assert [r.stream for r in fake_model.requests] == [True, False, False]
    assert "couldn't answer" in telegram_visible_text(tg.sent_texts(OWNER_TG)[-1])
    assert turn.usage == TokenUsage(input_tokens=50_000, output_tokens=1)
    assert budget == turn.usage.total


# -- 7. a turn cut short keeps what its model calls were billed -------------------------------


async def test_a_turn_cut_short_keeps_the_tokens_of_the_steps_it_made(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Stopped at its 4th model call (a crash, a kill), the turn read 0 steps and 0 tokens in
    /usage and the budget after the restart; 3 calls of 10,100 tokens had been billed."""
    fake_model.latency = 0.2
    fake_model.on_request(lambda r: Reply.tool_use("current_time", {}, usage=_billed(10_000, 100)))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        said = asyncio.create_task(h.say("look it up"))
        await until(lambda: len(fake_model.requests) >= 4, "the 4th model call", 30)
        said.cancel()
        await asyncio.gather(said, return_exceptions=True)
    fake_model.on_request(None)
    fake_model.latency = 0
    async with running_steward(tmp_path, fake_model.base_url) as h:  # the restart
        (turn,) = await h.turns()
        usage = await h.say("/usage")
    assert (turn.status, turn.steps) == ("interrupted", 3)
    assert turn.usage == TokenUsage(input_tokens=30_000, output_tokens=300)
    assert "Today: 30,300 tokens" in usage


# -- 8. ids too large for SQLite, a blank due date --------------------------------------------


async def test_ids_too_large_and_a_blank_due_are_the_models_mistakes_not_crashes(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """2**63 crashed goal_progress, goal_next_step, goal_close and schedule_cancel with
    OverflowError; goal_add with due " " raised ValueError ("failed unexpectedly")."""
    calls = [
        ("goal_progress", {"goal_id": 2**63, "note": "ran"}),
        ("goal_next_step", {"goal_id": 2**63, "next_step": "rest"}),
        ("goal_close", {"goal_id": -(2**63) - 5, "status": "done"}),
        ("schedule_cancel", {"schedule_id": 10**30}),
        ("goal_add", {"title": "Run a marathon", "due": " ", "cadence": " "}),
    ]
    fake_model.reply(Reply.tool_uses(calls))
    fake_model.reply_text("Done.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("go")
        schemas = {s["name"]: s["input_schema"] for s in h.steward.tools.schemas(0, None)}
        goals = await h.steward.stores.goals.active(1)
    results = [str(r["content"]) for r in fake_model.requests[1].tool_results]
    assert not any("unexpectedly" in r for r in results), results
    assert all("invalid arguments" in r for r in results[:4]), results
    assert results[4] == "Goal #1 added: Run a marathon"
    assert [(g.title, g.due_at, g.cadence) for g in goals] == [("Run a marathon", None, None)]
    for name, key in [("goal_progress", "goal_id"), ("schedule_cancel", "schedule_id")]:
        # checked in code: a range in the schema costs tokens on every model call
        assert set(schemas[name]["properties"][key]) <= {"type", "description"}
