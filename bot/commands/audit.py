"""/audit: the last events of the tamper-evident audit log."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from agent.config import Settings
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.people import Chat, User
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
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= 100):
        raise UsageError(_COUNT)
    return int(text)


@audit.sub("[count]", count=_count)
async def audit_command(
    count: int | None, stores: Stores, user: User, chat: Chat, settings: Settings
) -> str:
    if in_group(chat):  # who did what, when: the owner's
        return IN_PRIVATE
    events = await stores.audit.recent(count or 10)
    check = await stores.audit.verify()
    zone = ZoneInfo(user.timezone or settings.timezone)
    lines = [f"Times in {zone.key}."] if events else []
    lines += [f"#{e.id} {_local(e.at, zone)} {e.kind} {e.subject} ({e.actor})" for e in events]
    verdict = (
        f"Chain verified: {check.events} events."
        if check.ok
        else f"Chain BROKEN at event {check.first_broken_id}: {check.problem}."
    )
    for note in (check.before_key_note, check.cut_note) if check.ok else ():
        if note:
            verdict += f" But {note}."
    return "\n".join([*lines, verdict])


def _local(at: str, zone: ZoneInfo) -> str:
    """A stored UTC timestamp in the owner's timezone."""
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return at[:19].replace("T", " ")
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"
