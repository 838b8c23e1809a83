"""R206: what compaction summarises. Only the part of a private chat its person may see goes into
their memory (the owner's words stayed in a re-allowed account's chat and were summarised into
the next holder's), and only messages the summary call was shown are marked summarised (a span
past 24,000 characters was marked though its later part was never shown)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, RecordingChannel
from test_memory_agent import steward_with_memory

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM, MAX_COMPACT_CHARS
from agent.types import Address, IncomingMessage
from memory.longterm import Compaction, Kind
from memory.longterm.queries import CompactionMarks
from memory.messages import StoredMessage
from memory.people import Identity

PHONE = Identity("slack", "UPHONE")
OTHER = Identity("slack", "UOTHER")  # a second one: which DM was whose cannot be told
SECRET = "OWNER-safe-code-4711"


def is_compaction(request: RecordedRequest) -> bool:
    return request.system_text == COMPACTION_SYSTEM


def summary_of(request: RecordedRequest) -> Reply:
    """A summary and facts made of what the call was shown, as a model would."""
    shown = request.last_user_text.split("The conversation:", 1)[1]
    facts = [{"text": f"Bank PIN is {SECRET}.", "kind": "fact", "subject": "bank PIN"}]
    return Reply.text(
        json.dumps({"summary": "Said: " + shown[:600], "facts": facts if SECRET in shown else []})
    )


async def marks(h: Harness) -> list[Compaction]:
    return await CompactionMarks.from_stores(h.steward.stores).all()


def marked(mark_list: list[Compaction], message_id: int) -> bool:
    return any(m.first_message_id <= message_id <= m.last_message_id for m in mark_list)


async def test_the_owners_words_are_not_summarised_into_the_next_holders_memory(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The owner's second Slack account is unlinked and let in again as someone else; its
    direct chat keeps the owner's words. The next holder's compaction neither shows nor saves
    nor marks them (their history view already left them out, R130)."""

    def model(request: RecordedRequest) -> Reply:
        if is_compaction(request):
            return summary_of(request)
        if request.system_text == EXTRACTION_SYSTEM:
            return Reply.text('{"memories": []}')
        return Reply.text("noted")

    fake_model.on_request(model)
    async with steward_with_memory(tmp_path, fake_model, STEWARD_HISTORY_TOKENS="300") as h:
        assert h.steward.memory is not None
        stores = h.steward.stores
        h.steward.switchboard.register("slack", RecordingChannel(name="slack"))

        async def on_phone(text: str) -> None:
            await h.router.dispatch(
                IncomingMessage(sender=PHONE, address=Address("slack", "DPHONE"), text=text)
            )
            await h.steward.memory.upkeep_settled()  # type: ignore[union-attr]

        for account, direct in ((OTHER, "DOTHER"), (PHONE, "DPHONE")):
            await stores.people.admit(account, "")
            code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", await h.say("/link"))
            assert code is not None
            await h.router.dispatch(
                IncomingMessage(
                    sender=account, address=Address("slack", direct), text=f"/link {code[0]}"
                )
            )
        assert (await stores.people.resolve(PHONE)).is_owner  # type: ignore[union-attr]
        await on_phone(f"my bank PIN is {SECRET}, keep it safe")
        pin = next(m for m in await stores.messages.all() if SECRET in m.text)
        assert "no longer one of the owner's accounts" in await h.say("/revoke slack:UPHONE")
        assert "may talk to me now" in await h.say("/allow slack:UPHONE")
        holder = await stores.people.resolve(PHONE)
        assert holder is not None and not holder.is_owner
        before = len(fake_model.requests)
        for i in range(6):
            await on_phone(f"hi, I'm the new holder of this account, message {i}. " * 6)

        summaries = [r for r in fake_model.requests[before:] if is_compaction(r)]
        assert summaries, "the holder's conversation outgrew its budget but was not compacted"
        assert not any(SECRET in r.last_user_text for r in summaries)
        theirs = [m for m in await h.memories() if m.user_id == holder.id]
        assert any(m.kind is Kind.EPISODE for m in theirs)
        assert not [m for m in theirs if SECRET in m.text and m.kind is not Kind.MESSAGE]
        assert not marked(await marks(h), pin.id)


def filler_model(ready: list[bool]) -> Any:
    """Summaries fail (no summary) until `ready` is set: the conversation piles up meanwhile,
    as while the model was down."""

    def model(request: RecordedRequest) -> Reply:
        if is_compaction(request):
            if not ready:
                return Reply.text('{"summary": ""}')
            return Reply.text(json.dumps({"summary": "Talked about notes.", "facts": []}))
        if request.system_text == EXTRACTION_SYSTEM:
            return Reply.text('{"memories": []}')
        return Reply.text("Noted.")

    return model


def unseen(
    messages: list[StoredMessage], mark_list: list[Compaction], shown: list[str]
) -> list[int]:
    """Messages marked summarised whose words no summary call was shown."""
    return [
        m.id
        for m in messages
        if marked(mark_list, m.id) and not any(m.text[:2000] in text for text in shown)
    ]


async def test_every_message_marked_summarised_was_shown_to_a_summary(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A long overflow (more than one summary can be shown) takes several summaries in one
    upkeep; none marks a message the summary call was not shown."""
    ready: list[bool] = []
    fake_model.on_request(filler_model(ready))
    async with steward_with_memory(tmp_path, fake_model, STEWARD_HISTORY_TOKENS="2000") as h:
        for i in range(18):
            await h.say(f"(note {i}) " + f"the shed, the hedge and the gutters, item {i}. " * 40)
        assert await marks(h) == []
        ready.append(True)
        await h.say("That is all for today.")
        mark_list = await marks(h)
        shown = [r.last_user_text for r in fake_model.requests if is_compaction(r)]
        messages = await h.steward.stores.messages.all()
        assert unseen(messages, mark_list, shown) == []
        assert sum(len(t) for t in shown[-len(mark_list) :]) > MAX_COMPACT_CHARS
        assert len(mark_list) >= 2
        assert "earlier part cut" not in "".join(shown)
        floor = max(m.last_message_id for m in mark_list)
        assert (
            await h.steward.stores.messages.history_tokens_after(messages[0].chat_id, floor) <= 2000
        )


async def test_a_text_too_long_for_a_summary_is_shown_cut_and_said_so(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A pasted text longer than a summary call is shown: its beginning, with a note that the
    rest is left out, and the answer to it; the words said after it come in the next summary."""
    ready = [True]
    fake_model.on_request(filler_model(ready))
    paste = "LEASE CONTRACT\n" + "Clause: the tenant keeps the premises in good order. " * 600
    async with steward_with_memory(tmp_path, fake_model, STEWARD_HISTORY_TOKENS="2000") as h:
        await h.say("I'm going to paste the lease contract, keep it in mind.")
        await h.say(paste)
        await h.say("By the way, my daughter's school play is on 3 December at 6 pm.")
        for i in range(3):
            await h.say(f"({i}) small talk about the weather " * 3)
        mark_list = await marks(h)
        shown = [r.last_user_text for r in fake_model.requests if is_compaction(r)]
        messages = await h.steward.stores.messages.all()
        pasted = next(m for m in messages if m.text == paste)
        assert marked(mark_list, pasted.id)
        [with_paste] = [text for text in shown if paste[:2000] in text]
        assert "the rest of this message" in with_paste and "left out for length" in with_paste
        assert len(with_paste.split("The conversation:", 1)[1]) <= MAX_COMPACT_CHARS
        assert "school play" not in with_paste
        others = [m for m in messages if m.id != pasted.id]
        assert unseen(others, mark_list, shown) == []
