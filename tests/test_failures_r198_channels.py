"""R198: Telegram and Slack sent a reply again, unmarked, when the platform's answer was lost
after it had carried out the send: the chat had it twice, against the README's "a possible
duplicate is always marked". Now only a connection never made is retried without a word.

The real clients (Steward's Bot API client over aiohttp, slack_sdk) against the loopback fakes,
which here carry out a send and then close the connection before answering; a TCP relay in front
of a fake takes the network away (connections refused) and gives it back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from fakes.slack import FakeSlack
from fakes.telegram import FakeTelegram

from agent.delivery import SENT_AGAIN
from agent.errors import DeliveryError
from agent.types import Address
from bot.channels.slack import SlackChannel
from bot.channels.telegram_api import TelegramApi
from bot.channels.telegram_send import TelegramSender
from bot.http import HttpServer

CHAT = 1001


class TakesThenDropsTelegram(FakeTelegram):
    """The next `drops` sendMessage calls are carried out (the chat has the message), then the
    connection closes before the answer."""

    drops = 0

    async def _handle(self, request: web.Request) -> web.Response:
        response = await super()._handle(request)
        if self.drops and request.path.lower().endswith("/sendmessage"):
            self.drops -= 1
            assert request.transport is not None
            request.transport.abort()
        return response


class TakesThenDropsSlack(FakeSlack):
    """The same for chat.postMessage."""

    drops = 0

    async def _api(self, request: web.Request) -> web.Response:
        response = await super()._api(request)
        if self.drops and request.match_info["method"] == "chat.postMessage":
            self.drops -= 1
            assert request.transport is not None
            request.transport.abort()
        return response


class Relay:
    """A TCP relay in front of a fake: `drop()` takes the network away (every connection cut,
    new ones refused), `start()` gives it back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def drop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        await asyncio.sleep(0.05)  # the clients see their pooled connections closed

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, upstream}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()
                self._writers.discard(sink)

        await asyncio.gather(pipe(reader, upstream), pipe(upstream_reader, writer))


def _port(url: str) -> int:
    return int(url.rstrip("/").split(":")[2].split("/")[0])


@asynccontextmanager
async def _telegram(base: str, token: str) -> AsyncIterator[TelegramSender]:
    api = TelegramApi(token, base)
    try:
        yield TelegramSender(lambda: api, attempts=3, backoff=0.5, max_retry_after=5)
    finally:
        await api.close()


@asynccontextmanager
async def _slack(slack: FakeSlack, api_url: str | None = None) -> AsyncIterator[SlackChannel]:
    http = HttpServer("127.0.0.1", 0)
    channel = SlackChannel(
        bot_token=slack.bot_token,
        signing_secret="s",
        api_url=api_url or slack.api_url,
        http=http,
    )
    await channel.start(_nowhere)
    try:
        yield channel
    finally:
        await channel.stop()
        await http.stop()


async def _nowhere(message: Any, **_: Any) -> None:
    raise AssertionError("nothing comes in here")


async def test_a_telegram_send_whose_answer_was_lost_goes_again_marked() -> None:
    async with TakesThenDropsTelegram() as tg, _telegram(tg.base_url, tg.token) as sender:
        tg.drops = 1
        await sender.send_text(Address("telegram", str(CHAT)), "re: hello one")
    assert tg.sent_texts(CHAT) == ["re: hello one", SENT_AGAIN, "re: hello one"]


async def test_a_telegram_send_that_never_connected_goes_again_unmarked() -> None:
    async with FakeTelegram() as tg:
        relay = Relay(_port(tg.base_url))
        await relay.start()
        await relay.drop()  # refused: the request never went
        async with _telegram(f"http://127.0.0.1:{relay.port}", tg.token) as sender:
            sending = asyncio.create_task(
                sender.send_text(Address("telegram", str(CHAT)), "re: hello two")
            )
            await asyncio.sleep(0.2)  # the first try refused; the next in 0.5 s
            await relay.start()
            await sending
    assert tg.sent_texts(CHAT) == ["re: hello two"]


async def test_a_slack_post_whose_answer_was_lost_goes_again_marked() -> None:
    async with TakesThenDropsSlack() as slack, _slack(slack) as channel:
        slack.drops = 1
        await channel.send_text(Address("slack", "DOWNER"), "re: hello slack")
    posted = [c.params.get("text") for c in slack.posted("DOWNER")]
    assert posted == ["re: hello slack", SENT_AGAIN, "re: hello slack"]


async def test_a_slack_post_that_never_connected_goes_again_unmarked() -> None:
    async with FakeSlack() as slack:
        relay = Relay(_port(slack.api_url))
        await relay.start()
        async with _slack(slack, f"http://127.0.0.1:{relay.port}/api/") as channel:
            await relay.drop()
            sending = asyncio.create_task(
                channel.send_text(Address("slack", "DOWNER"), "re: hello again")
            )
            await asyncio.sleep(0.2)  # refused; the SDK tries again after 0.5 s or more
            await relay.start()
            await sending
    assert [c.params.get("text") for c in slack.posted("DOWNER")] == ["re: hello again"]


async def test_a_send_given_up_after_lost_answers_is_unsure_one_never_connected_is_not() -> None:
    """The courier keeps `unsure` for a send after a restart to say it may be a copy."""
    async with TakesThenDropsTelegram() as tg, _telegram(tg.base_url, tg.token) as sender:
        tg.drops = 99
        with pytest.raises(DeliveryError) as lost:
            await sender.send_text(Address("telegram", str(CHAT)), "re: lost")
    async with TakesThenDropsSlack() as slack, _slack(slack) as channel:
        slack.drops = 99
        with pytest.raises(DeliveryError) as lost_post:
            await channel.send_text(Address("slack", "DOWNER"), "re: lost post")
    async with FakeTelegram() as tg:
        relay = Relay(_port(tg.base_url))
        await relay.start()
        await relay.drop()
        async with _telegram(f"http://127.0.0.1:{relay.port}", tg.token) as sender:
            with pytest.raises(DeliveryError) as refused:
                await sender.send_text(Address("telegram", str(CHAT)), "re: never went")
    assert lost.value.unsure and lost_post.value.unsure
    assert not refused.value.unsure and not refused.value.permanent
