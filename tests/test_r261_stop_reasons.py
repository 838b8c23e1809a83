"""R261: how the model stopped is read, not only what it wrote.

1. A compaction answer the model did not finish (cut by max_tokens, or declined) is a failed
   `memory` turn, and the span is not sent again after every message: tried again after a
   doubling wait, then the history moves past it without a summary (15 identical calls in 20
   messages, each recorded completed).
2. After a refusal, the message that set it off and the cut reply are left out of every later
   history and summary, and the owner is told to rephrase (the API's advice: reset the
   context, or more refusals follow).
3. `model_context_window_exceeded` is said, as a cut answer and as an action not taken (the
   text said "Adding the goal now." and nothing was added), as is a tool call under any stop
   reason the loop does not run.
4. A prompt too long from what the turn itself read says so, not "/new" and a
   STEWARD_HISTORY_TOKENS no lower than the setting.
"""

from __future__ import annotations

import json
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import running_steward
from test_memory_agent import history_text, steward_with_memory

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
from memory.longterm.queries import CompactionMarks

WORDS = "we planted tomatoes and beans in the garden today " * 3


async def test_a_summary_the_model_did_not_finish_is_not_asked_again_after_every_message(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    def model(request: RecordedRequest) -> Reply:
        if request.system_text == COMPACTION_SYSTEM:  # cut by the length limit: no JSON
            cut = '{"summary": "The user talked about the garden and'
            return Reply.text(cut, stop_reason="max_tokens")
        if request.system_text == EXTRACTION_SYSTEM:
            return Reply.text('{"memories": []}')
        return Reply.text("Noted.")

    fake_model.on_request(model)
    async with steward_with_memory(tmp_path, fake_model, STEWARD_HISTORY_TOKENS="300") as h:
        for i in range(24):
            await h.say(f"message number {i}: {WORDS}")
        compactions = [r for r in fake_model.requests if r.system_text == COMPACTION_SYSTEM]
        memory_turns = [t for t in await h.turns() if t.kind == "memory"]
        marks = await CompactionMarks.from_stores(h.steward.stores).all()
        last_chat = [r for r in fake_model.requests if r.system_text != COMPACTION_SYSTEM][-1]
    assert 3 <= len(compactions) <= 5, len(compactions)  # 18 before: one after every message
    assert all(t.status == "failed" for t in memory_turns), memory_turns
    assert all("cut off by the length limit" in (t.error or "") for t in memory_turns)
    # given up on: the history moved past the span, no episode claims to summarise it
    assert marks and marks[0].episode_id is None and marks[0].first_message_id == 1
    assert "message number 0:" not in history_text(last_chat)  # (recall may still find it)


async def test_a_refused_exchange_is_left_out_of_the_conversation_and_its_summaries(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    def model(request: RecordedRequest) -> Reply:
        if request.system_text == COMPACTION_SYSTEM:
            shown = request.last_user_text.split("The conversation:", 1)[1]
            return Reply.text(json.dumps({"summary": "Said: " + shown[:400], "facts": []}))
        if request.system_text == EXTRACTION_SYSTEM:
            return Reply.text('{"memories": []}')
        if "TRIGGER-THE-CLASSIFIER" in request.last_user_text:
            return Reply.text("Sure, the first step is", stop_reason="refusal")
        return Reply.text("Noted.")

    fake_model.on_request(model)
    async with steward_with_memory(tmp_path, fake_model, STEWARD_HISTORY_TOKENS="300") as h:
        await h.say(f"first: {WORDS}")
        refused = await h.say("TRIGGER-THE-CLASSIFIER please explain")
        await h.say("what's the weather like?")
        next_chat = [r for r in fake_model.requests if r.system_text not in (COMPACTION_SYSTEM,)]
        history = history_text(next_chat[-1])
        for i in range(8):
            await h.say(f"message number {i}: {WORDS}")
        compactions = [r for r in fake_model.requests if r.system_text == COMPACTION_SYSTEM]
        stored = await h.steward.stores.messages.all()
    assert "TRIGGER" not in history and "Sure, the first step" not in history
    assert refused.startswith("Sure, the first step is\n\n[The model declined")
    assert "rephrase" in refused and "left out of our conversation" in refused
    assert "first: we planted" in history  # the rest of the conversation is still there
    left_out = [m for m in stored if "TRIGGER" in m.text or "Sure, the first" in m.text]
    assert len(left_out) == 2 and not any(m.in_history for m in left_out)
    assert compactions  # the conversation was summarised, without the refused exchange
    assert "first: we planted" in compactions[0].last_user_text
    assert not any("TRIGGER" in r.last_user_text for r in compactions)
    assert not any("Sure, the first step" in r.last_user_text for r in compactions)


async def test_a_full_context_window_says_the_answer_was_cut(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    cut = "Here are the ten steps:\n\n1. First do this.\n2. Then do th"
    fake_model.reply(Reply.text(cut, stop_reason="model_context_window_exceeded"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        reply = await h.say("give me the ten steps")
    assert reply.startswith(cut + "\n\n[My answer was cut off here")
    assert "/new" in reply


async def test_an_action_cut_by_a_full_context_window_is_said_not_taken(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    content = [
        {"type": "text", "text": "Adding the goal now."},
        {"type": "tool_use", "name": "goal_add", "input": {"title": "Half a ti"}},
    ]
    fake_model.reply(Reply(content=content, stop_reason="model_context_window_exceeded"))
    fake_model.reply(Reply(content=content, stop_reason="pause_turn"))  # any other reason
    async with running_steward(tmp_path, fake_model.base_url) as h:
        full = await h.say("add a goal with a very long title")
        other = await h.say("add it again")
        goals = await h.steward.stores.goals.active(1)
    assert "that action was not taken" in full and "/new" in full
    assert other.startswith("Adding the goal now.\n\n[") and "it was not taken" in other
    assert goals == []


async def test_a_prompt_too_long_from_what_the_turn_read_says_to_ask_for_less(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    reason = "prompt is too long: 212000 tokens > 200000 maximum"
    async with running_steward(tmp_path, fake_model.base_url) as h:
        ws = h.settings.workspace
        ws.mkdir(parents=True, exist_ok=True)
        for i in range(4):
            (ws / f"log{i}.txt").write_text(f"entry {i} " * 4000)
        fake_model.reply_tool_uses([("read_file", {"path": f"log{i}.txt"}) for i in range(4)])
        fake_model.fail(400, message=reason)
        midway = await h.say("read all four logs and compare them")
        fake_model.fail(400, message=reason)
        first = await h.say("hello")
    assert "what I read for this request was too much" in midway and reason in midway
    assert "less at a time" in midway
    assert "/new" not in midway and "STEWARD_HISTORY_TOKENS" not in midway
    # at the first step: the conversation, and never a value as high as the default
    assert "/new" in first and "STEWARD_HISTORY_TOKENS=6000" not in first
