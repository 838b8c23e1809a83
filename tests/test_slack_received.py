"""Slack is told an event was received only once its message is stored (bolt acknowledged each
event before its listener ran: a Steward that died while it looked the sender up, or while
the disk was busy, lost the message, and Slack, told it had arrived, never sent it again).
The database is held by another writer, as a busy disk would, to widen the window."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, event_body, message_event, post_signed
from harness import OWNER_SLACK, echo_reply, slack_steward, until

from bot.channels.slack import STORE_WAIT

DM = "DOWNER"


async def test_a_socket_mode_event_is_acknowledged_only_once_it_is_stored(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack, socket=True) as s:
        h = s[0]
        await slack.wait_socket_connected()
        with closing(sqlite3.connect(h.settings.database_path, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")  # another writer holds the database
            event = message_event("keep me", user=OWNER_SLACK, channel=DM)
            envelope = await slack.send_envelope("events_api", event_body(event))
            acked = asyncio.ensure_future(slack.wait_ack(envelope, timeout=10))
            await asyncio.sleep(STORE_WAIT / 2)
            acked_early = acked.done()
            db.execute("ROLLBACK")
        assert await acked == {"envelope_id": envelope}
        await until(lambda: slack.posted(DM), "the answer")
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
    assert not acked_early, "Slack was told before the message was committed"
    assert stored == ["keep me"]


async def test_an_http_event_is_answered_only_once_it_is_stored(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        with closing(sqlite3.connect(h.settings.database_path, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            body = event_body(message_event("keep me too", user=OWNER_SLACK, channel=DM))
            posted = asyncio.ensure_future(post_signed(url, slack.signing_secret, json_body=body))
            await asyncio.sleep(STORE_WAIT / 2)
            answered_early = posted.done()
            db.execute("ROLLBACK")
        status, _ = await posted
        await until(lambda: slack.posted(DM), "the answer")
    assert status == 200
    assert not answered_early, "the event was answered before the message was committed"


async def test_a_busy_disk_still_gets_slack_its_answer_in_time(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Storing that takes longer than Slack waits (3 s) is not waited for to the end: the
    event is acknowledged after `STORE_WAIT`, and the message is still answered once stored."""
    fake_model.on_request(echo_reply)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack, socket=True) as s:
        h = s[0]
        await slack.wait_socket_connected()
        with closing(sqlite3.connect(h.settings.database_path, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            event = message_event("slow disk", user=OWNER_SLACK, channel=DM)
            envelope = await slack.send_envelope("events_api", event_body(event))
            ack = await slack.wait_ack(envelope, timeout=STORE_WAIT + 0.9)
            db.execute("ROLLBACK")
        await until(lambda: slack.posted(DM), "the answer")
    assert ack == {"envelope_id": envelope}
    assert slack.posted(DM)[0].params["text"] == "re: slow disk"
