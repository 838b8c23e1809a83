"""What the cut history tells the model when it opens with Steward's words, and a message too
long ever to be shown (review 206)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, running_steward

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
from agent.types import TurnRequest

ON_ITS_OWN = "(Steward wrote the following on its own.)"
A_REPLY = "(Steward's reply to an earlier message, no longer shown.)"
LEFT_OUT = "(A long message was left out here: too long to show.)"


def model(request: RecordedRequest) -> Reply:
    """No memories and no summary (nothing compacted, so the budget alone cuts the history);
    a long answer to "plan" questions, a short one otherwise."""
    if request.system_text == COMPACTION_SYSTEM:
        return Reply.text('{"summary": "", "facts": []}')
    if request.system_text == EXTRACTION_SYSTEM:
        return Reply.text('{"memories": []}')
    if "plan" in request.last_user_text:
        return Reply.text("The plan looks fine: " + "lunch at noon, talks after. " * 5)
    return Reply.text("Noted.")


def last_chat_request(fake: FakeAnthropic) -> list[dict[str, Any]]:
    chat = [r for r in fake.requests if r.system_text not in (COMPACTION_SYSTEM, EXTRACTION_SYSTEM)]
    return chat[-1].messages


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], b.get("text", "")) for m in messages for b in m["content"]]


async def test_a_reply_whose_question_fell_out_of_view_is_not_said_to_be_unprompted(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The budget kept an answer and cut its question: the answer was introduced as something
    Steward "wrote on its own" (16 of 40 group turns)."""
    fake_model.on_request(model)
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_HISTORY_TOKENS="100", STEWARD_EMBEDDER="none"
    ) as h:
        await h.say("About the offsite plan: " + "what about lunch and the talks? " * 9)
        await h.say("Thanks, book it.")
    messages = last_chat_request(fake_model)
    first = messages[0]["content"][0]["text"]
    assert first == A_REPLY, texts(messages)
    assert messages[1]["role"] == "assistant"
    assert messages[1]["content"][0]["text"].startswith("The plan looks fine")
    assert ON_ITS_OWN not in str(messages)


async def _task(h: Harness, text: str) -> TurnRequest:
    owner = await h.steward.stores.people.owner()
    chat = await h.steward.stores.people.chat("test", "c1")
    assert owner is not None
    return TurnRequest(kind="task", user=owner, chat=chat, address=h.message("").address, text=text)


async def test_what_steward_started_itself_is_still_said_to_be_its_own(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A scheduled task's message, first in view, keeps the "on its own" note."""
    fake_model.on_request(model)
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_HISTORY_TOKENS="100", STEWARD_EMBEDDER="none"
    ) as h:
        await h.say("/help")  # the chat exists; a command is no part of the conversation
        await h.steward.respond(await _task(h, "check the offsite plan"))
        await h.say("Thanks.")
    messages = last_chat_request(fake_model)
    assert messages[0]["content"][0]["text"] == ON_ITS_OWN, texts(messages)
    assert messages[1]["content"][0]["text"].startswith("The plan looks fine")


async def test_one_message_longer_than_the_budget_leaves_older_ones_in_view(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A pasted lease bigger than the whole budget hid itself and every older message: the
    landlord's name, said just before, was gone (and the lease's answer read as unprompted)."""
    fake_model.on_request(model)
    lease = "LEASE\n" + "Clause: the tenant shall keep the premises in good order. " * 60
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_HISTORY_TOKENS="200", STEWARD_EMBEDDER="none"
    ) as h:
        await h.say("My landlord is Mr Abernathy. I'll paste the lease next.")
        await h.say(lease)
        await h.say("What did I say the landlord is called?")
    messages = last_chat_request(fake_model)
    shown = texts(messages)
    assert shown[0] == ("user", "My landlord is Mr Abernathy. I'll paste the lease next."), shown
    assert ("user", LEFT_OUT) in shown
    assert "Clause:" not in str(messages) and ON_ITS_OWN not in str(messages)
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"] * (len(roles) % 2)
