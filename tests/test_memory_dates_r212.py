"""Dates of what the owner says, as extraction and the store keep them (review 212).

- The extraction call was never told when the message was said, yet asked for dates: "next
  Tuesday" was kept as said, or its year guessed. Its prompt now starts with the day the message
  was said, in the owner's zone.
- The same words said again on a later day were a duplicate that kept the first day: "next
  Tuesday" said on 9 April was shown dated 5 March, so the model read it as 10 March."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, said_last
from test_memory_agent import chat_requests, memories, steward_with_memory

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
from memory.clock import FrozenClock
from memory.longterm import NewMemory, Trust

ZONE = "Europe/Oslo"
DENTIST = "Has a dentist appointment next Tuesday."
TRASH = "Trash pickup is tomorrow morning"


def _extracting(text: str, clock: FrozenClock | None = None) -> Callable[[RecordedRequest], Reply]:
    """A model whose extraction answers `text`; a chat turn takes three hours when `clock`
    is given (the extraction runs after the message was said)."""

    def model(request: RecordedRequest) -> Reply:
        if request.system_text == EXTRACTION_SYSTEM:
            memory = {"text": text, "kind": "fact", "importance": 0.6}
            return Reply.text(json.dumps({"memories": [memory]}))
        if request.system_text == COMPACTION_SYSTEM:
            return Reply.text(json.dumps({"summary": "s", "facts": []}))
        if clock is not None and "dentist" in said_last(request):
            clock.advance(timedelta(hours=3))
        return Reply.text("Noted.")

    return model


def _extraction_prompts(fake: FakeAnthropic) -> list[str]:
    return [r.last_user_text for r in fake.requests if r.system_text == EXTRACTION_SYSTEM]


async def test_the_extraction_is_told_the_day_the_message_was_said(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    # Thursday 5 March 2026, 23:30 UTC: Friday 6 March 00:30 in Oslo
    clock = FrozenClock(datetime(2026, 3, 5, 23, 30, tzinfo=UTC))
    fake_model.on_request(_extracting(DENTIST, clock))
    async with steward_with_memory(tmp_path, fake_model, clock=clock) as h:
        await h.say(f"/timezone {ZONE}")
        await h.say("My dentist appointment is next Tuesday. I moved here two years ago.")
    [prompt] = _extraction_prompts(fake_model)
    # the message's time in the owner's zone, not the UTC day nor when the turn ended
    assert prompt.startswith("Said: Friday 2026-03-06 00:30 (Europe/Oslo)\n\n"), prompt
    assert prompt.endswith(
        "Already remembered:\n(nothing yet)\n\nThe user's message:\n"
        "My dentist appointment is next Tuesday. I moved here two years ago."
    ), prompt
    assert '"Said:"' in EXTRACTION_SYSTEM and "relative dates" in EXTRACTION_SYSTEM


async def _context_of_last_turn(h: Harness, fake: FakeAnthropic, text: str) -> str:
    await h.say(text)
    return chat_requests(fake)[-1].last_user_text


async def test_a_fact_said_again_later_is_dated_at_the_later_saying(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_extracting(DENTIST))
    clock = FrozenClock(datetime(2026, 3, 5, 9, 0, tzinfo=UTC))  # Thursday 5 March
    async with steward_with_memory(tmp_path, fake_model, clock=clock) as h:
        await h.say(f"/timezone {ZONE}")
        await h.say("My dentist appointment is next Tuesday.")
        first = await h.say(f"/remember {TRASH}")
        clock.advance(timedelta(days=35))  # Thursday 9 April: a new appointment
        await h.say("My dentist appointment is next Tuesday.")
        again = await h.say(f"/remember {TRASH}")
        clock.advance(timedelta(days=2))
        context = await _context_of_last_turn(h, fake_model, "When is my dentist appointment?")
        listing = await h.say("/memory")
        kept = [m for m in await memories(h) if m.kind.value != "message"]
    trash = next(m for m in kept if m.text == TRASH)
    assert first.startswith(f"Remembered #{trash.id}") and again == (
        f"I already remember that (#{trash.id})."
    )
    assert len(kept) == 2 and all(m.active for m in kept)  # one memory each, not two
    assert "(2026-04-09) Has a dentist appointment next Tuesday." in context, context
    assert f"#{trash.id} (2026-04-09, note, owner said): {TRASH}" in listing, listing
    assert "2026-03-05" not in listing, listing


async def test_older_or_outside_words_never_move_the_date(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Only the owner's later saying moves it: words dated before it (a compaction of older
    messages) and outside content repeating the owner's words leave it as it was."""
    fake_model.on_request(_extracting(DENTIST))
    clock = FrozenClock(datetime(2026, 3, 5, 9, 0, tzinfo=UTC))
    async with steward_with_memory(tmp_path, fake_model, clock=clock) as h:
        assert h.steward.memory is not None
        store = h.steward.memory.store
        await h.say(f"/remember {TRASH}")
        [mine] = [m for m in await memories(h) if m.text == TRASH]
        clock.advance(timedelta(days=10))
        older = NewMemory(mine.user_id, TRASH, created_at=mine.created_at - timedelta(days=1))
        outside = NewMemory(mine.user_id, TRASH, trust=Trust.UNTRUSTED)
        for new in (older, outside):
            saved = await store.save(new)
            assert saved.duplicate and saved.memory.created_at == mine.created_at
        assert (await store.records.get(mine.user_id, mine.id)) == mine
