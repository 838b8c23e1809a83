"""The owner's word lasts (review 69): a correction is not undone when compaction later reads the
conversation it corrected, and forgetting a fact compaction drew takes the message that said it.

Compaction and extraction date a fact when its words were said; an older word never retires a
memory made after it (it is kept as already replaced), while newer words still replace it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, running_steward

from agent.forgetting import FORGOTTEN
from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM, carries
from memory.clock import FrozenClock, parse_iso
from memory.longterm import Kind, Memory, NewMemory, Source, Trust
from memory.longterm.queries import CompactionMarks

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GARDEN = "The balcony garden: " + "tomatoes, basil and chillies. " * 5


async def _ready(h: Harness) -> None:
    assert h.steward.memory is not None
    await h.steward.memory.start()
    async with asyncio.timeout(60):
        await h.steward.memory.wait_ready()


def _home_city_model(request: RecordedRequest) -> Reply:
    """A memory model that reads a compacted span as it is written: where it says the owner
    lives, that is a fact with the subject "home city"."""
    if request.system_text == COMPACTION_SYSTEM:
        convo = request.last_user_text.split("The conversation:", 1)[-1]
        facts = []
        if "I live in Paris" in convo:
            facts.append({"text": "Lives in Paris.", "subject": "home city", "kind": "fact"})
        if "moved to Lisbon" in convo:
            facts.append({"text": "Lives in Lisbon.", "subject": "home city", "kind": "fact"})
        summary = {"summary": "Talked about home and the garden.", "facts": facts}
        return Reply.text(json.dumps(summary))
    if request.system_text == EXTRACTION_SYSTEM:
        return Reply.text('{"memories": []}')  # facts come from compaction only
    return Reply.text("Noted.")


async def _compact(h: Harness, clock: FrozenClock) -> None:
    for i in range(10):
        clock.advance(timedelta(minutes=1))
        await h.say(f"{GARDEN}{i}")
        if await CompactionMarks.from_stores(h.steward.stores).all():
            return
    raise AssertionError("no compaction happened")


async def _home_city(h: Harness, text: str) -> Memory:
    """A fact the owner gave (as the model saves it with `memory_save` during a turn)."""
    assert h.steward.memory is not None
    owner = await h.steward.stores.people.owner()
    assert owner is not None
    saved = await h.steward.memory.remember(NewMemory(owner.id, text, subject="home city"))
    return saved.memory


def _facts_in_force(memories: list[Memory]) -> list[str]:
    return [m.text for m in memories if m.active and m.kind in (Kind.FACT, Kind.PREFERENCE)]


async def test_a_correction_survives_compaction_of_the_words_it_corrected(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The owner corrected "Lives in Paris." to Berlin; compacting "I live in Paris" later drew
    "Lives in Paris." with the same subject, which retired the owner's correction."""
    fake_model.on_request(_home_city_model)
    clock = FrozenClock(T0)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="200"
    ) as h:
        await _ready(h)
        await h.say("I live in Paris, in a flat near the canal.")
        paris = await _home_city(h, "Lives in Paris.")
        clock.advance(timedelta(minutes=1))
        said = await h.say(f"/memory correct {paris.id} Lives in Berlin.")
        assert "replaces" in said, said
        await _compact(h, clock)
        memories = await h.memories()
        assert _facts_in_force(memories) == ["Lives in Berlin."], memories
        [berlin] = [m for m in memories if m.text == "Lives in Berlin."]
        [drawn] = [m for m in memories if m.text == "Lives in Paris." and m.id != paris.id]
        # kept as what the conversation said then, already replaced by the owner's correction
        assert drawn.superseded_by == berlin.id and drawn.created_at == T0
        assert drawn.source is Source.MODEL_INFERRED
        clock.advance(timedelta(minutes=1))
        await h.say("where do I live?", chat="c2")
        context = json.dumps(fake_model.requests[-1].body)
        assert "Lives in Berlin." in context and "Lives in Paris." not in context


