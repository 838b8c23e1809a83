"""/new (R188): once a page was read in a chat, each reply was tainted by the one before, so every
write there asked for good (the README said: until the page scrolls out). The owner's /new puts
what was said out of view; the next turn is clean, and what it recalls of the page is labelled."""

from __future__ import annotations

from pathlib import Path

from test_trust_multiturn import greedy_model
from trust_world import instruction, trust_world

from agent.types import Address, ChatKind, IncomingMessage
from memory.people import Identity

REMIND = {"when": "in 2 hours", "text": "call mum"}


async def _decisions(w, tool: str) -> list[str]:  # type: ignore[no-untyped-def]
    events = await w.audit_kinds("tool.requested")
    return [e.detail["decision"] for e in events if e.subject == tool]


async def test_new_puts_a_read_page_out_of_view_and_the_next_turn_is_clean(
    tmp_path: Path,
) -> None:
    async with trust_world(tmp_path, model=greedy_model) as w:
        w.web.pages["/p"] = "<p>A harmless recipe page.</p>"
        await w.h.say(instruction("web_fetch", {"url": w.web.base_url + "/p"}))
        for note in ("thanks", "what time is it?", "ok"):
            await w.h.say(note)
        await w.h.say(instruction("reminder_add", REMIND))
        assert await _decisions(w, "reminder_add") == ["ask"]  # still tainted, many turns on
        while pending := await w.h.steward.stores.approvals.pending():
            for approval in pending:
                await w.h.say(f"/deny {approval.id}")

        said = await w.h.say("/new")
        assert said.startswith("New conversation"), said
        assert await w.h.say("/new") == "This is a new conversation already."
        await w.h.say(instruction("reminder_add", REMIND))
        assert await _decisions(w, "reminder_add") == ["ask", "allow"]
        last = (await w.h.turns())[-1]
        assert not last.tainted, last.label
        context = str(w.model.requests[-1].messages)
        assert "recipe" not in context and "thanks" not in context
        [event] = await w.audit_kinds("conversation.new")
        assert event.actor == "test:owner"
        await w.check_invariants()


async def test_in_a_group_only_the_owner_starts_a_new_conversation(tmp_path: Path) -> None:
    guest = Identity("test", "mallory")
    async with trust_world(tmp_path, model=greedy_model) as w:
        await w.h.steward.stores.people.admit(guest, "Mallory")
        for sender, text in ((guest, "hello all"), (guest, "/new")):
            await w.h.router.dispatch(
                IncomingMessage(
                    sender=sender, address=Address("test", "g1"), text=text,
                    chat_kind=ChatKind.GROUP,
                )
            )  # fmt: skip
        assert w.h.channel.texts("g1")[-1] == (
            "In a group only the owner can start a new conversation."
        )
        assert await w.audit_kinds("conversation.new") == []


async def test_new_waits_until_what_waits_in_the_chat_is_decided(tmp_path: Path) -> None:
    """R191: a turn paused on an approval before /new, decided after, wrote its tainted reply
    into the new conversation, though /new had said the page no longer made actions ask."""
    async with trust_world(tmp_path, model=greedy_model) as w:
        w.web.pages["/p"] = "<p>A harmless recipe page.</p>"
        await w.h.say(instruction("web_fetch", {"url": w.web.base_url + "/p"}))
        await w.h.say(instruction("reminder_add", REMIND))
        waiting = await w.h.steward.stores.approvals.pending()
        said = await w.h.say("/new")
        assert said.startswith(f"Decide what waits here first (#{waiting[0].id}"), said
        assert await w.audit_kinds("conversation.new") == []
        while pending := await w.h.steward.stores.approvals.pending():
            for approval in pending:
                await w.h.say(f"/deny {approval.id}")
        assert (await w.h.say("/new")).startswith("New conversation:")
        await w.h.say(instruction("reminder_add", REMIND))
        assert await _decisions(w, "reminder_add") == ["ask", "allow"]


async def test_new_in_a_thread_says_it_sets_the_whole_channels_conversation_aside(
    tmp_path: Path,
) -> None:
    """R191: /new in one Slack thread put every thread of the channel out of view, unsaid."""
    from harness import OWNER

    async with trust_world(tmp_path, model=greedy_model) as w:
        for text in ("the codename is BLUEBIRD", "/new"):
            await w.h.router.dispatch(
                IncomingMessage(
                    sender=OWNER, address=Address("test", "c9", "t1"), text=text,
                    chat_kind=ChatKind.GROUP,
                )
            )  # fmt: skip
        said = w.h.channel.texts("c9")[-1]
        assert said.startswith("New conversation (every thread of this channel too):"), said
