"""Delivery faults at the wire: a long reply sent in part before a restart, a chat that refuses
the bot for good with a 400, a reply Slack would render as nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import ApiCall, FakeSlack, event_body, message_event, post_signed
from fakes.telegram import FakeTelegram, TelegramError
from harness import OWNER, OWNER_SLACK, running_steward, slack_steward, telegram_channel, until

from memory.messages import StoredMessage
from memory.stores import Stores

OWNER_TG = 1001
GROUP = -1001234567890
DM = "DOWNER"
FIRST, SECOND = "alpha " * 600, "omega " * 600  # two parts on either platform
LONG = f"{FIRST.strip()}\n\n{SECOND.strip()}"
TG_ENV = {"STEWARD_OWNER": f"{OWNER},telegram:{OWNER_TG}", "STEWARD_STREAMING": "off"}


async def _settled(stores: Stores) -> StoredMessage:
    """The one outgoing message, once an attempt to send it is over."""
    outs: list[StoredMessage] = []
    for _ in range(400):
        outs = await stores.messages.all(direction="out")
        if outs and outs[-1].status != "pending":
            return outs[-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"still pending: {outs}")


# -- a long reply sent in part, then a restart ---------------------------------------------


async def test_telegram_resumes_a_partly_sent_reply_after_a_restart(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text(LONG)
    async with FakeTelegram() as tg:
        real = tg._methods["sendmessage"]
        sends = {"n": 0}

        def second_fails(params: dict[str, Any]) -> Any:
            sends["n"] += 1
            if sends["n"] == 2:
                raise TelegramError(400, "Bad Request: simulated failure")
            return real(params)

        tg._methods["sendmessage"] = second_fails
        async with (
            running_steward(tmp_path, fake_model.base_url, **TG_ENV) as h,
            telegram_channel(h, tg),
        ):
            tg.push_message("write it all", user_id=OWNER_TG)
            assert (await _settled(h.steward.stores)).status == "failed"
        tg._methods["sendmessage"] = real
        assert [t[:5] for t in tg.sent_texts(OWNER_TG)] == ["alpha"]
        # a new process on the same data directory sends the backlog
        async with (
            running_steward(tmp_path, fake_model.base_url, **TG_ENV) as h2,
            telegram_channel(h2, tg),
        ):
            assert await h2.steward.courier.redeliver() == 1
            (out,) = await h2.steward.stores.messages.all(direction="out")
        texts = tg.sent_texts(OWNER_TG)
    assert [t[:5] for t in texts] == ["alpha", "omega"], "the first part is not sent again"
    assert out.status == "sent"


async def test_slack_resumes_a_partly_sent_reply_after_a_restart(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text(LONG)
    env = {"STEWARD_STREAMING": "off"}
    async with FakeSlack() as sl:
        real = sl._post_message
        posts = {"n": 0}

        def second_fails(call: ApiCall) -> dict[str, Any]:
            posts["n"] += 1
            return {"ok": False, "error": "internal_error"} if posts["n"] == 2 else real(call)

        sl.handlers["chat.postMessage"] = second_fails
        async with slack_steward(tmp_path, fake_model, sl, env=env) as (h, _, url):
            event = message_event("write it all", user=OWNER_SLACK, channel=DM)
            await post_signed(url, sl.signing_secret, json_body=event_body(event))
            assert (await _settled(h.steward.stores)).status == "failed"
        del sl.handlers["chat.postMessage"]
        async with slack_steward(tmp_path, fake_model, sl, env=env) as (h2, _, _):
            assert await h2.steward.courier.redeliver() == 1
            (out,) = await h2.steward.stores.messages.all(direction="out")
        posted = [c.params["text"][:5] for c in sl.posted(DM) if (c.result or {}).get("ok")]
    assert posted == ["alpha", "omega"], "the first part is not posted again"
    assert out.status == "sent"


# -- a 400 that says the chat refuses the bot for good --------------------------------------


@pytest.mark.parametrize(
    "why",
    [
        "Bad Request: not enough rights to send text messages to the chat",
        "Bad Request: message thread not found",
        "Bad Request: have no rights to send a message",
        "Bad Request: CHAT_WRITE_FORBIDDEN",
        "Bad Request: TOPIC_CLOSED",
        "Bad Request: need administrator rights in the channel chat",
    ],
)
async def test_a_group_that_refuses_the_bot_for_good_is_given_up_and_the_owner_told(
    tmp_path: Path, fake_model: FakeAnthropic, why: str
) -> None:
    fake_model.reply_text("ok then")
    async with FakeTelegram() as tg:
        real = tg._methods["sendmessage"]

        def group_refuses(params: dict[str, Any]) -> Any:
            if int(params["chat_id"]) == GROUP:
                raise TelegramError(400, why)
            return real(params)

        async with (
            running_steward(tmp_path, fake_model.base_url, **TG_ENV) as h,
            telegram_channel(h, tg),
        ):
            tg.push_message("/help", user_id=OWNER_TG)  # the owner's private chat is known
            await tg.wait_for("sendMessage", timeout=15)
            tg._methods["sendmessage"] = group_refuses
            tg.push_message(
                "@steward_test_bot hello", chat_type="supergroup", chat_id=GROUP, user_id=OWNER_TG
            )
            note = await until(
                lambda: [t for t in tg.sent_texts(OWNER_TG) if "stopped trying" in t],
                "the owner told",
                timeout=15,
            )
            outs = await h.steward.stores.messages.all(direction="out")
        to_group = [c for c in tg.calls_to("sendMessage") if int(c.params["chat_id"]) == GROUP]
    (reply,) = [o for o in outs if o.text == "ok then"]
    assert reply.status == "undeliverable", "not retried for a week"
    assert len(to_group) == 1, "never tried again"
    assert why.removeprefix("Bad Request: ") in note[0]


# -- a reply Slack renders as nothing -------------------------------------------------------


@pytest.mark.parametrize("answer", ["[1]: https://example.com/report", "#", "&nbsp;"])
async def test_a_slack_reply_that_renders_as_nothing_is_posted_not_dropped(
    tmp_path: Path, fake_model: FakeAnthropic, answer: str
) -> None:
    fake_model.reply_text(answer)
    env = {"STEWARD_STREAMING": "off"}
    async with (
        FakeSlack() as sl,
        slack_steward(tmp_path, fake_model, sl, env=env) as (h, _, url),
    ):
        event = message_event("link?", user=OWNER_SLACK, channel=DM)
        await post_signed(url, sl.signing_secret, json_body=event_body(event))
        out = await _settled(h.steward.stores)
        posted = [c.params["text"] for c in sl.posted(DM)]
    assert out.status == "sent"
    assert posted == ["(empty)"], "what was marked sent was posted, as Telegram does"
