"""A `/web` login link is a bearer secret for ten minutes: it is never in a log line, even at
DEBUG, where Slack's SDK logs the message it posts, and its answer (R195: two records held the
token, enough for anyone reading the log to sign in as the owner)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, event_body, message_event, post_signed
from harness import OWNER_SLACK, echo_reply, slack_steward

from agent import log_scrub


async def test_a_login_link_posted_on_slack_is_not_in_the_debug_log(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake_model.on_request(echo_reply)
    caplog.set_level(logging.DEBUG)
    # as a Steward run at DEBUG with the SDK let through (another test may have quieted it)
    caplog.set_level(logging.DEBUG, logger="slack_sdk")
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        event = message_event("/web", user=OWNER_SLACK, channel="DOWNER")
        await post_signed(url, slack.signing_secret, json_body=event_body(event))
        [post] = await slack.wait_for("chat.postMessage")
    found = re.search(r"token=([0-9a-f]{64})", post.params["text"])
    assert found is not None, post.params["text"]
    slack_lines = [r for r in caplog.records if r.name.startswith("slack_sdk")]
    assert any("chat.postMessage" in r.getMessage() for r in slack_lines)  # it logs them
    assert not [r.name for r in caplog.records if found[1] in r.getMessage()]


def test_only_the_newest_short_lived_secrets_are_looked_for() -> None:
    tokens = [f"link-token-{i:04d}-abcdef" for i in range(log_scrub.RECENT + 5)]
    for token in tokens:
        log_scrub.register_recent("test links", token)
    assert log_scrub.redact(tokens[-1]) == "***"
    assert log_scrub.redact(tokens[-log_scrub.RECENT]) == "***"
    assert log_scrub.redact(tokens[0]) == tokens[0]  # long expired: no longer looked for