async def test_newer_words_compacted_still_replace_the_correction(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """What the owner said after the correction is newer: compacted, it replaces it (a fact
    the span does not say in so many words is dated at the span's end, as newer words)."""
    fake_model.on_request(_home_city_model)
    clock = FrozenClock(T0)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="200"
    ) as h:
        await _ready(h)
        paris = await _home_city(h, "Lives in Paris.")
        clock.advance(timedelta(minutes=1))
        assert "replaces" in await h.say(f"/memory correct {paris.id} Lives in Berlin.")
        clock.advance(timedelta(minutes=1))
        await h.say("Big news: we moved to Lisbon last week!")
        await _compact(h, clock)
        memories = await h.memories()
        assert _facts_in_force(memories) == ["Lives in Lisbon."], memories
        [berlin] = [m for m in memories if m.text == "Lives in Berlin."]
        [lisbon] = [m for m in memories if m.text == "Lives in Lisbon."]
        assert berlin.superseded_by == lisbon.id
        # not said in so many words ("moved to"): dated at the end of the span it came from
        [mark] = await CompactionMarks.from_stores(h.steward.stores).all()
        last = await h.steward.stores.messages.get(mark.last_message_id)
        assert last is not None and lisbon.created_at == parse_iso(last.created_at)


async def test_an_older_word_saved_late_is_kept_as_already_replaced(tmp_path: Path) -> None:
    """The store's rule, for anything dated back: it retires nothing made after its words, is
    kept out of search and Chroma, and still retires what is older, or outside content."""
    clock = FrozenClock(T0)
    async with running_steward(tmp_path, None, clock=clock) as h:
        memory = h.steward.memory
        assert memory is not None
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        store = memory.store
        clock.advance(timedelta(hours=1))
        berlin = await store.save(NewMemory(owner.id, "Lives in Berlin.", subject="home"))
        late = await store.save(
            NewMemory(owner.id, "Lives in Paris.", subject="home", created_at=T0)
        )
        assert late.superseded == () and not late.memory.active
        assert late.memory.superseded_by == berlin.memory.id
        assert await store.records.active_ids(owner.id) == {berlin.memory.id}
        found = await store.search(owner.id, "Paris", 5, mode="keyword")
        assert [hit.memory.id for hit in found.hits] == []
        assert late.memory.id not in await store.records.unindexed_ids(owner.id)
        assert late.memory.id not in (await store.records.pending_removals()).get(owner.id, [])
        # newer words than Berlin's replace it, as always
        clock.advance(timedelta(hours=1))
        lisbon = await store.save(
            NewMemory(
                owner.id, "Lives in Lisbon.", subject="home", created_at=T0 + timedelta(hours=2)
            )
        )
        assert [m.id for m in lisbon.superseded] == [berlin.memory.id]
        # outside content made later is no newer word than the owner's
        web = await store.save(
            NewMemory(
                owner.id,
                "Prefers window seats.",
                kind=Kind.PREFERENCE,
                subject="seat",
                source=Source.WEB,
                trust=Trust.UNTRUSTED,
            )
        )
        mine = await store.save(
            NewMemory(
                owner.id,
                "Prefers aisle seats.",
                kind=Kind.PREFERENCE,
                subject="seat",
                created_at=T0,
            )
        )
        assert mine.memory.active and [m.id for m in mine.superseded] == [web.memory.id]


def _pin_model(request: RecordedRequest) -> Reply:
    if request.system_text == COMPACTION_SYSTEM:
        if "4921" in request.last_user_text:
            fact = {"text": "Bank PIN is 4921.", "subject": "bank PIN"}
            summary = "The owner gave their bank PIN 4921; garden talk."
            return Reply.text(json.dumps({"summary": summary, "facts": [fact]}))
        return Reply.text(json.dumps({"summary": "garden talk", "facts": []}))
    if request.system_text == EXTRACTION_SYSTEM:
        return Reply.text('{"memories": []}')
    return Reply.text("Noted.")


