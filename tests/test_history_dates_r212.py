"""R212: the history sent with a turn carried no dates, so in a quiet chat "Tomorrow I fly to
Oslo" said on 1 March read as current beside "Now: Friday 2026-03-20". Each earlier day's first
message of the person's in view now says the day it was written; today's say nothing, and
Steward's own replies never carry one (a reply would learn to begin with a date).

The real core and context against the fake Anthropic server, on a frozen clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import running_steward

from memory.clock import FrozenClock


def _texts(messages: list[dict]) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [
        (m["role"], "".join(b.get("text", "") for b in m["content"] if isinstance(b, dict)))
        for m in messages
    ]


async def test_an_earlier_days_message_says_the_day_it_was_written(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    clock = FrozenClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))  # a Sunday; the zone is UTC
    fake_model.reply_text("Safe travels!")
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("Tomorrow I fly to Oslo, 7:40.")
        clock.advance(timedelta(minutes=5))
        await h.say("And I pack tonight.")
        clock.advance(timedelta(days=19))
        await h.say("What's on my plate for tomorrow?")
        await h.say("Thanks.")
    sent = _texts(fake_model.requests[-2].messages)
    assert sent[0] == ("user", "(written Sunday 2026-03-01) Tomorrow I fly to Oslo, 7:40.")
    assert ("user", "And I pack tonight.") in sent  # the day's first message says it
    assert not any(text.startswith("(written") for role, text in sent if role == "assistant")
    today = _texts(fake_model.requests[-1].messages)
    assert ("user", "What's on my plate for tomorrow?") in today  # today's: no date
