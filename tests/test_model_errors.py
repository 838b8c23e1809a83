"""A failing model API: retried with backoff (honouring retry-after), then a friendly message."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from harness import running_steward


async def test_429_with_retry_after_is_retried(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    fake_model.fail(429, retry_after=0.01)
    fake_model.reply_text("Got there.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert await h.say("hello") == "Got there."
    assert len(fake_model.requests) == 2


async def test_529_and_500_are_retried(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    fake_model.fail(529, retry_after=0.01)
    fake_model.fail(500, retry_after=0.01)
    fake_model.reply_text("Recovered.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert await h.say("hello") == "Recovered."
    assert len(fake_model.requests) == 3


async def test_giving_up_tells_the_user_and_records_the_failure(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.fail(529, times=10, retry_after=0.01)
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_MODEL_RETRIES="2") as h:
        reply = await h.say("hello")
        assert reply.startswith("Sorry, I couldn't answer: the model API is overloaded")
        assert "try again" in reply
        turns = await h.turns()
        assert turns and turns[0].status == "failed"
        # the incoming message was handled, not lost
        [incoming, *_] = await h.steward.stores.messages.all(direction="in")
        assert incoming.status == "handled"
    assert len(fake_model.requests) == 3  # one try and two retries


@pytest.mark.parametrize("status", [400, 401])
async def test_a_refused_request_is_explained_without_telling_to_wait(
    tmp_path: Path, fake_model: FakeAnthropic, status: int
) -> None:
    """A 401 said "refused the API key … I tried several times with backoff … try again in a
    little while": no retry was made, and waiting does not fix a key or a request."""
    fake_model.fail(status)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        reply = await h.say("hello")
    assert "refused the API key" in reply if status == 401 else f"({status})" in reply
    assert "Trying again will not help" in reply and "backoff" not in reply


async def test_no_api_key_answers_with_how_to_configure(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        reply = await h.say("hello")
        assert "ANTHROPIC_API_KEY" in reply and ".env" in reply
        assert "Commands:" in await h.say("/help")
        assert "API key missing" in await h.say("/status")


@pytest.mark.parametrize(
    ("status", "message", "said"),
    [
        (404, "model: claude-sonnet-5-5x", "does not know the model STEWARD_MODEL names"),
        (400, "Your credit balance is too low to access the API.", "out of credit"),
        (403, "This key has no access.", "check the key's permissions"),
    ],
)
async def test_a_refusal_says_what_to_check_and_the_log_has_the_apis_words(
    tmp_path: Path,
    fake_model: FakeAnthropic,
    caplog: pytest.LogCaptureFixture,
    status: int,
    message: str,
    said: str,
) -> None:
    """R179: a mistyped STEWARD_MODEL or an empty account said only "rejected the request
    (404)" and "the details are in Steward's log", where the API's reason was not."""
    fake_model.fail(status, message=message)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        reply = await h.say("hello")
    assert said in reply, reply
    assert message in caplog.text
