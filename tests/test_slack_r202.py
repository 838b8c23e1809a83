"""R202, the owner's daily use of Slack, through the Slack and Anthropic fakes.

1. A message is stored before Slack is told it arrived, however slow Slack's own lookups are:
   conversations.replies, users.info or files.info rate-limited ran before the message was
   stored, while the acknowledgement went after `STORE_WAIT` regardless, so a Steward that died
   in between lost the message (Slack does not send an acknowledged event again).
2. A direct message's streamed preview writes each link as the final post does, "label (url)":
   streamed as the model wrote it, `[your invoice](https://evil.example/…)` showed the label
   alone, its target hidden.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, app_mention_event, event_body, message_event, post_signed
from harness import OWNER_SLACK, echo_reply, running_steward, slack_steward, started_slack, until

from bot.channels.slack import STORE_WAIT
from bot.channels.slack_stream import stream_markdown
from memory.people import Identity

DM = "DOWNER"
OFF = {"STEWARD_STREAMING": "off"}


def _stored(database: Path) -> list[str]:
    """The incoming messages stored, read at once (no await: nothing else runs meanwhile)."""
    with closing(sqlite3.connect(database)) as db:
        return [r[0] for r in db.execute("SELECT text FROM messages WHERE direction = 'in'")]


def _zone_of(database: Path, user_id: int) -> bool:
    """Whether the person has their Slack profile's time zone (the fake's), read at once."""
    with closing(sqlite3.connect(database)) as db:
        (zone,) = db.execute("SELECT timezone FROM users WHERE id = ?", (user_id,)).fetchone()
    return zone == "Asia/Tokyo"


def _mention_in_a_thread(slack: FakeSlack) -> dict[str, Any]:
    """The owner mentions Steward under a colleague's message in #ops (C9)."""
    root = message_event(
        "deploy failed with E42", user="UBOB", channel="C9", channel_type="channel"
    )
    slack.remember(root)
    mention = app_mention_event("<@UBOT> what does E42 mean?", user=OWNER_SLACK, channel="C9")
    mention["thread_ts"] = root["ts"]
    return mention


def _shared_file(slack: FakeSlack) -> dict[str, Any]:
    """The owner shares a Slack Connect file (a stub that files.info fills in) in the DM."""
    shared = slack.add_file(b"%PDF-1.4 minutes", name="minutes.pdf", mimetype="application/pdf")
    stub = {"id": shared["id"], "file_access": "check_file_info"}
    return message_event("what do these minutes say?", user=OWNER_SLACK, channel=DM, files=[stub])


class _SlowSlack(FakeSlack):
    """Slack answering one Web API method only after `delay` seconds (a slow network, a busy
    Slack), not with a rate limit."""

    def __init__(self, method: str, delay: float) -> None:
        super().__init__()
        self.slow_method, self.delay = method, delay
        self.asked: list[str] = []  # as the calls come (`calls` has them once answered)

    async def _api(self, request: web.Request) -> web.Response:
        self.asked.append(request.match_info["method"])
        if request.match_info["method"] == self.slow_method:
            await asyncio.sleep(self.delay)
        return await super()._api(request)


LOOKUPS = ["conversations.replies", "users.info", "files.info"]


@pytest.mark.parametrize("how", ["rate-limited", "slow"])
@pytest.mark.parametrize("lookup", LOOKUPS)
async def test_a_message_is_stored_before_slack_is_told_however_slow_slacks_lookups(
    tmp_path: Path, fake_model: FakeAnthropic, lookup: str, how: str
) -> None:
    """Each lookup took longer than `STORE_WAIT` (a Retry-After of 3 s, or an answer after
    3 s): Slack was told after 2 s, the message stored after 3."""
    fake_model.on_request(echo_reply)
    slack = _SlowSlack(lookup, 3.0) if how == "slow" else FakeSlack()
    async with (
        slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as s,
    ):
        h, _, url = s
        event = _shared_file(slack) if lookup == "files.info" else _mention_in_a_thread(slack)
        if how == "rate-limited":
            slack.rate_limit_next(lookup, retry_after=3)
        started = time.monotonic()
        status, _ = await post_signed(url, slack.signing_secret, json_body=event_body(event))
        acked_after = time.monotonic() - started
        stored = _stored(h.settings.database_path)
        channel = str(event["channel"])
        await until(lambda: slack.posted(channel), "the answer, without what Slack was slow with")
    assert status == 200
    assert len(stored) == 1, f"Slack was told (after {acked_after:.1f} s) before it was stored"
    assert acked_after < STORE_WAIT  # told because it was stored, not because time ran out
    asked = slack.asked if isinstance(slack, _SlowSlack) else [c.method for c in slack.calls]
    assert asked.count(lookup) == 1  # a rate limit is not waited out


