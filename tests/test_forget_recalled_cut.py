"""A long message recalled into a waiting turn's prompt, cut to 600 characters, is forgotten
from it too (review 36, second round).

A turn paused for an approval keeps its prompt to resume with, and forgetting takes the words
out of it. A past message recalled as bearing on the turn is shown cut ("…" after 599
characters); forgetting looked for the whole text and the search's 399-character cut only, so
the secret at the start of a long message went to the model again when the turn resumed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakes.anthropic import RecordedRequest, Reply
from test_memory_forget import memory_ready
from trust_world import obedient_model, trust_world

SECRET = "QZX4921PLOVER"


def model(request: RecordedRequest) -> Reply:
    if "What is my bank PIN" in request.last_user_text and not request.tool_results:
        return Reply.tool_use("shell", {"command": "mkdir late", "network": False})
    return obedient_model(request)


@pytest.mark.parametrize("repeat", [2, 20])  # 84 and 840 characters
async def test_a_recalled_long_message_is_forgotten_from_a_waiting_prompt(
    tmp_path: Path, repeat: int
) -> None:
    async with trust_world(tmp_path, model=model) as w:
        await memory_ready(w.h)
        await w.h.say(f"My bank PIN is {SECRET}, keep it in mind. " * repeat, chat="c2")
        assert w.h.steward.memory is not None
        await w.h.steward.memory.store.flush_vectors()
        await w.h.say("What is my bank PIN again? Keep it in mind.")
        [pending] = await w.h.steward.stores.approvals.pending()
        asked = [r for r in w.model.requests if "What is my bank PIN" in r.last_user_text]
        assert SECRET in json.dumps(asked[0].body)  # recalled into the prompt
        shown = await w.h.say("/memory search bank PIN")
        number = re.search(r"message #(\d+): you wrote", shown)
        assert number, shown
        assert "Forgotten" in await w.h.say(f"/memory forget {number.group(1)}")
        before = len(w.model.requests)
        await w.h.say(f"/approve {pending.id}")
        resumed = w.model.requests[before:]
        assert resumed
        for request in resumed:
            assert SECRET not in json.dumps(request.body, ensure_ascii=False)
