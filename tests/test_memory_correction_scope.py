"""A correction changes the memory the owner named, where it was (R142): not a near-duplicate
of it, not the chat or group it belonged to; a chat's summary corrected is still the chat's
summary; and a fact drawn from a summary names that summary, which still says the old."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import OWNER, Harness, running_steward
from test_memory_corrections_last import _compact, _home_city_model
from test_memory_forget import T0, memory_ready

from agent.memory_upkeep import COMPACTION_SYSTEM
from agent.types import Address, ChatKind, IncomingMessage
from memory.clock import FrozenClock
from memory.longterm import Kind


def _paris_model(request: RecordedRequest) -> Reply:
    if request.system_text == COMPACTION_SYSTEM and "I live in Paris" in request.last_user_text:
        summary = "The owner lives in Paris, in a flat near the canal; the balcony garden."
        fact = {"text": "Lives in Paris.", "subject": "home city", "kind": "fact"}
        return Reply.text(json.dumps({"summary": summary, "facts": [fact]}))
    return _home_city_model(request)


async def test_a_correction_retires_the_memory_named_not_a_near_duplicate(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda r: Reply.text("Noted."))
    clock = FrozenClock(T0)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await memory_ready(h)
        await h.say("/remember Sister Ana lives in Porto.")
        clock.advance(timedelta(days=1))
        await h.say("/remember Sister Ana works in Lisbon.")
        by_text = {m.text: m for m in await h.memories() if m.kind is not Kind.MESSAGE}
        lives, works = by_text["Sister Ana lives in Porto."], by_text["Sister Ana works in Lisbon."]
        said = await h.say(f"/memory correct {works.id} Sister Ana works in Porto.")
        after = {m.id: m for m in await h.memories()}
    assert f"it replaces #{works.id}." in said
    assert after[lives.id].active, "a memory the owner did not name was retired"
    assert not after[works.id].active


async def test_a_correction_still_holds_its_subjects_slot_alone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R144: skipping near-duplicates skipped the slot too: correcting a page's claim about
    where the owner lives left the owner's older fact in force beside the correction."""
    from memory.labels import Label
    from memory.longterm import NewMemory, Source

    fake_model.on_request(lambda r: Reply.text("Noted."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await memory_ready(h)
        owner = await h.steward.stores.people.owner()
        assert owner is not None and h.steward.memory is not None
        store = h.steward.memory.store
        paris = await store.save(NewMemory(owner.id, "I live in Paris.", subject="home city"))
        claim = NewMemory(
            owner.id,
            "The owner lives in Berlin.",
            subject="home city",
            source=Source.WEB,
            label=Label.untrusted("web:example.org"),
        )
        web = await store.save(claim)  # outside words cannot retire the owner's
        await h.say(f"/memory correct {web.memory.id} I live in Rome.")
        facts = [m.text for m in await h.memories() if m.active and m.kind is Kind.FACT]
    assert paris.memory.active and facts == ["I live in Rome."]


@asynccontextmanager
async def _compacted_paris(
    tmp_path: Path, fake_model: FakeAnthropic
) -> AsyncIterator[tuple[Harness, FrozenClock]]:
    """A chat whose "I live in Paris" was compacted: a summary, and a fact drawn from it."""
    fake_model.on_request(_paris_model)
    clock = FrozenClock(T0)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="200"
    ) as h:
        await memory_ready(h)
        await h.say("I live in Paris, in a flat near the canal.")
        await _compact(h, clock)
        yield h, clock


async def test_a_fact_drawn_from_a_summary_names_the_summary_when_corrected(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async with _compacted_paris(tmp_path, fake_model) as (h, _):
        memories = await h.memories()
        (paris,) = [m for m in memories if m.text == "Lives in Paris."]
        (summary,) = [m for m in memories if m.kind is Kind.EPISODE]
        said = await h.say(f"/memory correct {paris.id} Lives in Lisbon.")
    assert f"it replaces #{paris.id}." in said
    assert f"Summary #{summary.id}" in said and f"correct or forget #{summary.id}" in said


async def test_a_chats_summary_corrected_is_still_that_chats_summary(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async with _compacted_paris(tmp_path, fake_model) as (h, clock):
        (summary,) = [m for m in await h.memories() if m.kind is Kind.EPISODE]
        fixed = summary.text.replace("Paris", "Lisbon")
        said = await h.say(f"/memory correct {summary.id} {fixed}")
        clock.advance(timedelta(minutes=5))
        await h.say("how are the tomatoes doing, do you think?")
        context = json.dumps(fake_model.requests[-1].body["messages"][-1], ensure_ascii=False)
    assert f"it replaces #{summary.id}." in said
    assert "Earlier in this chat" in context and fixed in context
    assert "lives in Paris" not in context


async def test_a_groups_memory_corrected_in_private_stays_the_groups(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda r: Reply.text("Noted."))
    group = "team-group"
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await memory_ready(h)

        async def in_group(text: str) -> str:
            incoming = IncomingMessage(
                sender=OWNER, address=Address("test", group), text=text, chat_kind=ChatKind.GROUP
            )
            await h.router.dispatch(incoming)
            await h.steward.memory.upkeep_settled()
            return h.channel.texts(group)[-1]

        await in_group("/remember The lake trip is on Saturday, meet at the pier.")
        (trip,) = [m for m in await h.memories() if "lake trip" in m.text]
        await h.say(f"/memory correct {trip.id} The lake trip is on Sunday, meet at the pier.")
        found = await in_group("/memory search lake trip")
        (fixed,) = [m for m in await h.memories() if "Sunday" in m.text]
    assert fixed.chat_id == trip.chat_id is not None
    assert "Sunday" in found and "Saturday" not in found
