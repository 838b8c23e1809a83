"""The Telegram fake, exercised through Steward's own Bot API client (bot/channels/telegram_api.py):
what the client puts on the wire, and how it maps what the server answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fakes.telegram import FakeTelegram, post_webhook

from bot.channels.telegram_api import (
    TelegramApi,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflict,
    TelegramForbidden,
    TelegramMigrated,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorized,
)
from bot.channels.telegram_types import Update

CHAT = 1001
SECRET = "TEST-token"  # the part of FakeTelegram's token after the bot id


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as tg:
        yield tg


@pytest.fixture
async def api(fake: FakeTelegram) -> AsyncIterator[TelegramApi]:
    client = TelegramApi(fake.token, fake.base_url)
    yield client
    await client.close()


async def _poll(api: TelegramApi, offset: int | None = None, wait: int = 1) -> list[Update]:
    raw = await api.call("getUpdates", offset=offset, timeout=wait, allowed_updates=["message"])
    return [Update.from_raw(update) for update in raw]


async def test_polling_delivers_a_message_and_confirms_it(
    fake: FakeTelegram, api: TelegramApi
) -> None:
    first = fake.push_message("/start")
    (update,) = await _poll(api)
    assert update.update_id == first and update.message is not None
    assert update.message.text == "/start" and update.message.chat.type == "private"
    assert update.message.from_user is not None and update.message.from_user.full_name == "Ann"
    sent = await api.call("sendMessage", chat_id=update.message.chat.id, text="welcome")
    assert sent["text"] == "welcome" and sent["from"]["username"] == "steward_test_bot"
    assert await _poll(api, offset=first + 1, wait=0) == []
    assert fake.pending_updates == []  # confirmed by the offset

    polls = fake.calls_to("getUpdates")
    assert polls[0].params["allowed_updates"] == ["message"]  # JSON in the form, decoded
    assert polls[0].params["timeout"] == "1" and "offset" not in polls[0].params  # None left out
    assert polls[1].params["offset"] == str(first + 1)
    reply = fake.calls_to("sendMessage")[0]
    assert reply.params == {"chat_id": str(CHAT), "text": "welcome"} and reply.status == 200
    assert fake.sent_texts(CHAT) == ["welcome"] and fake.sent_texts(42) == []


async def test_booleans_and_objects_go_as_the_bot_api_reads_them(
    fake: FakeTelegram, api: TelegramApi
) -> None:
    await api.call(
        "sendMessage",
        chat_id=CHAT,
        text="no preview",
        link_preview_options={"is_disabled": True},
        parse_mode=None,
    )
    assert await api.call("deleteWebhook", drop_pending_updates=False) is True
    (sent,) = fake.calls_to("sendMessage")
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    assert "parse_mode" not in sent.params
    assert fake.calls_to("deleteWebhook")[0].params == {"drop_pending_updates": "false"}


async def test_a_message_sent_into_a_topic_stays_in_it(
    fake: FakeTelegram, api: TelegramApi
) -> None:
    """As in a forum supergroup: what is sent with `message_thread_id` carries its topic (the
    boundary test presses a card's button in a topic); a private chat has no topics."""
    forum = -1001234
    sent = await api.call("sendMessage", chat_id=forum, text="in topic", message_thread_id=42)
    assert (sent["message_thread_id"], sent["is_topic_message"]) == (42, True)
    assert fake.messages[(forum, sent["message_id"])]["message_thread_id"] == 42
    plain = await api.call("sendMessage", chat_id=forum, text="general")
    private = await api.call("sendMessage", chat_id=CHAT, text="dm", message_thread_id=42)
    assert "message_thread_id" not in plain and "message_thread_id" not in private


async def test_each_error_answer_maps_to_its_exception(
    fake: FakeTelegram, api: TelegramApi
) -> None:
    fake.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as flood:
        await api.call("sendMessage", chat_id=CHAT, text="hi")
    assert flood.value.retry_after == 7 and flood.value.status == 429
    expected: list[tuple[int, type[TelegramAPIError]]] = [
        (400, TelegramBadRequest),
        (403, TelegramForbidden),
        (404, TelegramNotFound),
        (409, TelegramConflict),
        (502, TelegramServerError),
    ]
    for status, kind in expected:
        fake.fail_next("sendMessage", status=status)
        with pytest.raises(kind) as info:
            await api.call("sendMessage", chat_id=CHAT, text="hi")
        assert type(info.value) is kind and info.value.status == status
    assert "Forbidden: bot was blocked by the user" in str(
        await _raised(fake, api, 403, "Forbidden: bot was blocked by the user")
    )
    sent = await api.call("sendMessage", chat_id=CHAT, text="hi again")  # only those failed
    assert sent["text"] == "hi again" and fake.sent_texts() == ["hi again"]


async def _raised(fake: FakeTelegram, api: TelegramApi, status: int, text: str) -> Exception:
    fake.fail_next("sendMessage", status=status, description=text)
    try:
        await api.call("sendMessage", chat_id=CHAT, text="x")
    except TelegramAPIError as exc:
        return exc
    raise AssertionError("no error raised")


async def test_a_group_that_became_a_supergroup_names_its_new_id() -> None:
    answer = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1009876},
    }

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer, status=400)

    async with _server(handler) as base:
        client = TelegramApi("1:x", base)
        try:
            with pytest.raises(TelegramMigrated) as info:
                await client.call("sendMessage", chat_id=-5, text="hi")
        finally:
            await client.close()
    assert info.value.migrate_to_chat_id == -1009876


