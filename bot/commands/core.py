"""/help, /start, /status and /usage."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from agent.budget_notice import describe_skips
from agent.config import Settings
from agent.sandbox import shell_mode
from agent.types import Address, TurnRequest
from bot.commands.handlers import CommandIndex
from bot.commands.mail import status_line as mail_status_line
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.clock import Clock
from memory.people import Chat, User
from memory.stores import Stores

if TYPE_CHECKING:
    from agent.memory_service import MemoryService
    from agent.turn import TurnRunner

__all__ = ["group"]

group = CommandGroup()

help_command = group.command(
    "help", summary="what I can do", usage="/help [command]", example="/help usage"
)


@help_command.sub("")
async def help_all(commands: CommandIndex) -> str:
    return commands.help_text() + "\n\nAnything else you write goes to the agent."


@help_command.sub("<name...>")
async def help_one(name: str, commands: CommandIndex, address: Address) -> str:
    command = commands.get(name.lstrip("/").lower())
    if command is None:
        raise UsageError(f"There is no command /{name.lstrip('/')}.")
    return f"/{command.name} — {command.summary}\n" + command.help_text(channel=address.channel)


@group.command("start", summary="greeting and how to begin")
async def start_command(user: User, commands: CommandIndex) -> str:
    name = user.display_name if user.display_name not in ("", "owner") else "there"
    return (
        f"Hi {name}, I'm Steward, your personal agent. Talk to me in plain words; I remember what "
        "matters, keep track of your goals and can start on my own for reminders and briefings.\n\n"
        + commands.help_text()
    )


OWNER_ONLY = "The rest (usage, cost, what runs and where the data is) is for the owner."


def _uptime(delta: timedelta) -> str:
    minutes, seconds = divmod(int(delta.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    return " ".join([*parts, f"{hours}h {minutes}m {seconds}s"])


@group.command("status", summary="uptime, model and what I'm tracking")
async def status_command(
    user: User,
    stores: Stores,
    settings: Settings,
    clock: Clock,
    runner: TurnRunner,
    started_at: datetime,
    memory: MemoryService | None = None,
    chat: Chat | None = None,
) -> str:
    if not user.is_owner:  # the counts, paths and mailbox are the owner's deployment
        return f"Up {_uptime(clock.now() - started_at)}\n{OWNER_ONLY}"
    if in_group(chat):  # everyone here would read the owner's paths, counts and mailbox
        return f"Up {_uptime(clock.now() - started_at)}\n{IN_PRIVATE}"
    key = "configured" if settings.anthropic_api_key else "missing (ANTHROPIC_API_KEY)"
    return "\n".join(
        [
            f"Up {_uptime(clock.now() - started_at)}",
            f"Model: {runner.model_name} (API key {key})",
            f"Active goals: {await stores.goals.count_active()}",
            f"Active schedules: {await stores.schedules.count_active()}",
            f"Pending approvals: {await stores.approvals.count_pending()}",
            f"Messages stored: {await stores.messages.count()}",
            f"Data: {_shown(settings.data_dir.absolute())}",
            await asyncio.to_thread(shell_mode, settings.shell_unconfined),
            *([await memory.status_line()] if memory else []),
            *filter(None, [await mail_status_line(settings, stores)]),
        ]
    )


usage_command = group.command(
    "usage",
    summary="tokens and estimated cost today and this week",
    owner_only=True,
    usage="/usage",
    example="/usage",
    problem="/usage takes no arguments.",
)


@usage_command.sub("")
async def usage_report(
    user: User, chat: Chat, stores: Stores, settings: Settings, runner: TurnRunner
) -> str:
    if not user.is_owner:
        return OWNER_ONLY
    if in_group(chat):  # R204: everyone here would read the owner's spending, as for /status
        return IN_PRIVATE
    probe = TurnRequest(kind="chat", user=user, chat=chat, address=None, text="")
    lines: list[str] = []
    for label, since in (
        ("Today", runner.day_start(probe)),
        ("This week", runner.week_start(probe)),
    ):
        lines.append(_usage_block(label, since, await stores.turns.usage_since(since)))
    budget = settings.daily_token_budget
    if budget:
        spent = await runner.budget_spent()
        lines.append(
            f"Daily budget for self-initiated turns: {spent:,} of {budget:,} tokens"
            + (" — spent, they are paused until tomorrow" if spent >= budget else "")
        )
        if skipped := await stores.schedules.budget_skips(runner.budget_day_start()):
            zone = ZoneInfo(user.timezone or settings.timezone)
            lines.append(f"Skipped today for the budget: {describe_skips(skipped, zone)}")
    return "\n\n".join(lines)


def _usage_block(label: str, since: datetime, rows: list) -> str:  # type: ignore[type-arg]
    if not rows:
        return f"{label}: no turns."
    total_tokens = sum(r.usage.total for r in rows)
    total_cost = sum(r.cost_usd for r in rows)
    head = f"{label}: {total_tokens:,} tokens, ~${total_cost:.4f}"
    body = [
        f"  {r.kind}: {r.turns} turn{'' if r.turns == 1 else 's'}, in {r.usage.input_tokens:,}"
        f" / out {r.usage.output_tokens:,}"
        f" / cache read {r.usage.cache_read_input_tokens:,}"
        f" / cache write {r.usage.cache_creation_input_tokens:,}, ~${r.cost_usd:.4f}"
        for r in rows
    ]
    return "\n".join([head, *body])


def _shown(path: Path) -> str:
    """A path as text that can be stored and sent: a byte the file system name holds that is
    not UTF-8 is written as an escape (R141: /status failed on a data folder named so)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
