"""The composition root: the only place that knows every concrete class.

`run()` opens the state, builds the core, starts the channels (the console when no chat token is
configured), tells users about work a crash interrupted, and runs until a signal or until every
channel has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from datetime import timedelta
from typing import TextIO

from agent.approvals import ApprovalService
from agent.config import Settings
from agent.context import ContextBuilder, GoalsSource
from agent.core import Steward
from agent.delivery import Courier
from agent.model import AnthropicModel, warm_up
from agent.outbox import Switchboard
from agent.policy import PolicyEngine, load_policy
from agent.sandbox import Sandbox
from agent.tools import ToolDeps, default_registry
from agent.turn import TurnRunner
from agent.types import Address
from bot.channels import Channel
from bot.channels.console import CONSOLE_IDENTITY, ConsoleChannel
from bot.commands import build_commands
from bot.router import Router
from memory.clock import Clock, SystemClock
from memory.messages import InStatus
from memory.stores import Stores

__all__ = ["build_steward", "run"]

log = logging.getLogger(__name__)


async def build_steward(settings: Settings, stores: Stores, clock: Clock) -> Steward:
    tools = default_registry()
    model = None
    if settings.anthropic_api_key is not None:
        model = AnthropicModel(
            api_key=settings.anthropic_api_key.get_secret_value(),
            model=settings.model,
            base_url=settings.anthropic_base_url,
            max_tokens=settings.max_tokens,
            max_retries=settings.model_retries,
            timeout=settings.model_timeout,
        )
    context = ContextBuilder(
        stores,
        clock,
        default_timezone=settings.timezone,
        history_tokens=settings.history_tokens,
        sources=[GoalsSource(stores)],
    )
    outbox = Switchboard()
    sandbox = Sandbox(
        workspace=settings.workspace,
        shell_timeout=settings.shell_timeout,
        output_limit=settings.tool_output_limit,
        fetch_allow_hosts=settings.fetch_allow_hosts,
        fetch_max_bytes=settings.fetch_max_bytes,
        fetch_timeout=settings.fetch_timeout,
    )
    deps = ToolDeps(
        stores=stores, clock=clock, timezone=settings.timezone, outbox=outbox, sandbox=sandbox
    )
    policy = PolicyEngine(load_policy(settings.policy_path), stores.people, settings.policy_path)
    approvals = ApprovalService(
        stores,
        tools,
        expiry=timedelta(minutes=settings.approval_minutes),
        approvers=frozenset(settings.approvers),
        per_minute=settings.approvals_per_minute,
    )
    runner = TurnRunner(
        deps=deps,
        model=model,
        tools=tools,
        policy=policy,
        context=context,
        max_steps=settings.max_steps,
        daily_token_budget=settings.daily_token_budget,
        approvals=approvals,
    )
    return Steward(
        settings=settings,
        stores=stores,
        clock=clock,
        runner=runner,
        courier=Courier(stores, outbox),
        tools=tools,
        started_at=clock.now(),
        approvals=approvals,
        policy=policy,
    )


def build_channels(
    settings: Settings, stdin: TextIO | None, stdout: TextIO | None
) -> list[Channel]:
    channels: list[Channel] = []
    if settings.telegram_bot_token or settings.slack_bot_token:
        log.warning("Telegram and Slack channels are not part of this build yet; using the console")
    if not channels:
        channels.append(ConsoleChannel(stdin, stdout))
    return channels


async def recover_interrupted(steward: Steward) -> list[tuple[Address, int, str]]:
    """Mark what a crash cut short; returns the notes to send once channels are up."""
    stores = steward.stores
    for approval in await stores.approvals.fail_interrupted():
        await stores.audit.record(
            "approval.interrupted", actor="steward", subject=approval.id, tool=approval.tool
        )
    for turn in await stores.turns.interrupt_running():
        await stores.audit.record(
            "turn.interrupted", actor="steward", subject=f"turn:{turn.id}", kind=turn.kind
        )
    notes: list[tuple[Address, int, str]] = []
    for message in await stores.messages.unanswered():
        await stores.messages.set_status(message.id, InStatus.INTERRUPTED)
        chat = await stores.people.chat_by_id(message.chat_id)
        if chat is None:
            continue
        quoted = message.text if len(message.text) <= 80 else message.text[:77] + "..."
        notes.append(
            (
                Address(chat.channel, chat.platform_chat_id, message.thread_id),
                chat.id,
                f"I was restarted before I could finish answering “{quoted}”. "
                "Please send it again if it still matters.",
            )
        )
    return notes


async def run(
    settings: Settings,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    clock: Clock | None = None,
) -> int:
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stores = await Stores.open(settings.database_path, clock)
    warm = asyncio.create_task(warm_up()) if settings.anthropic_api_key else None
    try:
        await stores.people.ensure_owner([CONSOLE_IDENTITY, *settings.owner])
        steward = await build_steward(settings, stores, clock)
        notes = await recover_interrupted(steward)
        channels = build_channels(settings, stdin, stdout)
        router = Router(steward, build_commands())
        for channel in channels:
            steward.switchboard.register(channel.name, channel)
            await channel.start(router.dispatch)
        log.info("Steward is up: %s", ", ".join(c.name for c in channels))
        await steward.courier.redeliver()
        for address, chat_id, text in notes:
            await steward.courier.send(address, chat_id, text)
        sweeper = asyncio.create_task(_expire_approvals(steward))
        await _until_done(channels)
        sweeper.cancel()
        for channel in channels:
            await channel.stop()
        await steward.aclose()
        return 0
    finally:
        if warm is not None:
            with contextlib.suppress(Exception):
                await warm
        await stores.close()


async def _until_done(channels: list[Channel]) -> None:
    """Wait for SIGINT/SIGTERM, or for every channel to finish on its own."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    waiters = [asyncio.create_task(stop.wait())]
    waiters.append(asyncio.create_task(_all_finished(channels)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def _expire_approvals(steward: Steward, every: float = 20.0) -> None:
    """Expire approvals nobody decided in time, so their turns are told and end."""
    while True:
        try:
            await steward.expire_approvals()
        except Exception:
            log.exception("expiring approvals failed")
        await asyncio.sleep(every)


async def _all_finished(channels: list[Channel]) -> None:
    await asyncio.gather(*(channel.finished.wait() for channel in channels))