async def test_an_answer_that_is_not_the_bot_apis_is_a_network_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>Bad Gateway</html>")

    async with _server(handler) as base:
        client = TelegramApi("1:x", base)
        try:
            with pytest.raises(TelegramNetworkError, match="HTTP 502"):
                await client.call("getMe")
        finally:
            await client.close()


class _server:
    """A one-route aiohttp server on 127.0.0.1: its base URL."""

    def __init__(self, handler: Any) -> None:
        self._app = web.Application()
        self._app.router.add_route("*", "/{tail:.*}", handler)
        self._runner = web.AppRunner(self._app)

    async def __aenter__(self) -> str:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


async def test_the_token_is_in_no_error_and_no_log_line(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # aiohttp's own exception for this URL quotes the URL, token and all
    broken = TelegramApi(fake.token, "http://127.0.0.1:99999")
    refused = TelegramApi(fake.token, "http://127.0.0.1:1")
    wrong = TelegramApi("999:wrong-" + SECRET, fake.base_url)
    errors: list[Exception] = []
    try:
        for client, kind in (
            (broken, TelegramNetworkError),
            (refused, TelegramNetworkError),
            (wrong, TelegramUnauthorized),
        ):
            with pytest.raises(kind) as info:
                await client.call("getMe")
            errors.append(info.value)
        with pytest.raises(TelegramNetworkError) as info:
            await broken.download("documents/file_1", 1000)
        errors.append(info.value)
    finally:
        for client in (broken, refused, wrong):
            await client.close()
    for error in errors:
        shown = f"{error} {error!r} {error.__cause__!r} {error.__context__!r}"
        assert SECRET not in shown, shown
        assert error.__cause__ is None and error.__context__ is None
    assert "InvalidUrl" in str(errors[0])  # the aiohttp error is named, its URL scrubbed
    assert SECRET not in repr(broken)
    assert SECRET not in caplog.text


async def test_a_file_download_is_capped(fake: FakeTelegram, api: TelegramApi) -> None:
    ref = fake.add_file(b"x" * 5000, path="photos/cat")
    path = (await api.call("getFile", file_id=ref["file_id"]))["file_path"]
    assert await api.download(path, 5000) == b"x" * 5000
    with pytest.raises(OverflowError):
        await api.download(path, 4999, chunk=1000)
    with pytest.raises(TelegramNetworkError, match="HTTP 404"):
        await api.download("photos/none", 5000)


async def test_entity_rejection_and_html_validation(fake: FakeTelegram, api: TelegramApi) -> None:
    fake.reject_entities_next()
    plain = await api.call("sendMessage", chat_id=CHAT, text="plain passes")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await api.call("sendMessage", chat_id=CHAT, text="*bold*", parse_mode="MarkdownV2")

    for bad in ("a < b", "fish & chips", "<b>open", "<br>", "<b><i>x</b></i>", "&nbsp;"):
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await api.call("sendMessage", chat_id=CHAT, text=bad, parse_mode="HTML")

    html = '<b>hi</b> &amp; <a href="https://e.x/?a=1&amp;b=2">link</a> &lt;3'
    sent = await api.call("sendMessage", chat_id=CHAT, text=html, parse_mode="HTML")
    assert sent["text"] == "hi & link <3"
    assert [(e["type"], e["offset"], e["length"]) for e in sent["entities"]] == [
        ("bold", 0, 2),
        ("text_link", 5, 4),
    ]
    assert fake.sent_texts() == ["plain passes", html]
    assert plain["message_id"] < sent["message_id"]

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await api.call("sendMessage", chat_id=CHAT, text="x" * 4097)


async def test_a_button_press_arrives_with_its_presser_and_message(
    fake: FakeTelegram, api: TelegramApi
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]}
    question = await api.call("sendMessage", chat_id=CHAT, text="Proceed?", reply_markup=keyboard)
    assert question["reply_markup"] == keyboard
    fake.push_callback("yes", user_id=CHAT, chat_id=CHAT, message_id=question["message_id"])
    raw = await api.call("getUpdates", timeout=1)
    query = Update.from_raw(raw[0]).callback_query
    assert query is not None and query.data == "yes" and query.from_user.id == CHAT
    assert query.message is not None and query.message.message_id == question["message_id"]
    assert await api.call("answerCallbackQuery", callback_query_id=query.id, text="ok")
    await api.call(
        "editMessageText", chat_id=CHAT, message_id=question["message_id"], text="Approved"
    )
    assert fake.calls_to("answerCallbackQuery")[0].params["text"] == "ok"
    assert fake.sent_texts(CHAT) == ["Proceed?", "Approved"]
    assert fake.messages[(CHAT, question["message_id"])]["text"] == "Approved"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await api.call(
            "editMessageText", chat_id=CHAT, message_id=question["message_id"], text="Approved"
        )


