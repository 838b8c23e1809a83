"""/audit: the last events of the tamper-evident audit log."""

from __future__ import annotations

from bot.commands.registry import CommandContext, CommandGroup, UsageError

__all__ = ["group"]

group = CommandGroup()


@group.command(
    "audit",
    summary="the latest audit events (and whether the chain verifies)",
    usage="/audit [count]",
    example="/audit 20",
    owner_only=True,
)
async def audit_command(ctx: CommandContext) -> str:
    args = ctx.call.args
    if args and not (args.isdigit() and 1 <= int(args) <= 100):
        raise UsageError("The count is a number from 1 to 100.")
    audit = ctx.steward.stores.audit
    events = await audit.recent(int(args) if args else 10)
    check = await audit.verify()
    lines = [
        f"#{e.id} {e.at[:19].replace('T', ' ')} {e.kind} {e.subject} ({e.actor})" for e in events
    ]
    verdict = (
        f"Chain verified: {check.events} events."
        if check.ok
        else f"Chain BROKEN at event {check.first_broken_id}: {check.problem}."
    )
    return "\n".join([*lines, verdict])
