"""R249: what the owner corrected, as the next turn, the summariser and the commands read it.

A correction marks the words the old memory came from wherever they are shown again: the
`memory_search` tool and `/memory search`, the transcript compaction summarises, and (for a
fact compaction drew, whose turn is the compaction's) recall. `/memory show` names where
outside content came from, as the console does."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import running_steward
from test_memory_corrections_last import (
    GARDEN,
    _compact,
    _home_city_model,
    _saves_the_nurse_job,
    _tell_job_and_allergy,
)
from test_memory_forget import T0, memory_ready

from agent.cards import describe_sources
from agent.memory_upkeep import COMPACTION_SYSTEM
from memory.clock import FrozenClock
from memory.labels import Label
from memory.longterm import NewMemory, Source, Trust


async def test_memory_search_tool_marks_the_exchange_of_a_corrected_memory(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """After /memory correct, the model's memory_search returned the owner's old words (the
    exchange the corrected memory came from) unmarked, while recall and the history mark them."""
    _saves_the_nurse_job(fake_model)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        fact = await _tell_job_and_allergy(h)
        said = await h.say(f"/memory correct {fact.id} Works as a teacher at Hillside school.")
        assert "replaces" in said
        assert h.steward.memory is not None
        await h.steward.memory.store.flush_vectors()
        fake_model.reply_tool_use(
            "memory_search", {"query": "nurse Saint Mary", "kind": "messages"}
        )
        fake_model.reply_text("You work at Saint Mary.")
        await h.say("Which hospital?", chat="c2")
        results = fake_model.requests[-1].tool_results
    text = json.loads(json.dumps(results))[0]["content"]
    [line] = [x for x in text.splitlines() if "I work as a nurse" in x]
    assert f"memory #{fact.id} taken from this exchange was since corrected" in line, text
    assert "Works as a teacher at Hillside school." in line  # the owner's word, in private
    assert line.index("since corrected") < line.index("I work as a nurse")


async def test_memory_search_command_marks_the_exchange_of_a_corrected_memory(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """`/memory search` showed the same exchange unmarked."""
    _saves_the_nurse_job(fake_model)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        fact = await _tell_job_and_allergy(h)
        await h.say(f"/memory correct {fact.id} Works as a teacher at Hillside school.")
        assert h.steward.memory is not None
        await h.steward.memory.store.flush_vectors()
        shown = await h.say("/memory search nurse Saint Mary")
    [line] = [x for x in shown.splitlines() if "I work as a nurse" in x]
    assert f"memory #{fact.id} taken from this exchange was since corrected" in line, shown


async def test_compaction_after_a_correction_is_shown_the_correction(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """After /memory correct, the compaction that summarised the exchange the old memory came
    from was shown "I work as a nurse…" unmarked: the episode it writes (in every later turn's
    context in that chat) could restate the old belief. Other messages stay unmarked."""
    _saves_the_nurse_job(fake_model)
    clock = FrozenClock(T0)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="200"
    ) as h:
        fact = await _tell_job_and_allergy(h)
        clock.advance(timedelta(minutes=1))
        said = await h.say(f"/memory correct {fact.id} Works as a teacher at Hillside school.")
        assert "replaces" in said
        await _compact(h, clock)
    [compaction] = [r for r in fake_model.requests if r.system_text == COMPACTION_SYSTEM][:1]
    convo = compaction.last_user_text.split("The conversation:", 1)[-1]
    [line] = [x for x in convo.splitlines() if "I work as a nurse" in x]
    assert f"memory #{fact.id} taken from this exchange was since corrected" in line, convo
    assert not [x for x in convo.splitlines() if GARDEN[:20] in x and "corrected" in x]


async def test_memory_show_names_where_outside_content_came_from(tmp_path: Path) -> None:
    """/memory show said "Source: from a web page / Trust: untrusted" but not which site
    planted the belief, though the memory's label holds it and the console's page shows it."""
    async with running_steward(tmp_path, None) as h:
        assert h.steward.memory is not None
        saved = await h.steward.memory.remember(
            NewMemory(
                1,
                "Prefers to pay invoices by wire to account DE00 1234.",
                source=Source.WEB,
                trust=Trust.UNTRUSTED,
                label=Label.untrusted("web:https://evil.example/pay?x=1"),
            )
        )
        console_says = describe_sources(saved.memory.label.sources)  # what /memory/<id> shows
        assert "evil.example" in console_says
        shown = await h.say(f"/memory show {saved.memory.id}")
        mine = await h.steward.memory.remember(NewMemory(1, "Likes green tea in the morning."))
        trusted = await h.say(f"/memory show {mine.memory.id}")
    [trust] = [x for x in shown.splitlines() if x.startswith("Trust:")]
    assert trust == f"Trust: untrusted ({console_says})", shown
    assert "/pay" not in shown  # kinds and hosts only, as the console
    assert "Trust: trusted" in trusted.splitlines(), trusted


async def test_a_corrected_compaction_fact_marks_the_message_that_said_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A fact compaction drew ("Lives in Paris.", from "I live in Paris, …") corrected to
    Berlin: a later turn in another chat recalled "I live in Paris, in a flat near the canal."
    as an earlier message bearing on the question, unmarked (corrections_of linked a corrected
    memory to the exchange by turn id, and a drawn fact's turn is the compaction's)."""
    fake_model.on_request(_home_city_model)
    clock = FrozenClock(T0)
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_HISTORY_TOKENS="200"
    ) as h:
        await memory_ready(h)
        await h.say("I live in Paris, in a flat near the canal.")
        await _compact(h, clock)
        [paris] = [m for m in await h.memories() if m.text == "Lives in Paris." and m.active]
        clock.advance(timedelta(minutes=1))
        said = await h.say(f"/memory correct {paris.id} Lives in Berlin.")
        assert "replaces" in said, said
        assert h.steward.memory is not None
        await h.steward.memory.store.flush_vectors()
        clock.advance(timedelta(minutes=1))
        await h.say("I live in which city, near the canal?", chat="c2")
        context = fake_model.requests[-1].last_user_text
        # the span's other messages do not say it: a search shows them unmarked
        garden = await h.say(f"/memory search {GARDEN[:40]}")
    [line] = [x for x in context.splitlines() if "I live in Paris" in x]
    assert f"memory #{paris.id} taken from this exchange was since corrected" in line, context
    assert "Lives in Berlin." in line
    lines = [x for x in garden.splitlines() if "balcony garden" in x]
    assert lines and not [x for x in lines if "corrected" in x], garden
