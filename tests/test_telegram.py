"""The Telegram channel on the real core, against the loopback Bot API fake (our own client).

(Over 400 lines: many short cases on one fake and one core fixture.)
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram, post_webhook
from harness import OWNER, Harness, echo_reply, running_steward, until

from agent.outbox import DeliveryError
from agent.types import Address, ApprovalPrompt
from bot.channels.errors import ChannelStartError
from bot.channels.telegram import TelegramChannel
from bot.commands import build_commands
from bot.http import HttpServer

OWNER_TG = 1001
STRANGER_TG = 2002
GROUP = -1001234567890


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def _channel(tg: FakeTelegram, h: Harness, **kwargs: Any) -> TelegramChannel:
    options: dict[str, Any] = {
        "api_base": tg.base_url,
        "poll_timeout": 1,
        "stall_after": 30.0,
        "backoff": 0.05,
    }
    options |= kwargs
    return TelegramChannel(
        token=tg.token,
        commands=[(c.name, c.summary) for c in build_commands()],
        state=h.steward.stores.state,
        **options,
    )


@asynccontextmanager
async def telegram(
    tmp_path: Path, model: FakeAnthropic, tg: FakeTelegram, **kwargs: Any
) -> AsyncIterator[tuple[Harness, TelegramChannel]]:
    async with running_steward(
        tmp_path, model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        channel = _channel(tg, h, **kwargs)
        h.steward.switchboard.register(channel.name, channel)
        await channel.start(h.router.dispatch)
        try:
            yield h, channel
        finally:
            await channel.stop()


def _db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "steward.db")


async def _reply_status(tmp_path: Path, wanted: str) -> str:
    """The status of the one outgoing message once it is `wanted` (or after 2.5 s)."""
    status = ""
    for _ in range(50):
        with _db(tmp_path) as db:
            status = db.execute("SELECT status FROM messages WHERE direction='out'").fetchone()[0]
        if status == wanted:
            break
        await asyncio.sleep(0.05)
    return status


async def test_a_private_message_gets_an_html_reply_with_typing_and_a_command_menu(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.latency = 0.3
    fake_model.reply_text("**Done** & dusted <3, see `a<b`")
    async with telegram(tmp_path, fake_model, tg):
        tg.push_message("tidy up please", user_id=OWNER_TG)
        (reply,) = await tg.wait_for("sendMessage", timeout=30)  # the first turn: cold
    assert reply.status == 200
    assert reply.params["parse_mode"] == "HTML"
    assert reply.params["text"] == "<b>Done</b> &amp; dusted &lt;3, see <code>a&lt;b</code>"
    assert reply.result["text"] == "Done & dusted <3, see a<b"
    assert [e["type"] for e in reply.result["entities"]] == ["bold", "code"]
    typing = tg.calls_to("sendChatAction")
    assert typing and typing[0].params == {"chat_id": str(OWNER_TG), "action": "typing"}
    assert tg.calls.index(typing[0]) < tg.calls.index(reply)
    menu = {c["command"] for c in tg.calls_to("setMyCommands")[0].params["commands"]}
    assert {"start", "help", "allow", "revoke", "link", "approve"} <= menu
    assert tg.calls_to("deleteWebhook"), "polling mode removes a webhook left from before"
    assert "tidy up please" in fake_model.requests[0].last_user_text


async def test_start_greets_and_explains(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    async with telegram(tmp_path, fake_model, tg):
        tg.push_message("/start", user_id=OWNER_TG)
        await tg.wait_for("sendMessage")
    (greeting,) = tg.sent_texts(OWNER_TG)
    assert "I'm Steward" in greeting and "/help" in greeting
    assert fake_model.requests == []


async def test_in_groups_only_mentions_replies_and_own_commands_get_through(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    async with telegram(tmp_path, fake_model, tg):
        group = {"chat_type": "supergroup", "chat_id": GROUP, "user_id": OWNER_TG}
        tg.push_message("chatter between people", **group)
        tg.push_message("/help@some_other_bot", **group)
        tg.push_message("hey @Steward_Test_Bot, what's up?", **group)
        await tg.wait_for("sendMessage")
        answer_id = tg.calls_to("sendMessage")[0].result["message_id"]
        tg.push_message("and tomorrow?", reply_to_message_id=answer_id, **group)
        await tg.wait_for("sendMessage", 2)
        tg.push_message("/status@steward_test_bot", **group)
        await tg.wait_for("sendMessage", 3)
        await asyncio.sleep(0.3)
    texts = tg.sent_texts(GROUP)
    assert texts[:2] == ["re: hey what's up?", "re: and tomorrow?"]
    assert texts[2].startswith("Up ") and len(texts) == 3
    asked = [r.last_user_text for r in fake_model.requests]
    assert not any("chatter" in text for text in asked)


async def test_a_long_reply_is_split_on_paragraph_boundaries(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    paragraphs = ["A" * 3000, "B" * 3000, "C " * 50]
    fake_model.reply_text("\n\n".join(paragraphs))
    async with telegram(tmp_path, fake_model, tg):
        tg.push_message("write a lot", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", 2)
        await asyncio.sleep(0.2)
    texts = [c.result["text"] for c in tg.calls_to("sendMessage")]
    assert texts == [paragraphs[0], paragraphs[1] + "\n\n" + paragraphs[2].strip()]
    assert all(len(text) <= 4096 for text in texts)


async def test_a_reply_rejected_for_its_entities_is_resent_as_plain_text(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.reply_text("**Bold** plan: *step one*")
    tg.reject_entities_next()
    async with telegram(tmp_path, fake_model, tg):
        tg.push_message("plan?", user_id=OWNER_TG)
        first, second = await tg.wait_for("sendMessage", 2)
    assert first.status == 400 and first.params["parse_mode"] == "HTML"
    assert second.status == 200 and "parse_mode" not in second.params
    # what the HTML would show, not the Markdown it came from (R137: "**Bold**" showed raw)
    assert second.params["text"] == "Bold plan: step one"
    with _db(tmp_path) as db:
        assert db.execute("SELECT status FROM messages WHERE direction='out'").fetchall() == [
            ("sent",)
        ]


async def test_a_reply_whose_link_telegram_refuses_goes_as_plain_text(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    """R137: "entity URL … is invalid" (a link Telegram will not take) left the owner nothing,
    and the same HTML was retried for a week."""
    fake_model.reply_text("See [the dashboard](http://my_host:8080/dash) and - item one")
    tg.fail_next(
        "sendMessage",
        status=400,
        description="Bad Request: entity URL 'http://my_host:8080/dash' is invalid: Wrong HTTP URL",
    )
    async with telegram(tmp_path, fake_model, tg):
        tg.push_message("where?", user_id=OWNER_TG)
        first, second = await tg.wait_for("sendMessage", 2)
    assert first.status == 400 and first.params["parse_mode"] == "HTML"
    assert second.status == 200 and "parse_mode" not in second.params
    assert "http://my_host:8080/dash" in second.params["text"]
    assert "](" not in second.params["text"]


async def test_flood_control_retry_after_is_honoured(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    tg.fail_next("sendMessage", status=429, retry_after=1)
    async with telegram(tmp_path, fake_model, tg):
        tg.push_message("hello", user_id=OWNER_TG)
        await tg.wait_for("sendMessage")
        started = time.monotonic()
        await tg.wait_for("sendMessage", 2, timeout=5)
        waited = time.monotonic() - started
    refused, sent = tg.calls_to("sendMessage")
    assert refused.status == 429 and sent.status == 200
    assert waited >= 0.9, f"retried after {waited:.2f}s, before retry_after"
    assert tg.sent_texts(OWNER_TG) == ["re: hello"]


async def test_a_reply_that_cannot_be_sent_stays_queued_until_it_is(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    tg.fail_next("sendMessage", status=502, description="Bad Gateway", times=4)
    async with telegram(tmp_path, fake_model, tg, send_attempts=2) as (h, _):
        tg.push_message("are you there?", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", 2)
        status = await _reply_status(tmp_path, "failed")
        assert status == "failed", "a message the channel gave up on is kept as failed"
        redelivery = asyncio.create_task(h.steward.courier.keep_redelivering(every=0.1))
        try:
            await tg.wait_for("sendMessage", 5, timeout=10)
            for _ in range(50):
                with _db(tmp_path) as db:
                    row = db.execute(
                        "SELECT status, attempts FROM messages WHERE direction='out'"
                    ).fetchone()
                if row[0] == "sent":
                    break
                await asyncio.sleep(0.05)
        finally:
            redelivery.cancel()
    assert row[0] == "sent" and row[1] >= 2
    assert tg.sent_texts(OWNER_TG) == ["re: are you there?"]


async def test_redelivery_sleeps_while_nothing_failed_and_wakes_when_a_send_does(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    """R101: the redelivery loop asked SQLite for failed messages every 5 s while none were:
    17,000 looks a day on an idle machine. It now sleeps until a send fails."""
    fake_model.on_request(echo_reply)
    async with telegram(tmp_path, fake_model, tg, send_attempts=2) as (h, _):
        statements: list[str] = []
        redelivery = asyncio.create_task(h.steward.courier.keep_redelivering(every=0.05))
        try:
            await asyncio.sleep(0.2)  # its first pass, finding nothing
            await h.steward.stores.db._conn.set_trace_callback(statements.append)
            await asyncio.sleep(0.6)  # twelve passes' worth, idle
            looks = [s for s in statements if "direction = 'out' AND status IN" in s]
            assert looks == []
            tg.fail_next("sendMessage", status=502, description="Bad Gateway", times=2)
            tg.push_message("are you there?", user_id=OWNER_TG)
            await tg.wait_for("sendMessage", 3, timeout=10)  # two failures, then redelivered
            status = await _reply_status(tmp_path, "sent")
        finally:
            await h.steward.stores.db._conn.set_trace_callback(None)
            redelivery.cancel()
    assert status == "sent"
    assert tg.sent_texts(OWNER_TG) == ["re: are you there?"]


async def test_a_redelivery_pass_that_fails_looks_again_soon(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    """R104: the wake-up a failed send gives was spent on a pass that then failed (its look
    at SQLite interrupted), and the loop went back to sleep until another send failed: the
    reply waited for ever. A pass that fails looks again soon."""
    fake_model.on_request(echo_reply)
    async with telegram(tmp_path, fake_model, tg, send_attempts=2) as (h, _):
        conn = h.steward.stores.db._conn
        last: list[str] = [""]
        interrupted: list[str] = []

        def interrupt_the_first_look() -> int:
            if not interrupted and "direction = 'out' AND status IN" in last[0]:
                interrupted.append(last[0])
                return 1  # SQLite aborts the statement: "interrupted"
            return 0

        redelivery = asyncio.create_task(h.steward.courier.keep_redelivering(every=0.05))
        try:
            await asyncio.sleep(0.2)  # its first pass, finding nothing: it sleeps
            await conn.set_trace_callback(lambda sql: last.__setitem__(0, sql))
            await conn.set_progress_handler(interrupt_the_first_look, 1)
            tg.fail_next("sendMessage", status=502, description="Bad Gateway", times=2)
            tg.push_message("are you there?", user_id=OWNER_TG)
            await tg.wait_for("sendMessage", 3, timeout=10)
            status = await _reply_status(tmp_path, "sent")
        finally:
            await conn.set_progress_handler(None, 1)
            await conn.set_trace_callback(None)
            redelivery.cancel()
    assert interrupted, "the redelivery look was interrupted once"
    assert status == "sent"
    assert tg.sent_texts(OWNER_TG) == ["re: are you there?"]


async def test_polling_survives_getupdates_errors(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    tg.fail_next("getUpdates", status=502, description="Bad Gateway", times=2)
    async with telegram(tmp_path, fake_model, tg) as (_, channel):
        await tg.wait_for("getUpdates")
        for _ in range(100):  # what /status and the web console show meanwhile
            if channel.status != "up":
                break
            await asyncio.sleep(0.02)
        assert channel.status == "reconnecting: getUpdates error"
        tg.push_message("still there?", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", timeout=10)
        assert channel.status == "up"
    failed = [c for c in tg.calls_to("getUpdates") if c.status == 502]
    assert len(failed) == 2
    assert tg.sent_texts(OWNER_TG) == ["re: still there?"]


class Relay:
    """A TCP relay in front of the fake, so a test can take the network away and back."""

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


async def test_polling_reconnects_after_the_network_drops(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    relay = Relay(int(tg.base_url.rsplit(":", 1)[1]))
    await relay.start()
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        channel = _channel(tg, h, api_base=f"http://127.0.0.1:{relay.port}")
        h.steward.switchboard.register("telegram", channel)
        await channel.start(h.router.dispatch)
        try:
            await tg.wait_for("getUpdates")
            await relay.drop()  # the poll in flight is cut; new connections are refused
            polls = len(tg.calls_to("getUpdates"))
            tg.push_message("back online?", user_id=OWNER_TG)
            await asyncio.sleep(1.0)
            assert len(tg.calls_to("getUpdates")) == polls, "nothing gets through meanwhile"
            await relay.start()
            await tg.wait_for("sendMessage", timeout=10)
        finally:
            await channel.stop()
            await relay.drop()
    assert tg.sent_texts(OWNER_TG) == ["re: back online?"]


async def test_a_channel_started_while_telegram_is_unreachable_connects_when_it_can(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    relay = Relay(int(tg.base_url.rsplit(":", 1)[1]))
    await relay.start()
    await relay.drop()
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        channel = _channel(tg, h, api_base=f"http://127.0.0.1:{relay.port}")
        h.steward.switchboard.register("telegram", channel)
        await asyncio.wait_for(channel.start(h.router.dispatch), 5)  # returns, keeps trying
        try:
            assert tg.calls == []
            await relay.start()
            tg.push_message("morning", user_id=OWNER_TG)
            await tg.wait_for("sendMessage", timeout=10)
        finally:
            await channel.stop()
            await relay.drop()
    methods = [c.method for c in tg.calls]
    assert {"getMe", "setMyCommands"} <= set(methods)
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert tg.sent_texts(OWNER_TG) == ["re: morning"]


async def test_a_stalled_poll_is_restarted_by_the_watchdog(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    async with telegram(tmp_path, fake_model, tg, stall_after=2.0) as (_, channel):
        await tg.wait_for("getUpdates")
        tg.stall_polls = True
        await asyncio.sleep(1.2)  # the poll in flight now hangs
        polls_before = len(tg.calls_to("getUpdates"))
        tg.push_message("anyone?", user_id=OWNER_TG)
        for _ in range(80):
            if channel.poll_restarts:
                break
            await asyncio.sleep(0.1)
        assert channel.poll_restarts >= 1
        await tg.wait_for("getUpdates", polls_before + 1)
        tg.stall_polls = False
        await tg.wait_for("sendMessage", timeout=5)
    assert tg.sent_texts(OWNER_TG) == ["re: anyone?"]


async def test_the_same_update_is_handled_once_even_across_a_restart(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        first = _channel(tg, h)
        h.steward.switchboard.register("telegram", first)
        await first.start(h.router.dispatch)
        update_id = tg.push_message("once only", user_id=OWNER_TG, update_id=700)
        await tg.wait_for("sendMessage")
        await asyncio.sleep(0.2)
        await first.stop()
        duplicate = {"update_id": update_id, "message": tg.calls_to("getUpdates")[0].result}
        polls = len(tg.calls_to("getUpdates"))

        # Telegram delivers it again (its confirmation was lost), to a restarted channel
        again = _channel(tg, h)
        h.steward.switchboard.register("telegram", again)
        await again.start(h.router.dispatch)
        await tg.wait_for("getUpdates", polls + 1)
        restarted_poll = tg.calls_to("getUpdates")[polls]
        await again.stop()
    assert duplicate["message"], "the first poll carried the update"
    assert restarted_poll.params["offset"] == str(update_id + 1)
    assert tg.sent_texts(OWNER_TG) == ["re: once only"]


async def _answered_once(
    tg: FakeTelegram, h: Harness, text: str, update_id: int, *, replies: int
) -> Any:
    """A channel started, the owner's `text` (as update `update_id`) answered, the channel
    stopped: the first getUpdates call it made."""
    polls = len(tg.calls_to("getUpdates"))
    channel = _channel(tg, h)
    h.steward.switchboard.register("telegram", channel)
    await channel.start(h.router.dispatch)
    try:
        tg.push_message(text, user_id=OWNER_TG, update_id=update_id)
        await tg.wait_for("sendMessage", replies)
        await asyncio.sleep(0.2)  # where it read up to is stored after the answer
    finally:
        await channel.stop()
    return tg.calls_to("getUpdates")[polls]


async def test_a_new_bot_or_a_week_of_quiet_loses_no_message_to_an_old_offset(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    """R179: one stored update id for every bot: after a new bot token (its own ids, lower)
    every message of the owner was dropped as seen, and the first poll's offset confirmed
    (deleted) them at Telegram; so after a week of quiet, when Telegram picks ids anew."""
    fake_model.on_request(echo_reply)
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        await _answered_once(tg, h, "to the old bot", 100_000_011, replies=1)
        tg.token, tg.bot_user["id"] = "999999:NEW-token", 999999  # a new bot from BotFather
        first_poll = await _answered_once(tg, h, "hello new bot", 5, replies=2)
        # the same bot after a week of quiet: its stored offset is not carried into a poll
        key = f"telegram.{tg.bot_user['id']}.last_update"
        await h.steward.stores.state.set(key, "900 2026-01-01T00:00:00+00:00")
        quiet_poll = await _answered_once(tg, h, "after a quiet week", 17, replies=3)
    assert "offset" not in first_poll.params and "offset" not in quiet_poll.params
    assert tg.sent_texts(OWNER_TG)[1:] == ["re: hello new bot", "re: after a quiet week"]


async def test_a_week_of_quiet_while_running_loses_no_message_either(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    """R180: the place read up to aged only at a start: running through a week of quiet, the
    next update, numbered anew and lower, was dropped as seen and confirmed away."""
    fake_model.on_request(echo_reply)
    now = [1_800_000_000.0]
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        channel = _channel(tg, h, wall=lambda: now[0])
        h.steward.switchboard.register("telegram", channel)
        await channel.start(h.router.dispatch)
        try:
            tg.push_message("before the week", user_id=OWNER_TG, update_id=100_000_011)
            await tg.wait_for("sendMessage")
            now[0] += 7 * 24 * 3600  # a week without a message
            tg.push_message("after the week", user_id=OWNER_TG, update_id=5)
            await tg.wait_for("sendMessage", 2)
        finally:
            await channel.stop()
    assert tg.sent_texts(OWNER_TG) == ["re: before the week", "re: after the week"]


async def test_a_week_of_quiet_in_webhook_mode_loses_no_message_either(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    """R236: R180's fix aged the place read up to only in the polling loop: in webhook mode
    the next update after a week of quiet, numbered anew and lower, was dropped as seen and
    answered 200, so Telegram never sent it again."""
    fake_model.on_request(echo_reply)
    now = [1_800_000_000.0]
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
    ) as h:
        await _answered_once(tg, h, "before the week", 100_000_011, replies=1)
        http = HttpServer("127.0.0.1", 0)
        channel = _channel(
            tg,
            h,
            wall=lambda: now[0],
            webhook_url="https://steward.example/telegram/webhook",
            webhook_secret="s3cret",
            http=http,
        )
        h.steward.switchboard.register("telegram", channel)
        await channel.start(h.router.dispatch)
        try:
            now[0] += 7 * 24 * 3600  # a week without a message, Steward running
            tg.push_message("after the week", user_id=OWNER_TG, update_id=5)
            url = f"{http.url}/telegram/webhook"
            status = await post_webhook(url, tg.pending_updates[-1], "s3cret")
            await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 2, "the reply", timeout=10)
        finally:
            await channel.stop()
            await http.stop()
    assert status == 200
    assert tg.sent_texts(OWNER_TG) == ["re: before the week", "re: after the week"]


async def test_webhook_mode_checks_the_secret_token_and_dedupes(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    http = HttpServer("127.0.0.1", 0)
    try:
        async with telegram(
            tmp_path,
            fake_model,
            tg,
            webhook_url="https://steward.example/telegram/webhook",
            webhook_secret="s3cret",
            http=http,
        ) as (h, _):
            assert tg.webhook is not None
            assert tg.webhook["url"] == "https://steward.example/telegram/webhook"
            assert tg.webhook["secret_token"] == "s3cret"
            tg.push_message("via the hook", user_id=OWNER_TG)
            update = tg.pending_updates[-1]
            url = f"{http.url}/telegram/webhook"
            assert await post_webhook(url, update) == 401
            assert await post_webhook(url, update, "wrong") == 401
            assert await post_webhook(url, update, "s3cret") == 200
            await tg.wait_for("sendMessage")
            assert await post_webhook(url, update, "s3cret") == 200  # delivered twice
            tg.push_message("let me in", user_id=STRANGER_TG)
            knock = tg.pending_updates[-1]
            assert await post_webhook(url, knock, "s3cret") == 200
            assert await post_webhook(url, knock, "s3cret") == 200
            await asyncio.sleep(0.3)
            knocks = await h.steward.stores.audit.recent(kind="stranger.refused")
    finally:
        await http.stop()
    assert tg.sent_texts(OWNER_TG)[0] == "re: via the hook"
    assert len(knocks) == 1, "the update delivered twice is handled once (update_id)"
    assert tg.calls_to("getUpdates") == []


async def test_approval_buttons_carry_only_the_id_and_a_press_is_dispatched_as_a_command(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    async with telegram(tmp_path, fake_model, tg) as (h, channel):
        address = Address("telegram", str(OWNER_TG))
        prompt = ApprovalPrompt("k3f9", "send_message", "Post to slack:\nhello", "acts outside")
        message_id = await channel.send_approval(address, prompt)
        (sent,) = tg.calls_to("sendMessage")
        keyboard = sent.params["reply_markup"]["inline_keyboard"]
        data = [button["callback_data"] for row in keyboard for button in row]
        assert data == ["ap:k3f9:y", "ap:k3f9:n", "ap:k3f9:a"]
        assert "/approve k3f9" in sent.result["text"]
        assert message_id is not None

        tg.push_callback(
            "ap:k3f9:y", user_id=OWNER_TG, chat_id=OWNER_TG, message_id=int(message_id)
        )
        tg.push_callback(
            "ap:k3f9:a", user_id=STRANGER_TG, chat_id=OWNER_TG, message_id=int(message_id)
        )
        tg.push_callback("garbage", user_id=OWNER_TG, chat_id=OWNER_TG, message_id=1)
        crafted = "ap:k3f9\n/allow telegram:6:y"  # callback data is client-controlled
        tg.push_callback(crafted, user_id=OWNER_TG, chat_id=OWNER_TG, message_id=1)
        await tg.wait_for("answerCallbackQuery", 4)
        await tg.wait_for("sendMessage", 3)
        refusals = await h.steward.stores.audit.recent(kind="stranger.refused")

        await channel.mark_approval(address, message_id, "k3f9 approved (decided by telegram:1001)")
    answers = tg.calls_to("answerCallbackQuery")
    assert [a.params.get("text") for a in answers].count("This button is no longer active.") == 2
    with _db(tmp_path) as db:
        pressed = db.execute(
            "SELECT messages.text, identities.platform_user_id, messages.platform_message_id"
            " FROM messages JOIN identities ON identities.user_id = messages.user_id"
            " WHERE direction='in' AND identities.channel='telegram'"
        ).fetchall()
    assert [(text, who) for text, who, _ in pressed] == [("/approve k3f9", str(OWNER_TG))]
    assert pressed[0][2].startswith("cb:")
    assert [e.actor for e in refusals] == [f"telegram:{STRANGER_TG}"]
    assert any(f"telegram:{STRANGER_TG}" in text for text in tg.sent_texts(OWNER_TG))
    edit = tg.calls_to("editMessageText")[-1]
    assert edit.status == 200 and "reply_markup" not in edit.params
    shown = tg.messages[(OWNER_TG, int(message_id))]
    assert shown["text"] == "k3f9 approved (decided by telegram:1001)"
    assert "reply_markup" not in shown


async def test_a_stranger_is_refused_once_and_the_owner_can_admit_them(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    async with telegram(tmp_path, fake_model, tg):
        tg.push_message("hi, who are you?", user_id=STRANGER_TG, first_name="Mallory")
        await tg.wait_for("sendMessage", 2)
        tg.push_message("hello??", user_id=STRANGER_TG, first_name="Mallory")
        await asyncio.sleep(0.5)
        assert len(tg.sent_texts(STRANGER_TG)) == 1
        (refusal,) = tg.sent_texts(STRANGER_TG)
        assert f"telegram:{STRANGER_TG}" in refusal
        (notice,) = tg.sent_texts(OWNER_TG)
        assert "Mallory" in notice and f"/allow telegram:{STRANGER_TG}" in notice

        tg.push_message(f"/allow telegram:{STRANGER_TG}", user_id=OWNER_TG)
        await tg.wait_for("sendMessage", 3)
        tg.push_message("now?", user_id=STRANGER_TG)
        await tg.wait_for("sendMessage", 4)
    assert tg.sent_texts(STRANGER_TG)[-1] == "re: now?"
    assert fake_model.requests and all(
        "who are you" not in r.last_user_text for r in fake_model.requests
    )


async def test_with_no_owner_yet_the_first_writer_is_told_how_to_become_it(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    """R179: a new owner who had not set STEWARD_OWNER (only the terminal is the owner's) wrote
    /start and was told to ask "my owner", who had no Telegram account."""
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER="") as h:
        channel = _channel(tg, h)
        h.steward.switchboard.register(channel.name, channel)
        await channel.start(h.router.dispatch)
        try:
            tg.push_message("/start", user_id=555)
            await tg.wait_for("sendMessage")
        finally:
            await channel.stop()
    (refusal,) = tg.sent_texts(555)
    assert "put STEWARD_OWNER=telegram:555 in Steward's .env and restart" in refusal


async def test_a_refused_token_fails_the_start_clearly(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    async with running_steward(tmp_path, fake_model.base_url) as h:
        wrong = TelegramChannel(token="999:wrong-token", api_base=tg.base_url)
        with pytest.raises(ChannelStartError, match=r"TELEGRAM_BOT_TOKEN.*401"):
            await wrong.start(h.router.dispatch)
        malformed = TelegramChannel(token="not a token", api_base=tg.base_url)
        with pytest.raises(ChannelStartError, match="TELEGRAM_BOT_TOKEN is not a bot token"):
            await malformed.start(h.router.dispatch)


def test_a_watchdog_shorter_than_a_long_poll_is_refused() -> None:
    with pytest.raises(ValueError, match="stall_after"):
        TelegramChannel(token="1:x", poll_timeout=25, stall_after=10)


async def test_a_malformed_update_is_skipped_and_polling_goes_on(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    fake_model.on_request(echo_reply)
    async with telegram(tmp_path, fake_model, tg):
        await tg.wait_for("getUpdates")
        bad_chat = tg.push_update({"message": {"message_id": 1, "date": 0, "chat": "nope"}})
        bad_sender = tg.push_message("hi", user_id=OWNER_TG, extra={"from": {"id": "1001"}})
        tg.push_message("still there?", user_id=OWNER_TG)
        (reply,) = await tg.wait_for("sendMessage", timeout=10)
        await asyncio.sleep(0.2)
        polls = tg.calls_to("getUpdates")
    assert reply.params["text"] == "re: still there?"
    assert tg.sent_texts(OWNER_TG) == ["re: still there?"]
    assert int(polls[-1].params["offset"]) > bad_sender > bad_chat, "skipped, not polled again"
    assert f"update {bad_chat} is malformed" in caplog.text
    assert f"update {bad_sender} is malformed" in caplog.text


async def test_a_group_message_waits_for_getme_and_a_private_one_does_not(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    fake_model.on_request(echo_reply)
    tg.fail_next("getMe", status=502, description="Bad Gateway")
    async with telegram(tmp_path, fake_model, tg) as (_, channel):
        await tg.wait_for("getUpdates")
        assert [c.status for c in tg.calls_to("getMe")] == [502]
        tg.push_message("private first", user_id=OWNER_TG)
        await tg.wait_for("sendMessage")
        assert len(tg.calls_to("getMe")) == 1, "a private message needs no username"
        group = {"chat_type": "supergroup", "chat_id": GROUP, "user_id": OWNER_TG}
        tg.push_message("hey @steward_test_bot, still up?", **group)
        await tg.wait_for("sendMessage", 2, timeout=10)
        assert channel.status == "up"
    assert [c.status for c in tg.calls_to("getMe")] == [502, 200]
    assert tg.sent_texts(GROUP) == ["re: hey still up?"]


async def test_a_blocked_chat_fails_the_send_at_once(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram
) -> None:
    async with telegram(tmp_path, fake_model, tg) as (_, channel):
        tg.fail_next("sendMessage", status=403)
        with pytest.raises(DeliveryError, match="blocked by the user"):
            await channel.send_text(Address("telegram", str(OWNER_TG)), "hello")
        tg.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
        with pytest.raises(DeliveryError, match="chat not found"):
            await channel.send_text(Address("telegram", "42"), "hello")
    assert [c.status for c in tg.calls_to("sendMessage")] == [403, 400], "neither is retried"


async def test_the_token_never_reaches_the_log(
    tmp_path: Path, fake_model: FakeAnthropic, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = tg.token.split(":", 1)[1]
    async with running_steward(tmp_path, fake_model.base_url) as h:
        # aiohttp's error for this base URL quotes the whole URL, token included
        channel = _channel(tg, h, api_base="http://127.0.0.1:99999")
        await channel.start(h.router.dispatch)
        try:
            await asyncio.sleep(0.5)  # a few attempts, each logged
        finally:
            await channel.stop()
    assert "not reachable" in caplog.text and "InvalidUrl" in caplog.text
    assert secret not in caplog.text


def _sends_failing(tg: FakeTelegram, failing: set[int]) -> dict[str, int]:
    """sendMessage fails on the calls numbered in `failing` (1 is the first); the count."""
    from fakes.telegram import TelegramError

    real = tg._methods["sendmessage"]
    calls = {"n": 0}

    def send(params: dict[str, Any]) -> Any:
        calls["n"] += 1
        if calls["n"] in failing:
            raise TelegramError(400, "Bad Request: simulated failure")
        return real(params)

    tg._methods["sendmessage"] = send
    return calls


def _aged(h: Harness, *, minutes: int) -> None:
    """Every outgoing message written `minutes` ago (an outage that long)."""
    h.edit_database(
        "UPDATE messages SET created_at = strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', ?)"
        " WHERE direction = 'out'",
        (f"-{minutes} minutes",),
    )


async def test_a_late_redelivery_does_not_repeat_the_part_already_sent(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A two-part reply whose second part failed resumes at that part when redelivered. Sent
    20 minutes late, the courier had added a "Sent late" line to the text, so the sender no
    longer knew it and the first part went out again. The note now follows on its own."""
    from harness import until
    from test_media_in import telegram_steward

    first, second = "alpha " * 600, "omega " * 600
    fake_model.reply_text(f"{first.strip()}\n\n{second.strip()}")
    async with (
        FakeTelegram() as tg,
        telegram_steward(tmp_path, fake_model, tg, STEWARD_STREAMING="off") as h,
    ):
        calls = _sends_failing(tg, {2})
        tg.push_message("write it all", user_id=OWNER_TG)
        await until(lambda: calls["n"] >= 2, "both parts tried")
        await asyncio.sleep(0.3)
        _aged(h, minutes=20)  # the outage lasted 20 minutes
        await h.steward.courier.redeliver()
        texts = tg.sent_texts(OWNER_TG)
    assert len([t for t in texts if t.startswith("alpha")]) == 1, texts
    assert [t for t in texts if t.startswith("omega")]
    assert texts[-1].startswith("(Sent late: the message above was written 20 min ago")


async def test_a_text_link_reaches_the_model_with_its_address(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A link written over a label ("summarise [this article](https://…)", a forwarded post's
    "Read more") reached the model as the label alone: the entity's address was dropped.
    Offsets are UTF-16: an emoji before the label counts two."""
    from harness import until
    from test_media_in import telegram_steward

    url = "https://example.org/2026/12/rates-decision"
    fake_model.reply_text("ok")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        text = "📈 summarise this article please"
        start = len("📈 summarise ".encode("utf-16-le")) // 2
        link = {"type": "text_link", "offset": start, "length": 12, "url": url}
        tg.push_message(text, user_id=OWNER_TG, entities=[link])
        await until(lambda: fake_model.requests, "the model request")
    said = fake_model.requests[-1].last_user_text
    assert f"📈 summarise this article please\n[this article]({url})" in said, said


def test_a_links_address_is_never_a_mention_in_a_group() -> None:
    """With the address put into the text before the group check, a link whose hidden address
    ends in @the_bot addressed the message to Steward, and the mention was then cut out of the
    address."""
    from bot.channels.telegram_types import Message
    from bot.channels.telegram_updates import message_in

    def group(text: str, entities: list[dict[str, Any]]) -> Message:
        return Message.from_raw(
            {
                "message_id": 9,
                "date": 1,
                "chat": {"id": -5001, "type": "supergroup"},
                "from": {"id": 1001, "is_bot": False, "first_name": "Ann"},
                "text": text,
                "entities": entities,
            }
        )

    # a lone surrogate (JSON may carry one) before a link is one UTF-16 unit: nothing crashes
    see = {"type": "text_link", "offset": 14, "length": 3, "url": "https://x.example/"}
    odd = message_in(group("\ud800 @stewardbot see", [see]), "stewardbot", 42)
    assert odd is not None and odd.text.endswith("[see](https://x.example/)")
    profile = {
        "type": "text_link",
        "offset": 13,
        "length": 7,
        "url": "https://m.example/@stewardbot",
    }
    assert message_in(group("look at this profile", [profile]), "stewardbot", 42) is None
    asked = message_in(
        group("@stewardbot look at this profile", [{**profile, "offset": 25}]), "stewardbot", 42
    )
    assert asked is not None
    assert asked.text == "look at this profile\n[profile](https://m.example/@stewardbot)"


async def test_a_late_note_that_fails_is_not_queued_to_come_back_with_a_note(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The note was queued like any message: failing, it came back late itself, followed by a
    note about the note."""
    from harness import until
    from test_media_in import telegram_steward

    fake_model.reply_text("the answer")
    async with (
        FakeTelegram() as tg,
        telegram_steward(tmp_path, fake_model, tg, STEWARD_STREAMING="off") as h,
    ):
        calls = _sends_failing(tg, {1, 3})  # the reply, then the note after its redelivery
        tg.push_message("hello", user_id=OWNER_TG)
        await until(lambda: calls["n"] >= 1, "the reply tried")
        await asyncio.sleep(0.3)
        _aged(h, minutes=20)
        assert await h.steward.courier.redeliver() == 1  # the reply; its note failed
        assert await h.steward.stores.messages.undelivered() == []
        assert await h.steward.courier.redeliver() == 0
        texts = tg.sent_texts(OWNER_TG)
    assert [t for t in texts if t == "the answer"] == ["the answer"]
    assert not [t for t in texts if t.startswith("(Sent late")]


def test_a_forward_names_who_wrote_it() -> None:
    """Only the origin's id went into the turn's label: "Alice" was nowhere, so the model could
    not say whose words they were (R137). Headed as Slack's shared messages are."""
    from bot.channels.telegram_types import Message
    from bot.channels.telegram_updates import message_in

    def forwarded(origin: dict[str, Any], text: str = "Can you come on Friday?") -> str:
        message = Message.from_raw(
            {
                "message_id": 9,
                "date": 1,
                "chat": {"id": 1001, "type": "private"},
                "from": {"id": 1001, "is_bot": False, "first_name": "Owner"},
                "text": text,
                "forward_origin": {"date": 1, **origin},
            }
        )
        incoming = message_in(message, "stewardbot", 42)
        assert incoming is not None and incoming.forwarded_from is not None
        return incoming.text

    alice = {"type": "user", "sender_user": {"id": 5555, "is_bot": False, "first_name": "Alice"}}
    assert forwarded(alice) == "[forwarded from Alice (telegram:5555)]:\nCan you come on Friday?"
    hidden = {"type": "hidden_user", "sender_user_name": "Mallory\n**SYSTEM**"}
    assert forwarded(hidden).startswith("[forwarded from Mallory SYSTEM (an account that hides)]")
    news = {
        "type": "channel",
        "chat": {"id": -100, "type": "channel", "title": "News"},
        "message_id": 3,
    }
    assert forwarded(news).startswith("[forwarded from News (telegram:-100)]")
