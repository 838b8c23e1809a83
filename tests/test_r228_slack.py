"""Slack's streamed replies when Slack is slow or rate-limits (R228), through the real channel
against FakeSlack: a first preview post answered late is still taken down, and a preview update
answered 429 goes quiet at once instead of holding the final reply back."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, app_mention_event, event_body, message_event, post_signed
from harness import OWNER_SLACK, slack_steward, until
from slow_hop import slow_hop

ANSWER = "It is late: " + "time to rest, the day is done. " * 6


@pytest.mark.parametrize(
    ("channel", "method", "delay"),
    [
        ("C9", "chat.postMessage", 7.0),  # lands while the reply waits for it
        ("DOWNER", "chat.startStream", 12.0),  # lands after the reply went without it
    ],
)
async def test_a_first_slack_preview_answered_late_is_still_taken_down(
    tmp_path: Path, fake_model: FakeAnthropic, channel: str, method: str, delay: float
) -> None:
    """R228 (R189 for Slack): the first preview post was answered after the stream's halt gave
    up on it; its ts never learnt, it (a DM's stream still "streaming") stayed beside the reply."""
    fake_model.stream_delay = 0.05
    fake_model.reply_text(ANSWER)
    async with (
        FakeSlack() as sl,
        slow_hop(sl, method, delay),
        slack_steward(tmp_path, fake_model, sl) as (_, _, url),
    ):
        if channel == "C9":
            event = app_mention_event("<@UBOT> is it late?", user=OWNER_SLACK, channel="C9")
        else:
            event = message_event("is it late?", user=OWNER_SLACK, channel="DOWNER")
        await post_signed(url, sl.signing_secret, json_body=event_body(event))
        await sl.wait_for("chat.postMessage", 2 if channel == "C9" else 1, timeout=30)
        [first, *_] = sl.calls_to(method)
        assert first.result is not None
        ts = first.result["ts"]
        await until(lambda: (channel, ts) in sl.deleted, "the late preview taken down", 20)
        assert ts not in sl.streams
        final = sl.posted(channel)[-1]
        assert final.params["text"].startswith("It is late")
        assert (channel, final.result["ts"]) not in sl.deleted  # type: ignore[index]


async def test_a_rate_limited_slack_preview_update_does_not_hold_the_reply_back(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R228: the SDK's rate-limit handler slept Retry-After out inside chat.update, so the
    preview update was still under way when the answer ended and the reply waited the stream's
    5 s halt; a 429 now quiets the preview at once."""
    answer = "It is **late**: " + "time to rest, the day is done. " * 8
    fake_model.stream_delay = 0.15
    fake_model.reply_text(answer)
    async with FakeSlack() as sl, slack_steward(tmp_path, fake_model, sl) as (_, _, url):
        sl.rate_limit_next("chat.update", retry_after=30)
        mention = app_mention_event("<@UBOT> is it late?", user=OWNER_SLACK, channel="C9")
        await post_signed(url, sl.signing_secret, json_body=event_body(mention))
        await sl.wait_for("chat.postMessage", 2, timeout=40)
        posted = time.perf_counter()
        # the answer's last event: one delay per delta after the first, and three more events
        ended = fake_model.first_token_at[0] + 0.15 * (math.ceil(len(answer) / 16) + 2)
        assert len(sl.calls_to("chat.update")) == 1  # the 429, never tried again
    assert posted - ended < 2.0, posted - ended


async def test_a_rate_limited_delete_of_a_slack_preview_still_takes_it_down(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R229: the preview's delete went through the previews' client, which answers a 429 at
    once: three tries and it gave up, the cut-off preview left above the reply for good. Its
    stops and deletes go through the channel's client, which waits Retry-After out."""
    fake_model.stream_delay = 0.05
    fake_model.reply_text(ANSWER)
    async with FakeSlack() as sl, slack_steward(tmp_path, fake_model, sl) as (_, _, url):
        sl.rate_limit_next("chat.delete", retry_after=1, times=4)
        mention = app_mention_event("<@UBOT> is it late?", user=OWNER_SLACK, channel="C9")
        await post_signed(url, sl.signing_secret, json_body=event_body(mention))
        await sl.wait_for("chat.postMessage", 2, timeout=30)
        preview = sl.calls_to("chat.postMessage")[0].result
        assert preview is not None
        await until(lambda: ("C9", preview["ts"]) in sl.deleted, "the preview taken down", 20)
        assert len(sl.calls_to("chat.delete")) >= 5  # four 429s waited out, then deleted