async def test_set_my_commands_recorded_decoded(fake: FakeTelegram, api: TelegramApi) -> None:
    commands = [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    assert await api.call("setMyCommands", commands=commands)
    call = (await fake.wait_for("setMyCommands"))[0]
    assert call.params["commands"] == commands
    assert [c["command"] for c in await api.call("getMyCommands")] == ["start", "help"]


async def test_stall_polls_freezes_completed_polls(fake: FakeTelegram, api: TelegramApi) -> None:
    fake.stall_polls = True
    poll = asyncio.create_task(_poll(api, wait=0))
    await fake.wait_for("getUpdates")
    fake.push_message("one")
    await asyncio.sleep(0.3)
    assert not poll.done() and fake.completed_polls == 0
    fake.stall_polls = False
    (update,) = await asyncio.wait_for(poll, 5)
    assert update.message is not None and update.message.text == "one"
    assert fake.completed_polls == 1


async def test_errors_for_token_method_and_webhook_conflict(
    fake: FakeTelegram, api: TelegramApi
) -> None:
    wrong = TelegramApi("999:wrong", fake.base_url)
    with pytest.raises(TelegramUnauthorized):
        await wrong.call("getMe")
    await wrong.close()
    with pytest.raises(TelegramNotFound, match="method not found"):
        await api.call("noSuchMethod")

    async with aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/bot{fake.token}"
        async with http.post(f"{url}/sendMessage", json={"chat_id": 7, "text": "json"}) as resp:
            assert (await resp.json())["result"]["chat"] == {"id": 7, "type": "private"}
    assert fake.calls_to("sendMessage")[0].params == {"chat_id": 7, "text": "json"}

    url = "https://example.invalid/hook"
    assert await api.call("setWebhook", url=url, secret_token="s3cret")
    assert fake.webhook is not None and fake.webhook["secret_token"] == "s3cret"
    assert (await api.call("getWebhookInfo"))["url"] == url
    with pytest.raises(TelegramConflict):
        await api.call("getUpdates")
    assert await api.call("deleteWebhook")
    assert fake.webhook is None
    assert (await api.call("getChat", chat_id=CHAT))["id"] == CHAT


async def test_post_webhook_sends_the_update_and_the_secret(fake: FakeTelegram) -> None:
    seen: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        seen.append((secret, await request.json()))
        return web.Response(status=200 if secret == "s3cret" else 401)

    fake.push_message("via webhook")
    update = fake.pending_updates[-1]
    async with _server(hook) as base:
        assert await post_webhook(f"{base}/hook", update, "wrong") == 401
        assert await post_webhook(f"{base}/hook", update, "s3cret") == 200
    assert [secret for secret, _ in seen] == ["wrong", "s3cret"]
    assert seen[1][1]["message"]["text"] == "via webhook"
