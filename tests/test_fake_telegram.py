"""The Telegram fake, exercised through the real aiogram client (Bot, Dispatcher, polling)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from fakes.telegram import FakeTelegram, post_webhook

CHAT = 1001


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as tg:
        yield tg


def make_bot(fake: FakeTelegram, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    return Bot(token or fake.token, session=session)


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    bot = make_bot(fake)
    yield bot
    await bot.session.close()


@asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot, fake: FakeTelegram) -> AsyncIterator[None]:
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    try:
        await fake.wait_for("getUpdates")
        yield
    finally:
        await dp.stop_polling()
        await task


async def test_polling_delivers_message_and_records_reply(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("start"))
    async def start(message: Message) -> None:
        await message.answer("welcome")

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    async with polling(dp, bot, fake):
        first = fake.push_message("/start")
        await fake.wait_for("sendMessage")
        fake.push_message("hello")
        await fake.wait_for("sendMessage", 2)

    assert fake.sent_texts(CHAT) == ["welcome", "echo: hello"]
    assert fake.sent_texts(42) == []
    assert [c.method for c in fake.calls[:2]] == ["getMe", "getUpdates"]
    polls = fake.calls_to("getUpdates")
    assert polls[0].params["allowed_updates"] == ["message"]  # decoded from JSON
    assert polls[1].params["offset"] == str(first + 1)  # confirms the delivered update
    reply = fake.calls_to("sendMessage")[0]
    assert reply.params["chat_id"] == str(CHAT) and reply.status == 200
    assert reply.result["from"]["username"] == "steward_test_bot"
    assert fake.completed_polls >= 2


async def test_retry_after_is_raised(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendMessage", status=429, retry_after=1)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(CHAT, "hi")
    assert info.value.retry_after == 1
    sent = await bot.send_message(CHAT, "hi again")  # only the next call fails
    assert sent.text == "hi again"
    assert fake.sent_texts() == ["hi again"]


async def test_entity_rejection_and_html_validation(fake: FakeTelegram, bot: Bot) -> None:
    fake.reject_entities_next()
    plain = await bot.send_message(CHAT, "plain passes")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(CHAT, "*bold*", parse_mode="MarkdownV2")

    for bad in ("a < b", "fish & chips", "<b>open", "<br>", "<b><i>x</b></i>", "&nbsp;"):
        with pytest.raises(TelegramBadRequest, match="can't parse entities"):
            await bot.send_message(CHAT, bad, parse_mode="HTML")

    html = '<b>hi</b> &amp; <a href="https://e.x/?a=1&amp;b=2">link</a> &lt;3'
    sent = await bot.send_message(CHAT, html, parse_mode="HTML")
    assert sent.text == "hi & link <3"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [
        ("bold", 0, 2),
        ("text_link", 5, 4),
    ]
    assert fake.sent_texts() == ["plain passes", html]
    assert plain.message_id < sent.message_id

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "x" * 4097)


async def test_callback_query_reaches_handler(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="yes")]]
    )
    question = await bot.send_message(CHAT, "Proceed?", reply_markup=keyboard)
    assert question.reply_markup is not None
    assert question.reply_markup.model_dump() == keyboard.model_dump()  # _bot breaks ==
    dp = Dispatcher()
    seen: list[str] = []

    @dp.callback_query(F.data == "yes")
    async def on_yes(query: CallbackQuery) -> None:
        seen.append(f"{query.from_user.id}:{query.data}")
        await query.answer("ok")
        assert isinstance(query.message, Message)
        await query.message.edit_text("Approved")

    async with polling(dp, bot, fake):
        fake.push_callback("yes", user_id=CHAT, chat_id=CHAT, message_id=question.message_id)
        await fake.wait_for("editMessageText")

    assert seen == [f"{CHAT}:yes"]
    answer = fake.calls_to("answerCallbackQuery")[0]
    assert answer.params["text"] == "ok"
    assert fake.sent_texts(CHAT) == ["Proceed?", "Approved"]
    assert fake.messages[(CHAT, question.message_id)]["text"] == "Approved"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("Approved", chat_id=CHAT, message_id=question.message_id)


async def test_set_my_commands_recorded_decoded(fake: FakeTelegram, bot: Bot) -> None:
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="help", description="Help"),
    ]
    assert await bot.set_my_commands(commands)
    call = (await fake.wait_for("setMyCommands"))[0]
    assert call.params["commands"] == [
        {"command": "start", "description": "Start"},
        {"command": "help", "description": "Help"},
    ]
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]


async def test_stall_polls_freezes_completed_polls(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    async with polling(dp, bot, fake):
        fake.push_message("one")
        await fake.wait_for("sendMessage")
        fake.stall_polls = True
        frozen = fake.completed_polls
        fake.push_message("two")
        await asyncio.sleep(0.3)
        assert fake.completed_polls == frozen
        assert fake.sent_texts() == ["echo: one"]
        fake.stall_polls = False
        await fake.wait_for("sendMessage", 2)
        assert fake.completed_polls > frozen
    assert fake.sent_texts() == ["echo: one", "echo: two"]


async def test_errors_for_token_method_and_webhook_conflict(fake: FakeTelegram, bot: Bot) -> None:
    wrong = make_bot(fake, token="999:wrong")
    with pytest.raises(TelegramUnauthorizedError):
        await wrong.get_me()
    await wrong.session.close()

    async with aiohttp.ClientSession() as http:
        url = f"{fake.base_url}/bot{fake.token}"
        async with http.post(f"{url}/noSuchMethod") as resp:
            assert resp.status == 404
            assert (await resp.json())["description"] == "Not Found: method not found"
        async with http.post(f"{url}/sendMessage", json={"chat_id": 7, "text": "json"}) as resp:
            assert (await resp.json())["result"]["chat"] == {"id": 7, "type": "private"}
    assert fake.calls_to("sendMessage")[0].params == {"chat_id": 7, "text": "json"}

    assert await bot.set_webhook("https://example.invalid/hook", secret_token="s3cret")
    assert fake.webhook is not None and fake.webhook["secret_token"] == "s3cret"
    assert (await bot.get_webhook_info()).url == "https://example.invalid/hook"
    with pytest.raises(TelegramConflictError):
        await bot.get_updates()
    assert await bot.delete_webhook()
    assert fake.webhook is None
    assert (await bot.get_chat(CHAT)).id == CHAT


async def test_post_webhook_into_aiogram_handler(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"hook: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dp, bot, secret_token="s3cret").register(app, path="/hook")
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        fake.push_message("via webhook")
        update = fake.pending_updates[-1]
        url = f"http://{host}:{port}/hook"
        assert await post_webhook(url, update, "wrong") == 401
        assert await post_webhook(url, update, "s3cret") == 200
        await fake.wait_for("sendMessage")
    finally:
        await runner.cleanup()
    assert fake.sent_texts(CHAT) == ["hook: via webhook"]
