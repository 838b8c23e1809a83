"""A question naming a period finds what was said in it even when nothing there comes close
enough by meaning alone (review 120: "in January about the automobile" showed twelve March car
messages; the January Volvo, closest within the month, was merged away)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import echo_reply
from test_memory_agent import steward_with_memory

from memory.clock import FrozenClock

LATER = [
    "My car made a rattling noise on the motorway.",
    "Washed my car this afternoon.",
    "My car failed its MOT because of the brakes.",
    "Filled up my car, petrol is so expensive now.",
    "My car needs an oil change next month.",
    "Parked my car outside the office and got a ticket.",
    "The windscreen of my car has a crack.",
    "Booked my car in for a service at the dealership.",
    "The battery of my car died this morning in the cold.",
    "Thinking about selling my car and buying an electric one.",
    "New tyres for my car cost a fortune.",
    "My car handled the snow fine on the road trip.",
]


async def test_the_periods_best_come_first_when_none_is_close(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    clock = FrozenClock(datetime(2026, 1, 12, 9, tzinfo=UTC))
    async with steward_with_memory(tmp_path, fake_model, clock=clock) as h:
        await h.say("My mechanic told me the alternator on the Volvo needs replacing.")
        clock.advance(datetime(2026, 3, 2, 9, tzinfo=UTC) - clock.now())
        for text in LATER:
            clock.advance(timedelta(hours=5))
            await h.say(text)
        clock.advance(datetime(2026, 4, 20, 9, tzinfo=UTC) - clock.now())
        assert h.steward.memory is not None
        found = await h.steward.memory.recaller.search(
            1, "what did I tell you in January about the automobile?", 10, timezone="UTC"
        )
        first = found.hits[0].memory
        assert first.created_at.month == 1 and "alternator" in first.text, [
            (h.memory.created_at.date(), h.memory.text[:40]) for h in found.hits
        ]
        said = await h.say("/memory search what did I tell you in January about the automobile?")
        assert "alternator" in said, said
