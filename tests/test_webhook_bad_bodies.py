"""Webhook paths a reverse proxy publishes to the internet answer a body they cannot read with
a 400 and a line a minute, not a 500 and a traceback each (review 36).

Slack's handler read the body as text before Bolt checked the signature: an unsigned request
whose body was not UTF-8, or named a charset Python lacks, was aiohttp's "Error handling
request" traceback in Steward's log, from anyone, every time. Telegram's, behind its secret
token, failed on the charset the same way; and a request without the token wrote a line each.
"""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, event_body, message_event, post_signed
from fakes.telegram import FakeTelegram, post_webhook
from harness import OWNER_SLACK, echo_reply, slack_steward, until
from test_telegram import OWNER_TG, telegram, tg  # noqa: F401

from bot.http import HttpServer

BAD = [
    ({"Content-Type": "application/json"}, b"\xff\xfe{"),  # not UTF-8
    ({"Content-Type": "application/json; charset=nope"}, b"{}"),  # no such codec
]


async def _post(url: str, headers: dict[str, str], body: bytes) -> int:
    async with aiohttp.ClientSession() as client, client.post(url, headers=headers, data=body) as r:
        await r.read()
        return r.status


async def test_slack_unsigned_unreadable_bodies_are_refused_quietly(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake_model.on_request(echo_reply)
    caplog.set_level(logging.INFO)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        statuses = {await _post(url, h, b) for _ in range(20) for h, b in BAD}
        # the channel still takes a signed event after them
        event = message_event("still here?", user=OWNER_SLACK, channel="DOWNER")
        status, _ = await post_signed(url, slack.signing_secret, json_body=event_body(event))
        await until(lambda: slack.posted("DOWNER"), "the reply", timeout=10)
    assert statuses == {400}
    assert status == 200
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    said = [r for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(said) == 1  # 40 requests within a minute: one line


async def test_telegram_webhook_bodies_and_tokens_refused_without_a_line_each(
    tmp_path: Path,
    fake_model: FakeAnthropic,
    tg: FakeTelegram,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_model.on_request(echo_reply)
    caplog.set_level(logging.INFO)
    http = HttpServer("127.0.0.1", 0)
    try:
        async with telegram(
            tmp_path,
            fake_model,
            tg,
            webhook_url="https://steward.example/telegram/webhook",
            webhook_secret="s3cret",
            http=http,
        ):
            url = f"{http.url}/telegram/webhook"
            token = {"X-Telegram-Bot-Api-Secret-Token": "s3cret"}
            unreadable = {await _post(url, {**token, **h}, b) for _ in range(10) for h, b in BAD}
            tg.push_message("hello", user_id=OWNER_TG)
            update = tg.pending_updates[-1]
            wrong = {await post_webhook(url, update, "wrong") for _ in range(30)}
            assert await post_webhook(url, update, "s3cret") == 200
            await tg.wait_for("sendMessage")
    finally:
        await http.stop()
    assert unreadable == {400} and wrong == {401}
    assert [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []
    refused = [r for r in caplog.records if "secret token" in r.getMessage()]
    assert len(refused) == 1  # 30 within a minute: one line
    assert tg.sent_texts(OWNER_TG) == ["re: hello"]
