"""/help, /start, /status and /usage."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from agent.sandbox import shell_mode
from agent.types import TurnRequest
from bot.commands.registry import CommandContext, CommandGroup, UsageError

__all__ = ["group"]

group = CommandGroup()


@group.command("help", summary="what I can do", usage="/help [command]", example="/help usage")
async def help_command(ctx: CommandContext) -> str:
    if ctx.call.args:
        command = ctx.commands.get(ctx.call.args.lstrip("/").lower())
        if command is None:
            raise UsageError(f"There is no command /{ctx.call.args.lstrip('/')}.")
        return f"/{command.name} — {command.summary}\n" + command.help_text()
    return ctx.commands.help_text() + "\n\nAnything else you write goes to the agent."


@group.command("start", summary="greeting and how to begin")
async def start_command(ctx: CommandContext) -> str:
    name = ctx.user.display_name if ctx.user.display_name not in ("", "owner") else "there"
    return (
        f"Hi {name}, I'm Steward, your personal agent. Talk to me in plain words; I remember what "
        "matters, keep track of your goals and can start on my own for reminders and briefings.\n\n"
        + ctx.commands.help_text()
    )


def _uptime(delta: timedelta) -> str:
    minutes, seconds = divmod(int(delta.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    return " ".join([*parts, f"{hours}h {minutes}m {seconds}s"])


@group.command("status", summary="uptime, model and what I'm tracking")
async def status_command(ctx: CommandContext) -> str:
    steward = ctx.steward
    db = steward.stores.db
    schedules = await db.scalar("SELECT COUNT(*) FROM schedules WHERE status = 'active'")
    approvals = await db.scalar("SELECT COUNT(*) FROM approvals WHERE status = 'pending'")
    key = "configured" if steward.settings.anthropic_api_key else "missing (ANTHROPIC_API_KEY)"
    return "\n".join(
        [
            f"Up {_uptime(steward.clock.now() - steward.started_at)}",
            f"Model: {steward.runner.model_name} (API key {key})",
            f"Active goals: {await steward.stores.goals.count_active()}",
            f"Active schedules: {schedules}",
            f"Pending approvals: {approvals}",
            f"Messages stored: {await steward.stores.messages.count()}",
            await asyncio.to_thread(shell_mode, steward.settings.shell_unconfined),
            *([await steward.memory.status_line()] if steward.memory else []),
        ]
    )


@group.command(
    "usage",
    summary="tokens and estimated cost today and this week",
    usage="/usage",
    example="/usage",
)
async def usage_command(ctx: CommandContext) -> str:
    if ctx.call.args:
        raise UsageError("/usage takes no arguments.")
    steward = ctx.steward
    probe = TurnRequest(kind="chat", user=ctx.user, chat=ctx.chat, address=None, text="")
    lines: list[str] = []
    for label, since in (
        ("Today", steward.runner.day_start(probe)),
        ("This week", steward.runner.week_start(probe)),
    ):
        lines.append(_usage_block(label, since, await steward.stores.turns.usage_since(since)))
    budget = steward.settings.daily_token_budget
    if budget:
        spent = await steward.stores.turns.tokens_since(steward.runner.day_start(probe))
        lines.append(
            f"Daily budget for self-initiated turns: {spent:,} of {budget:,} tokens"
            + (" — spent, they are paused until tomorrow" if spent >= budget else "")
        )
    return "\n\n".join(lines)


def _usage_block(label: str, since: datetime, rows: list) -> str:  # type: ignore[type-arg]
    if not rows:
        return f"{label}: no turns."
    total_tokens = sum(r.usage.total for r in rows)
    total_cost = sum(r.cost_usd for r in rows)
    head = f"{label}: {total_tokens:,} tokens, ~${total_cost:.4f}"
    body = [
        f"  {r.kind}: {r.turns} turns, in {r.usage.input_tokens:,} / out {r.usage.output_tokens:,}"
        f" / cache read {r.usage.cache_read_input_tokens:,}"
        f" / cache write {r.usage.cache_creation_input_tokens:,}, ~${r.cost_usd:.4f}"
        for r in rows
    ]
    return "\n".join([head, *body])
