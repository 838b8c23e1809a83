"""The extraction filter reads statements as people type them: a phone's curly apostrophe
(U+2019 in "I'm"), "we" for a household, and a life event without its "I" ("Moved to Lisbon");
questions and requests still cost no extraction call."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import echo_reply, running_steward

from agent.memory_upkeep import EXTRACTION_SYSTEM, looks_worth_keeping


def is_extraction(request: RecordedRequest) -> bool:
    return request.system_text == EXTRACTION_SYSTEM


def extracting(request: RecordedRequest) -> Reply:
    if is_extraction(request):
        return Reply.text(
            '{"memories": [{"text": "Allergic to penicillin.", "kind": "fact",'
            ' "subject": "drug allergy", "importance": 1.0}]}'
        )
    return echo_reply(request)  # the chat model saves nothing itself


@pytest.mark.parametrize(
    "said",
    [
        "I\u2019m allergic to penicillin, by the way.",  # a phone's right single quote
        "I\u02bcve been vegetarian since 2019.",  # the modifier letter apostrophe
        "We moved to Lisbon in May.",
        "we have two kids, Ana and Rui.",
        "We\u2019ve got a dog called Biscuit.",
        "We\u2019re both vegetarian.",
        "Moved to Lisbon last week.",
        "Just started at Acme as a nurse.",
        "Got married in June!",
    ],
)
def test_these_read_as_statements_about_oneself(said: str) -> None:
    assert looks_worth_keeping(said)


@pytest.mark.parametrize(
    "said",
    [
        "What\u2019s the weather like in Lisbon?",
        "Do we have milk at home?",
        "Should we move to Lisbon?",
        "Move the dentist to Friday",
        "Start a timer for ten minutes",
        "Remind me to water the plants",
        "email my boss",
    ],
)
def test_questions_and_requests_do_not(said: str) -> None:
    assert not looks_worth_keeping(said)


async def test_a_statement_typed_on_a_phone_is_extracted(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(extracting)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("I\u2019m allergic to penicillin, by the way.")
        assert len([r for r in fake_model.requests if is_extraction(r)]) == 1
        kept = [m.text for m in await h.memories() if m.kind.value != "message"]
        assert kept == ["Allergic to penicillin."], kept
