"""How a turn ends when the model stops for a reason other than finishing: an answer the length
limit cut off says so (it looked complete, review 64), one cut inside a tool call says that
action was not taken (the half-written call is never run), and a wordless refusal is said."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from harness import running_steward


async def test_an_answer_cut_by_the_length_limit_says_so(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    cut = "Here are the ten steps:\n\n1. First do this.\n2. Then do th"
    fake_model.reply(Reply.text(cut, stop_reason="max_tokens"))
    fake_model.reply_text("3. And then the rest.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        reply = await h.say("give me the ten steps")
        assert reply.startswith(cut)
        assert "cut off" in reply and "STEWARD_MAX_TOKENS" in reply and "continue" in reply
        assert await h.say("continue") == "3. And then the rest."
        # the note went into the history too: the model knows its answer was cut
        assert "cut off" in str(fake_model.requests[-1].messages)


async def test_a_tool_call_cut_by_the_length_limit_is_not_run_and_is_said(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    cut = Reply(
        content=[
            {"type": "text", "text": "Writing the file now."},
            {"type": "tool_use", "name": "goal_add", "input": {"title": "Half a ti"}},
        ],
        stop_reason="max_tokens",
    )
    fake_model.reply(cut)
    fake_model.reply_text("fine")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        reply = await h.say("add a goal with a very long title")
        assert "that action was not taken" in reply and "(done)" not in reply
        assert await h.steward.stores.goals.active(1) == []
        assert await h.say("ok") == "fine"  # the next turn's request is well formed


async def test_a_refusal_without_words_is_said(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    fake_model.reply(Reply(content=[], stop_reason="refusal"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert await h.say("something it will not do") == "(The model declined to answer this.)"


async def test_what_the_model_wrote_before_a_tool_call_is_part_of_the_answer(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R148: a summary written before a tool call was streamed and then gone (unstreamed, never
    seen): only the last step's words were the reply."""
    summary = "Here is your summary: the roof is fixed, the bill is paid."
    fake_model.reply_tool_use("current_time", {}, text=summary)
    fake_model.reply_text("Noted at 19:10.")
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_STREAMING="off") as h:
        said = await h.say("sum it up and note the time")
        stored = [m.text for m in await h.steward.stores.messages.all(direction="out")]
    assert said == f"{summary}\n\nNoted at 19:10."
    assert stored == [said]


async def test_a_turn_the_model_ends_without_a_word_says_what_happened(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R156: an empty answer reached the owner as "(done)", though nothing was done; after an
    action, "(done)" named nothing."""
    fake_model.reply_text("")
    fake_model.reply_tool_use("goal_add", {"title": "Learn Portuguese"})
    fake_model.reply_text("  ")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        nothing = await h.say("hello")
        acted = await h.say("add a goal: learn Portuguese")
    assert nothing == "(The model gave no answer this time; please ask again.)"
    assert acted.startswith("Done: goal_add") and "Learn Portuguese" in acted, acted
