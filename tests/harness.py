"""Builds a real Steward core in-process for tests, with a recording chat channel.

Everything but the chat platform is the production code: the composition root's `build_steward`,
the router, the commands, SQLite on disk, the Anthropic SDK against the loopback fake.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakes.anthropic import RecordedRequest, Reply

from agent.config import Settings, load_settings
from agent.core import Steward
from agent.types import Address, ApprovalPrompt, IncomingMessage
from bot.app import build_steward
from bot.commands import build_commands
from bot.commands.access import apply_owner_settings
from bot.recovery import recover_interrupted
from bot.router import Router
from memory.clock import Clock, SystemClock
from memory.labels import Label
from memory.longterm import Memory
from memory.people import Identity
from memory.stores import Stores
from memory.turns import TurnRecord

if TYPE_CHECKING:
    from fakes.anthropic import FakeAnthropic
    from fakes.slack import FakeSlack
    from fakes.telegram import FakeTelegram

    from bot.channels.slack import SlackChannel
    from bot.channels.telegram import TelegramChannel

OWNER = Identity("test", "owner")
OWNER_SLACK = "UOWNER"  # the owner's Slack user in `slack_steward`


_FENCED = re.compile(r'^<untrusted id="(\w+)" source="[^"]*">\n(.*)\n</untrusted id="\1">$', re.S)


def said_last(request: RecordedRequest) -> str:
    """What the user wrote last, without the context block (and without the fence another
    person's message arrives in)."""
    said = request.last_user_text.rsplit("</context>", 1)[-1].strip()
    fenced = _FENCED.match(said)
    return fenced.group(2) if fenced else said


def names(label: Label, part: str) -> bool:
    """Whether a source of `label` mentions `part` ("web:", "person:#", "task:#1")."""
    return any(part in source for source in label.sources)


def echo_reply(request: RecordedRequest) -> Reply:
    """A scripted model that answers "re: <what the user wrote>" (the context block left out;
    another person's message, which arrives fenced, is echoed without its fence)."""
    return Reply.text("re: " + said_last(request))


@dataclass
class RecordingChannel:
    """A chat platform stand-in: records what the core posts."""

    name: str = "test"
    sent: list[tuple[Address, str]] = field(default_factory=list)
    approvals: list[tuple[Address, ApprovalPrompt]] = field(default_factory=list)
    typing: list[Address] = field(default_factory=list)
    marked: list[tuple[Address, str, str]] = field(default_factory=list)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, dispatch: Any) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send_text(self, address: Address, text: str) -> str | None:
        self.sent.append((address, text))
        return str(len(self.sent))

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        self.approvals.append((address, prompt))
        return None

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        self.marked.append((address, platform_message_id, text))

    async def show_typing(self, address: Address) -> None:
        self.typing.append(address)

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [text for address, text in self.sent if chat_id in (None, address.chat_id)]