async def test_a_profile_slack_is_slow_to_give_is_adopted_once_it_comes(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Ann's first message goes on without her profile (users.info answers after 3 s); its
    time zone is adopted once it comes, not left for a later message."""
    fake_model.on_request(echo_reply)
    owner = f"test:owner,slack:{OWNER_SLACK}"
    async with (
        _SlowSlack("users.info", 3.0) as slack,
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner, **OFF) as h,
    ):
        slack.users["UANN"] = {"tz": "Asia/Tokyo"}
        ann = await h.steward.stores.people.admit(Identity("slack", "UANN"))
        async with started_slack(h, slack) as url:
            event = message_event("hello", user="UANN", channel="DANN")
            started = time.monotonic()
            await post_signed(url, slack.signing_secret, json_body=event_body(event))
            acked_after = time.monotonic() - started
            stored = _stored(h.settings.database_path)
            await until(lambda: slack.posted("DANN"), "the answer")
            zone_then = _zone_of(h.settings.database_path, ann.id)
            await until(lambda: _zone_of(h.settings.database_path, ann.id), "her time zone", 8)
    assert stored == ["hello"] and acked_after < STORE_WAIT
    assert not zone_then  # the answer did not wait for it


async def test_a_mention_whose_lookups_are_quick_still_brings_its_thread(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The deadline costs nothing when Slack answers: the thread comes with the mention."""
    fake_model.on_request(echo_reply)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        await post_signed(
            url, slack.signing_secret, json_body=event_body(_mention_in_a_thread(slack))
        )
        await until(lambda: slack.posted("C9"), "the answer")
    assert "deploy failed with E42" in fake_model.requests[0].last_user_text


ANSWER = (
    "Open [your invoice](https://evil.example/c?d=PIN-4711) now, or see [1].\n\n"
    + "Here is what the page said, line by line. " * 12
)


async def test_a_streamed_reply_shows_each_links_target_as_the_final_post_does(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.stream_delay = 0.05
    fake_model.reply_text(ANSWER)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        event = message_event("summarise that page", user=OWNER_SLACK, channel=DM)
        await post_signed(url, slack.signing_secret, json_body=event_body(event))
        (final,) = await slack.wait_for("chat.postMessage", timeout=30)
        await asyncio.sleep(0.2)
    (start,) = slack.calls_to("chat.startStream")
    appends = slack.calls_to("chat.appendStream")
    streamed = start.params["markdown_text"] + "".join(c.params["markdown_text"] for c in appends)
    assert "](" not in streamed  # no label hiding its target, at any moment
    assert streamed.startswith("Open your invoice (https://evil.example/c?d=PIN-4711) now")
    assert "your invoice (<https://evil.example/c?d=PIN-4711>)" in final.params["text"]


@pytest.mark.parametrize(
    "text",
    [
        ANSWER,
        "See [the docs](https://docs.example/a b) and more words after it.",  # a space: kept out
        "A label [over\ntwo lines](https://evil.example/x) here.",
        "As said in [the note][n], and [n] again.\n\n[n]: https://evil.example/n",
        "A picture ![chart](https://evil.example/c.png) and [nested [x]](https://e.example).",
    ],
)
def test_no_moment_of_a_stream_hides_a_links_target(text: str) -> None:
    """Whatever has been written so far, what is streamed has no link syntax left that Slack
    could render as a label alone: no `](` (an inline link or image), no `]:` (a reference's
    definition, without which `[label][ref]` is plain text)."""
    for end in range(len(text) + 1):
        shown = stream_markdown(text[:end])
        assert "](" not in shown and "]:" not in shown, (text[:end], shown)


def test_a_stream_only_grows_as_a_link_is_written() -> None:
    """A link still being written is held back, then shown whole: the stream, which can only be
    added to, never has to take back what it showed."""
    shown = [stream_markdown(ANSWER[:end]) for end in range(len(ANSWER) + 1)]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(shown))
    assert shown[-1].startswith("Open your invoice (https://evil.example/c?d=PIN-4711) now")
    assert "- [ ] a task" in stream_markdown("- [ ] a task\n- [x] done")  # not a link
