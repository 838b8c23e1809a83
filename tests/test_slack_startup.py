"""Slack unreachable at start (review58): the channel is started again in the background until
it is up, the owner is told once when it failed and once when it is up, and what waited for it
goes out then. A refused token stays final."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, event_body, message_event
from fakes.telegram import FakeTelegram
from harness import free_port, running_steward, steward_process, until

from agent.types import Address, IncomingMessage
from bot import channel_start
from bot.channel_start import start_channels
from bot.channels.errors import ChannelStartError
from bot.channels.slack import SlackChannel
from bot.channels.telegram import TelegramChannel
from bot.commands import build_commands
from bot.http import HttpServer
from bot.router import Router
from memory.labels import TRUSTED

OWNER_TG = 111


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tries every 0.2 s, at most every 0.4 s (5 s doubling to 5 min in use). Set where they
    are read, and without `raising=False` (R260: set on `bot.app`, which has no such names,
    they changed nothing and the stopped-channel test could not fail)."""
    monkeypatch.setattr(channel_start, "_RETRY_FIRST", 0.2)
    monkeypatch.setattr(channel_start, "_RETRY_MOST", 0.4)


async def test_slack_down_at_start_is_started_once_it_is_reachable(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # where Slack will be: nothing listens there yet
    owner = f"telegram:{OWNER_TG},slack:UOWNER"
    async with (
        FakeTelegram() as tg,
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h,
    ):
        stores = h.steward.stores
        await stores.people.chat("telegram", str(OWNER_TG), "private")
        dm = await stores.people.chat("slack", "DOWNER", "private")
        # a reply for Slack written while it is down: queued
        assert not await h.steward.courier.send(
            Address("slack", "DOWNER"), dm.id, "queued hello", label=TRUSTED
        )
        http = HttpServer("127.0.0.1", 0)
        slack = SlackChannel(
            bot_token="xoxb-test",
            signing_secret="test-signing-secret",
            api_url=f"http://127.0.0.1:{port}/api/",
            http=http,
        )
        telegram = TelegramChannel(
            token=tg.token, api_base=tg.base_url, state=stores.state, poll_timeout=1, backoff=0.05
        )
        redelivery = asyncio.create_task(h.steward.courier.keep_redelivering(every=0.1))
        router = Router(h.steward, build_commands())
        running = await start_channels(h.steward, router, [telegram, slack])
        try:
            assert running == [telegram, slack]  # Slack is coming up
            assert "slack" not in h.steward.switchboard.channels
            (failed,) = await until(lambda: tg.sent_texts(OWNER_TG), "the failure note")
            assert "The slack channel did not start: cannot reach Slack" in failed
            assert "I keep trying" in failed
            # a try after the note fails too (slack_sdk's own connect retry makes one take
            # ~5 s), and tells no one again
            caplog.set_level(logging.WARNING, logger="bot.channel_start")
            await until(
                lambda: [r for r in caplog.records if "still cannot start" in r.getMessage()],
                "a failed try after the note",
                20,
            )
            await asyncio.sleep(0.3)
            assert len(tg.sent_texts(OWNER_TG)) == 1
            async with FakeSlack(port=port) as fake:
                await until(lambda: "slack" in h.steward.switchboard.channels, "Slack up", 15)
                await until(lambda: len(tg.sent_texts(OWNER_TG)) == 2, "the recovery note", 10)
                await until(lambda: fake.posted("DOWNER"), "the queued reply", 10)
                await asyncio.sleep(0.5)
            texts = [c.params["text"] for c in fake.posted("DOWNER")]
            assert texts == ["queued hello"]
            assert "The slack channel is up now" in tg.sent_texts(OWNER_TG)[1]
            assert len(tg.sent_texts(OWNER_TG)) == 2
            kinds = [e.kind for e in await stores.audit.recent(50) if e.subject == "slack"]
            assert sorted(kinds) == ["channel.failed", "channel.recovered"]
        finally:
            redelivery.cancel()
            for channel in running:
                await channel.stop()
            await http.stop()


async def test_a_stopped_channel_is_no_longer_started(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Steward stopping while Slack is still down ends the trying: nothing starts after."""
    port = free_port()
    async with running_steward(tmp_path, fake_model.base_url) as h:
        http = HttpServer("127.0.0.1", 0)
        slack = SlackChannel(
            bot_token="xoxb-test",
            signing_secret="test-signing-secret",
            api_url=f"http://127.0.0.1:{port}/api/",
            http=http,
        )
        router = Router(h.steward, build_commands())
        running = await start_channels(h.steward, router, [slack])
        assert running == [slack]  # a Slack-only Steward keeps running, and trying
        await slack.stop()
        async with FakeSlack(port=port) as fake:
            await asyncio.sleep(1.0)
        assert fake.calls_to("auth.test") == []
        assert "slack" not in h.steward.switchboard.channels
        await http.stop()


async def test_a_refused_token_is_final_with_one_clear_line(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeSlack() as fake, running_steward(tmp_path, fake_model.base_url) as h:
        http = HttpServer("127.0.0.1", 0)
        slack = SlackChannel(
            bot_token="xoxb-revoked", signing_secret="s", api_url=fake.api_url, http=http
        )
        router = Router(h.steward, build_commands())
        with caplog.at_level(logging.WARNING):
            running = await start_channels(h.steward, router, [slack])
            await asyncio.sleep(0.5)
        await http.stop()
    assert running == []  # `steward run` stops: no channel could start
    assert len(fake.calls_to("auth.test")) == 1  # never tried again
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.channel_start"]
    assert lines == [
        "the slack channel did not start: Slack refused SLACK_BOT_TOKEN (invalid_auth)"
    ]


@pytest.mark.parametrize(
    ("error", "may_pass"),
    [
        ("HTTP 503", True),
        ("internal_error", True),
        ("invalid_auth", False),
        ("account_inactive", False),
    ],
)
async def test_what_slack_answers_at_start_says_whether_it_may_pass(
    error: str, may_pass: bool
) -> None:
    async with FakeSlack() as fake:
        if error.startswith("HTTP"):
            fake.server_error_next("auth.test", times=5)  # past the client's own retries
        else:
            fake.fail_next("auth.test", error)
        http = HttpServer("127.0.0.1", 0)
        slack = SlackChannel(
            bot_token=fake.bot_token, signing_secret="s", api_url=fake.api_url, http=http
        )
        with pytest.raises(ChannelStartError, match=error) as raised:
            await slack.start(_nowhere)
        await http.stop()
    assert getattr(raised.value, "may_pass", False) is may_pass  # started again if so
    assert not slack.finished.is_set()  # it can be started again


async def _nowhere(message: IncomingMessage) -> None:
    raise AssertionError("nothing comes in before the start")


async def test_steward_run_on_slack_alone_waits_for_slack_and_answers_once_it_is_up(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Slack-only: Slack unreachable at start is no reason to exit; Socket Mode connects once
    Slack is there (the first try after 5 s) and a message is answered."""
    fake_model.reply_text("here")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "STEWARD_", "TELEGRAM_", "SLACK_"))
    } | {
        "STEWARD_DATA_DIR": str(tmp_path / "data"),
        "STEWARD_LOG_LEVEL": "INFO",
        "STEWARD_OWNER": "slack:UOWNER",
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": fake_model.base_url,
        "STEWARD_MODEL_RETRIES": "0",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_APP_TOKEN": "xapp-test",
        "SLACK_API_URL": f"http://127.0.0.1:{port}/api/",
        "STEWARD_HTTP_HOST": "127.0.0.1",
        "STEWARD_HTTP_PORT": str(free_port()),
    }
    log = tmp_path / "steward.log"
    async with steward_process(env, log) as process:
        await until(lambda: "starting in the background" in log.read_text(), "up, Slack not", 60)
        assert process.returncode is None, log.read_text()
        async with FakeSlack(port=port) as fake:
            await fake.wait_socket_connected(timeout=30)
            event = message_event("still there?", user="UOWNER", channel="DOWNER")
            await fake.wait_ack(await fake.send_envelope("events_api", event_body(event)))
            await until(lambda: fake.posted("DOWNER"), "the answer", 30)
            (note,) = await until(lambda: fake.posted("UOWNER"), "the recovery note", 10)
        assert process.returncode is None, log.read_text()
    assert "The slack channel is up now" in note.params["text"]
    assert fake.posted("DOWNER")[0].params["text"] == "here"
    assert "the slack channel is up" in log.read_text()