@dataclass
class Harness:
    steward: Steward
    router: Router
    channel: RecordingChannel
    settings: Settings

    def message(
        self,
        text: str,
        *,
        chat: str = "c1",
        sender: Identity = OWNER,
        platform_id: str | None = None,
    ) -> IncomingMessage:
        return IncomingMessage(
            sender=sender,
            address=Address("test", chat),
            text=text,
            platform_message_id=platform_id,
        )

    async def turns(self) -> list[TurnRecord]:
        """Every turn on record, oldest first."""
        return await self.steward.stores.turns.recent(10_000)

    async def memories(self) -> list[Memory]:
        """Every long-term memory, of every user and superseded ones too, oldest first."""
        assert self.steward.memory is not None
        return await self.steward.memory.store.records.all()

    def edit_database(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Change the database file from outside, as another process would (an attacker with
        the disk, or the state a crash leaves behind), never through the running stores."""
        with closing(sqlite3.connect(self.settings.database_path)) as conn, conn:
            conn.execute(sql, params)

    async def say(self, text: str, **kwargs: Any) -> str:
        """Dispatch one message and return the last reply in its chat."""
        message = self.message(text, **kwargs)
        await self.router.dispatch(message)
        if self.steward.memory is not None:  # upkeep runs after the reply, off the chat's line
            await self.steward.memory.upkeep_settled()
        replies = self.channel.texts(message.address.chat_id)
        return replies[-1] if replies else ""


def make_settings(data_dir: Path, model_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "STEWARD_DATA_DIR": str(data_dir),
        "STEWARD_OWNER": str(OWNER),
        "STEWARD_MODEL_RETRIES": "2",
    }
    if model_url is not None:
        values |= {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": model_url}
    values |= overrides
    return load_settings(**values)


@asynccontextmanager
async def running_steward(
    data_dir: Path, model_url: str | None, *, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[Harness]:
    settings = make_settings(data_dir, model_url, **overrides)
    clock = clock or SystemClock()
    stores = await Stores.open(settings.database_path, clock)
    try:
        await apply_owner_settings(stores, list(settings.owner))
        steward = await build_steward(settings, stores, clock)
        await recover_interrupted(steward)
        channel = RecordingChannel()
        steward.switchboard.register(channel.name, channel)
        try:
            yield Harness(steward, Router(steward, build_commands()), channel, settings)
        finally:
            await steward.aclose()
    finally:
        await stores.close()


@asynccontextmanager
async def slack_steward(
    data_dir: Path,
    model: FakeAnthropic,
    fake: FakeSlack,
    *,
    socket: bool = False,
    env: dict[str, str] | None = None,
    **channel_options: Any,
) -> AsyncIterator[tuple[Harness, SlackChannel, str]]:
    """The core with a Slack channel on the Slack fake (HTTP Events API, or Socket Mode with
    `socket`), `OWNER_SLACK` an owner identity and `env` more settings; yields the harness, the
    channel and the events URL."""
    from bot.channels.slack import SlackChannel  # imported here: most tests never use Slack
    from bot.http import HttpServer

    http = HttpServer("127.0.0.1", 0)
    settings = {"STEWARD_OWNER": f"{OWNER},slack:{OWNER_SLACK}"} | (env or {})
    async with running_steward(data_dir, model.base_url, **settings) as h:
        channel = SlackChannel(
            bot_token=fake.bot_token,
            app_token=fake.app_token if socket else None,
            signing_secret=None if socket else fake.signing_secret,
            api_url=fake.api_url,
            http=http,
            **channel_options,
        )
        h.steward.switchboard.register(channel.name, channel)
        try:
            await channel.start(h.router.dispatch)
            yield h, channel, f"{http.url}/slack/events"
        finally:
            await channel.stop()
            await http.stop()


async def until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:  # noqa: ASYNC109
    """Wait until `check()` is truthy (it polls the fakes' records); return its value. An
    AssertionError names `what` when it never is."""
    try:
        async with asyncio.timeout(timeout):
            while not (found := check()):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited {timeout}s for {what}") from None
    return found


STEWARD_RUN = [sys.executable, "-m", "bot.cli", "run"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_env(
    home: Path, model: FakeAnthropic, tg: FakeTelegram, owner_tg: int, **extra: str
) -> dict[str, str]:
    """The environment of `steward run` on Telegram and the fake model, as a user sets it up
    (none of the caller's own Steward settings leak in); the HTTP server on a free port."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "STEWARD_", "TELEGRAM_", "SLACK_", "CHROMA_"))
    }
    return (
        env
        | {
            "STEWARD_HOME": str(home),
            "STEWARD_DATA_DIR": str(home / "data"),
            "STEWARD_OWNER": f"telegram:{owner_tg}",
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "ANTHROPIC_BASE_URL": model.base_url,
            "STEWARD_MODEL_RETRIES": "0",
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE": tg.base_url,
            "STEWARD_HTTP_HOST": "127.0.0.1",
            "STEWARD_HTTP_PORT": str(free_port()),
        }
        | extra
    )


@asynccontextmanager
async def steward_process(
    env: dict[str, str], log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`steward run` in a subprocess (its output in `log`), stopped with SIGTERM after."""
    with log.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *STEWARD_RUN, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=err, stderr=err
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 20)
                except TimeoutError:
                    process.kill()
                    await process.wait()


@asynccontextmanager
async def telegram_channel(
    h: Harness, tg: FakeTelegram, **options: Any
) -> AsyncIterator[TelegramChannel]:
    """The Telegram channel on the fake, registered with the core and polling (quick polls and
    retries for tests; `options` override them), stopped after."""
    from bot.channels.telegram import TelegramChannel

    settings: dict[str, Any] = {"poll_timeout": 1, "stall_after": 30.0, "backoff": 0.05}
    channel = TelegramChannel(
        token=tg.token,
        api_base=tg.base_url,
        state=h.steward.stores.state,
        **(settings | options),
    )
    h.steward.switchboard.register(channel.name, channel)
    await channel.start(h.router.dispatch)
    try:
        yield channel
    finally:
        await channel.stop()


@asynccontextmanager
async def started_slack(h: Harness, slack: FakeSlack, **options: float) -> AsyncIterator[str]:
    """A Slack channel in HTTP mode, started as `steward run` starts it (bot/channel_start.py:
    the profile time zone hook wired); its events URL. `options`: the channel's own settings."""
    from bot.channel_start import start_channels
    from bot.channels.slack import SlackChannel
    from bot.http import HttpServer

    http = HttpServer("127.0.0.1", 0)
    channel = SlackChannel(
        bot_token=slack.bot_token,
        signing_secret=slack.signing_secret,
        api_url=slack.api_url,
        http=http,
        **options,
    )
    assert await start_channels(h.steward, Router(h.steward, build_commands()), [channel])
    try:
        yield f"{http.url}/slack/events"
    finally:
        await channel.stop()
        await http.stop()