async def test_forgetting_a_compacted_fact_takes_the_message_that_said_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Forgetting the fact, then the summary it names, left "My bank PIN is 4921…": searchable,
    and recalled into a later turn in another chat. Only the message that says it goes."""
    fake_model.on_request(_pin_model)
    clock = FrozenClock(T0)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="150"
    ) as h:
        await _ready(h)
        await h.say("My bank PIN is 4921, keep it for me.")
        await _compact(h, clock)
        memories = await h.memories()
        [fact] = [m for m in memories if m.text == "Bank PIN is 4921."]
        [episode] = [m for m in memories if m.kind is Kind.EPISODE and "4921" in m.text]
        messages = h.steward.stores.messages
        [pin] = [m for m in await messages.all() if m.text.startswith("My bank PIN")]
        kept = [m for m in await messages.all() if m.in_history and m.id != pin.id]
        said = await h.say(f"/memory forget {fact.id}")
        now = {m.id: m.text for m in await messages.all()}
        assert now[pin.id] == FORGOTTEN
        assert all(now[m.id] == m.text for m in kept)  # the rest of the span, "Noted." too
        assert "(1 message)" in said and f"#{episode.id}" in said, said
        assert "Forgotten" in await h.say(f"/memory forget {episode.id}")
        assert h.steward.memory is not None
        await h.steward.memory.store.flush_vectors()
        assert "4921" not in await h.say("/memory search bank PIN")
        assert "4921" not in json.dumps([t.transcript for t in await _stored_turns(h)])
        clock.advance(timedelta(days=60))
        await h.say("what is my bank PIN again?", chat="c2")
        assert "4921" not in json.dumps(fake_model.requests[-1].body)


async def _stored_turns(h: Harness) -> list[object]:
    turns = h.steward.stores.turns
    return [s for t in await h.turns() if (s := await turns.stored(t.id)) is not None]


async def test_forgetting_a_summary_drops_the_compactions_stored_answer(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The compaction's turn kept the model's answer (the summary, the facts) as its stored
    transcript, shown in the console's activity: the summary forgotten, it goes too."""
    fake_model.on_request(_pin_model)
    clock = FrozenClock(T0)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="150"
    ) as h:
        await _ready(h)
        await h.say("My bank PIN is 4921, keep it for me.")
        await _compact(h, clock)
        [episode] = [m for m in await h.memories() if m.kind is Kind.EPISODE and "4921" in m.text]
        assert episode.turn_id is not None
        turns = h.steward.stores.turns
        before = await turns.stored(episode.turn_id)
        assert before is not None and "4921" in (before.transcript or "")
        assert "Forgotten" in await h.say(f"/memory forget {episode.id}")
        after = await turns.stored(episode.turn_id)
        assert after is not None and after.transcript is None
        [message] = [m for m in await h.steward.stores.messages.all() if "4921" in m.text]
        assert message.text.startswith("My bank PIN")  # a summary is no one message: kept


def test_which_messages_say_a_fact() -> None:
    """Its numbers, and most of its words give or take an ending; one shared word is not it."""
    assert carries("Bank PIN is 4921.", "My bank PIN is 4921, keep it for me.")
    assert carries("Bank PIN is 4921.", "Saved, your PIN 4921 is noted.")
    assert not carries("Bank PIN is 4921.", "The bank PIN changed last year.")
    assert carries("Lives in Paris.", "I live in Paris, in a flat near the canal.")
    assert not carries("Lives in Paris.", "Paris was lovely in spring.")
    assert not carries("Lives in Paris.", "I live for the weekends.")
    assert carries("Allergic to penicillin.", "Allergy: penicillin, since I was a child.")
    assert not carries("The user's.", "The user's message")
