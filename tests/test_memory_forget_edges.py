"""Forgetting at its edges (review 34): other people's answers, a turn still going on, long
quotes, the command that said it, and facts drawn from a summary."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from harness import OWNER, Harness, running_steward

from agent.types import Address, ChatKind, IncomingMessage
from memory.people import Identity
from memory.turns import TurnStatus

FRIEND = Identity("test", "priya")


async def _ready(h: Harness) -> None:
    assert h.steward.memory is not None
    await h.steward.memory.start()
    async with asyncio.timeout(60):
        await h.steward.memory.wait_ready()


async def _post(h: Harness, sender: Identity, chat: str, text: str) -> None:
    await h.router.dispatch(
        IncomingMessage(
            sender=sender, address=Address("test", chat), text=text, chat_kind=ChatKind.GROUP
        )
    )


async def _row(h: Harness, user_id: int, text: str) -> int:
    for _ in range(50):
        found = await h.steward.stores.db.scalar(
            "SELECT id FROM memories WHERE kind = 'message' AND user_id = ? AND text = ?",
            (user_id, text),
        )
        if found:
            return int(found)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no row of {text!r}")


async def test_a_member_forgetting_a_short_message_rewrites_everyones_command_answers(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The forgotten text was cut out of every command answer in the chat: a member who forgot
    their own "the" rewrote the owner's /help answer."""
    fake_model.on_request(lambda r: Reply.text("Noted."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        friend = await h.steward.stores.people.admit(FRIEND, "Priya")
        await _post(h, OWNER, "g1", "/help")
        [before] = [
            m
            for m in await h.steward.stores.messages.all(direction="out")
            if not m.in_history and " the " in m.text
        ]
        await _post(h, FRIEND, "g1", "the")
        row = await _row(h, friend.id, "the")
        assert h.steward.memory is not None
        assert await h.steward.memory.forget(friend.id, row) is not None
        after = await h.steward.stores.messages.get(before.id)
        assert after is not None
        assert after.text == before.text, after.text[:300]


async def test_forgetting_the_row_of_a_message_whose_turn_waits_is_refused(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The person's own message row was forgotten while the turn it set off waited for an
    approval; the paused transcript brought the words back when it went on."""
    fake_model.on_request(lambda r: Reply.text("Noted."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        await h.say("My bank PIN is 4921, keep it.")
        row = await _row(h, 1, "My bank PIN is 4921, keep it.")
        turn = [t for t in await h.turns() if t.kind == "chat"][-1]  # not the extraction's
        await h.steward.stores.turns.set_status(
            turn.id, TurnStatus.AWAITING_APPROVAL, label=turn.label
        )
        said = await h.say(f"/memory forget {row}")
        assert "still going on" in said, said


async def test_a_long_message_quoted_shortened_in_a_search_answer_is_scrubbed_too(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A search quotes a turn over 400 characters as its first 399 and "…": that answer kept
    the code when only the whole text was looked for."""
    fake_model.on_request(lambda r: Reply.text("Noted."))
    long = "The alarm code is 7731. " + "The tomatoes on the balcony need water. " * 12
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        await h.say(long)
        assert "7731" in await h.say("/memory search alarm code")
        row = await _row(h, 1, long.strip())
        assert "Forgotten" in await h.say(f"/memory forget {row}")
        kept = [m.text[:80] for m in await h.steward.stores.messages.all() if "7731" in m.text]
        assert kept == [], kept


async def test_the_remember_command_that_said_it_is_scrubbed_too(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The command that stated the memory ("/remember …") kept its words in the log."""
    fake_model.on_request(lambda r: Reply.text("Noted."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        said = await h.say("/remember Bank PIN is 4921")
        [fact] = [m for m in await h.memories() if "4921" in m.text]
        assert "Forgotten" in await h.say(f"/memory forget {fact.id}"), said
        kept = [
            (m.direction, m.text) for m in await h.steward.stores.messages.all() if "4921" in m.text
        ]
        assert kept == [], kept


async def test_correcting_a_message_row_saves_a_note_the_owner_can_see(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A correction of a message search had shown was saved as a 'message' nobody wrote,
    listed nowhere (review 36). It is a note now, beside what was said."""
    import re

    fake_model.on_request(lambda r: Reply.text("Okay."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        await h.say("What's a good name for a cat?")
        found = re.search(r"message #(\d+)", await h.say("/memory search cat name"))
        assert found
        said = await h.say(f"/memory correct {found.group(1)} My cat is called Miso")
        assert "as a note" in said, said
        assert "Miso" in await h.say("/memory")


async def test_forgetting_either_half_of_an_exchange_forgets_both(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Forgetting Steward's answer (the hit a search showed) left the person's message that
    said the same (review 36)."""
    import re

    fake_model.reply_text("Got it: the alarm code is 7731.")
    fake_model.on_request(lambda r: Reply.text("Noted."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        await h.say("The alarm code is 7731.")
        shown = await h.say("/memory search alarm code")
        number = re.search(r"message #(\d+):", shown)
        assert number, shown
        assert "(2 messages)" in await h.say(f"/memory forget {number.group(1)}")
        kept = [m.text for m in await h.steward.stores.messages.all() if "7731" in m.text]
        assert kept == [], kept


async def test_a_forget_cut_short_is_finished_by_sending_it_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R169: killed mid-forget (the memory's row deleted, its messages not yet rewritten), the
    words stayed in history for good, and sending the command again said "You have no memory
    #2". The memory now goes last: a forget cut short at any step is finished by a resend.
    The cut is SQLite refusing the messages' rewrite (a trigger, as a full disk would)."""
    fake_model.reply_tool_use("memory_save", {"text": "Locker code is 4711-9382"})
    fake_model.on_request(lambda r: Reply.text("Saved."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        await h.say("remember that my locker code is 4711-9382")
        [fact] = [m for m in await h.memories() if m.kind.value != "message"]
        db = h.steward.stores.db
        await db.execute(
            "CREATE TRIGGER cut BEFORE UPDATE OF text ON messages BEGIN "
            "SELECT RAISE(ABORT, 'cut short'); END"
        )
        assert "Forgotten" not in await h.say(f"/memory forget {fact.id}")
        await db.execute("DROP TRIGGER cut")
        assert "Forgotten" in await h.say(f"/memory forget {fact.id}")
        said = [m.text for m in await h.steward.stores.messages.all() if "4711" in m.text]
        assert said == [], said
