"""/approve and /deny: the owner's answer to an approval request (typed, or a button press)."""

from __future__ import annotations

from agent.approvals import approval_preview
from bot.commands.registry import CommandContext, CommandGroup, UsageError

__all__ = ["group"]

group = CommandGroup()


async def _pending_list(ctx: CommandContext) -> str:
    pending = await ctx.steward.stores.approvals.pending()
    if not pending:
        return "Nothing is waiting for your approval."
    lines = [
        f"{a.id} — {a.tool}: {approval_preview(a).splitlines()[0][:80]}"
        f" (expires {a.expires_at:%H:%M} UTC)"
        for a in pending
    ]
    return (
        "Waiting for your approval:\n" + "\n".join(lines) + "\n\nReply /approve <id> or /deny <id>."
    )


async def _decide(ctx: CommandContext, approve: bool) -> str:
    parts = ctx.call.args.split()
    if not parts:
        if approve:
            return await _pending_list(ctx)
        raise UsageError("Say which request to deny.")
    always = len(parts) == 2 and parts[1].lower() == "always" and approve
    if len(parts) > 2 or (len(parts) == 2 and not always):
        raise UsageError("Give one approval id" + (" and optionally `always`." if approve else "."))
    return await ctx.steward.decide_approval(
        parts[0],
        identity=ctx.message.sender,
        user=ctx.user,
        approve=approve,
        always=always,
    )


@group.command(
    "approve",
    summary="approve a pending action (no id: list what is pending)",
    usage="/approve [id] [always]",
    example="/approve k3f9",
)
async def approve_command(ctx: CommandContext) -> str:
    return await _decide(ctx, approve=True)


@group.command("deny", summary="deny a pending action", usage="/deny <id>", example="/deny k3f9")
async def deny_command(ctx: CommandContext) -> str:
    return await _decide(ctx, approve=False)
