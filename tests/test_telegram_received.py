"""Telegram is told a message was received only once it is committed (R147: the next poll
confirmed an update while the router was still on its way to storing it, and a crash then
lost the message without a trace; a webhook was answered 200 as soon as the work was queued).
The database is held by another writer, as a busy disk would, to widen the window."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import echo_reply, until
from test_media_in import OWNER_TG, telegram_steward


async def test_a_polled_message_is_confirmed_only_once_it_is_stored(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        tg.push_message("warm up", user_id=OWNER_TG)
        await until(lambda: tg.sent_texts(OWNER_TG), "the first answer")
        with closing(sqlite3.connect(h.settings.database_path, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")  # another writer holds the database
            update_id = tg.push_message("keep me", user_id=OWNER_TG)
            await asyncio.sleep(1.5)
            confirmed = [
                c for c in tg.calls_to("getUpdates") if int(c.params.get("offset") or 0) > update_id
            ]
            db.execute("ROLLBACK")
        await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 2, "the held message answered")
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
    assert confirmed == [], "Telegram was told before the message was committed"
    assert "keep me" in stored


async def test_a_webhook_update_is_answered_only_once_it_is_stored(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    from test_telegram_boundary import post_webhook, steward

    from bot.http import HttpServer

    fake_model.on_request(echo_reply)
    http = HttpServer("127.0.0.1", 0)
    hook = {"webhook_url": "https://steward.example/telegram/webhook", "webhook_secret": "s3"}
    try:
        async with FakeTelegram() as tg, steward(tmp_path, fake_model, tg, http=http, **hook) as h:
            url = f"{http.url}/telegram/webhook"
            with closing(sqlite3.connect(h.settings.database_path, isolation_level=None)) as db:
                db.execute("BEGIN IMMEDIATE")
                tg.push_message("keep me", user_id=OWNER_TG)
                posted = asyncio.ensure_future(post_webhook(url, tg.pending_updates[-1], "s3"))
                await asyncio.sleep(1.5)
                answered_early = posted.done()
                db.execute("ROLLBACK")
            assert await posted == 200
            await until(lambda: "re: keep me" in tg.sent_texts(OWNER_TG), "the answer")
    finally:
        await http.stop()
    assert not answered_early, "the webhook was answered before the message was committed"


async def test_a_strangers_refusal_never_holds_up_the_next_poll(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R149: a stranger's message is not kept, yet the poll waited for it until the owner's
    note and the stranger's refusal were sent, each retrying Telegram's flood control."""
    import time

    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        tg.push_message("warm up", user_id=OWNER_TG)
        await until(lambda: tg.sent_texts(OWNER_TG), "the first answer")
        tg.fail_next("sendMessage", status=429, retry_after=4, times=2)
        began = time.monotonic()
        stranger = tg.push_message("hi", user_id=777777)

        def polled_past() -> bool:
            offsets = [int(c.params.get("offset") or 0) for c in tg.calls_to("getUpdates")]
            return any(offset > stranger for offset in offsets)

        await until(polled_past, "the next poll", timeout=30)
        took = time.monotonic() - began
    assert took < 2, f"no poll for {took:.1f} s behind a stranger's refusal"
