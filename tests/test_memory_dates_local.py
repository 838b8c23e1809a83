"""The dates the model is given with memories, conversation summaries and the summarising call
are the user's days, as "Now:" and everything the user sees are (review 120: a dentist named on
Tuesday evening in Los Angeles was dated Wednesday, the UTC day, with no zone)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import said_last
from test_memory_agent import steward_with_memory

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
from memory.clock import FrozenClock

SAVE = {"text": "Dentist is Dr. Okafor.", "subject": "dentist"}


def _model(request: RecordedRequest) -> Reply:
    if request.system_text == EXTRACTION_SYSTEM:
        return Reply.text('{"memories": []}')
    if request.system_text == COMPACTION_SYSTEM:
        return Reply.text(json.dumps({"summary": "chat summary", "facts": []}))
    if request.tool_results:
        return Reply.text("done")
    if said_last(request) == "My dentist is Dr. Okafor.":
        return Reply.tool_use("memory_save", SAVE)
    return Reply.text("ok")


async def test_memory_and_summary_dates_are_the_users_days(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    # Tuesday 10 March 2026, 17:30 in Los Angeles: Wednesday 11 March 00:30 UTC
    clock = FrozenClock(datetime(2026, 3, 11, 0, 30, tzinfo=UTC))
    async with steward_with_memory(
        tmp_path, fake_model, clock=clock, STEWARD_HISTORY_TOKENS="300"
    ) as h:
        await h.say("/timezone America/Los_Angeles")
        await h.say("My dentist is Dr. Okafor.")
        for i in range(12):
            await h.say(f"some filler talk about the garden and the weather, part {i} " * 2)
        clock.advance(datetime(2026, 3, 13, 1, 0, tzinfo=UTC) - clock.now())  # Thu 18:00 there
        await h.say("who is my dentist? the one I mentioned on Tuesday")
        chat = [r for r in fake_model.requests if r.system_text not in (COMPACTION_SYSTEM,)]
        context = chat[-1].last_user_text
        assert "Now: Thursday 2026-03-12" in context
        assert "(2026-03-10) Dentist is Dr. Okafor." in context, context
        assert "Conversation on 2026-03-10" in context, context
        [summarising, *_] = [r for r in fake_model.requests if r.system_text == COMPACTION_SYSTEM]
        sent = summarising.last_user_text
        assert "(Times are America/Los_Angeles.)" in sent and "[2026-03-10 17:30]" in sent, sent
