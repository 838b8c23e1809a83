"""/audit: the last events of the tamper-evident audit log."""

from __future__ import annotations

from bot.commands.registry import CommandGroup, UsageError
from memory.stores import Stores

__all__ = ["group"]

group = CommandGroup()

_COUNT = "The count is a number from 1 to 100."

audit = group.command(
    "audit",
    summary="the latest audit events (and whether the chain verifies)",
    usage="/audit [count]",
    example="/audit 20",
    owner_only=True,
    problem=_COUNT,
)


def _count(text: str) -> int:
    if not (text.isdigit() and 1 <= int(text) <= 100):
        raise UsageError(_COUNT)
    return int(text)


@audit.sub("[count]", count=_count)
async def audit_command(count: int | None, stores: Stores) -> str:
    events = await stores.audit.recent(count or 10)
    check = await stores.audit.verify()
    lines = [
        f"#{e.id} {e.at[:19].replace('T', ' ')} {e.kind} {e.subject} ({e.actor})" for e in events
    ]
    verdict = (
        f"Chain verified: {check.events} events."
        if check.ok
        else f"Chain BROKEN at event {check.first_broken_id}: {check.problem}."
    )
    return "\n".join([*lines, verdict])
