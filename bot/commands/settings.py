"""/timezone and /quiet: when it is for you, and when Steward keeps its own messages back."""

from __future__ import annotations

import zoneinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.config import Settings
from agent.goals import Goals
from agent.scheduler import SchedulerService
from agent.scheduler.when import WhenError, parse_quiet
from bot.commands.privacy import in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.clock import Clock
from memory.people import Chat, User
from memory.schedules import QuietWindow
from memory.stores import Stores

__all__ = ["group"]

group = CommandGroup()

timezone = group.command(
    "timezone",
    summary="show or set your timezone",
    usage="/timezone [Area/City]",
    example="/timezone Europe/Berlin",
)
quiet = group.command(
    "quiet",
    summary="quiet hours: briefings and check-ins wait until they end",
    usage="/quiet [HH:MM-HH:MM | 10pm-7am | off]",
    example="/quiet 22:00-07:00",
)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        pass
    # "utc", "europe/berlin": the same zone, typed in another case
    known = {key.lower(): key for key in zoneinfo.available_timezones()}
    if name.lower() in known:
        return ZoneInfo(known[name.lower()])
    raise UsageError(f"I don't know the timezone “{name}” (use an IANA name).")


def _window(text: str) -> QuietWindow:
    try:
        start, end = parse_quiet(text.lower())
    except WhenError as exc:
        raise UsageError(str(exc)) from None
    return QuietWindow(start, end)


@timezone.sub("")
async def timezone_show(user: User, settings: Settings) -> str:
    current = user.timezone or settings.timezone
    return f"Your timezone: {current}. Change it with /timezone Area/City."


@timezone.sub("<zone...>", zone=_zone)
async def timezone_set(
    zone: ZoneInfo,
    user: User,
    chat: Chat | None,
    stores: Stores,
    clock: Clock,
    scheduler: SchedulerService,
    goals: Goals,
) -> str:
    previous = goals.zone(user)
    await stores.people.set_timezone(user.id, zone.key)
    changed = await stores.people.get(user.id)
    assert changed is not None
    moved = await scheduler.timezone_changed(changed)
    due = await goals.timezone_changed(changed, previous)
    await stores.audit.record("user.timezone", actor=f"user:{changed.id}", subject=zone.key)
    now = clock.now().astimezone(zone)
    note = f" {moved} recurring schedule(s) now follow it." if moved else ""
    if due:
        note += f" {due} goal due date(s) stay on their day there."
    # one-off reminders keep their moment, so their hour here moves: said, not found out (R107)
    fixed = [s for s in await scheduler.pending_for(changed) if not s.recurring]
    if fixed and previous.key != zone.key and in_group(chat):  # never their words in a group
        note += (
            f"\n{len(fixed)} one-off reminder(s) keep their moment: /remind list in our "
            "private chat shows when they now fall."
        )
    elif fixed and previous.key != zone.key:
        lines = "\n".join(f"- {scheduler.describe(s, changed)}" for s in fixed[:5])
        more = f"\n(and {len(fixed) - 5} more: /remind list)" if len(fixed) > 5 else ""
        note += (
            f"\nOne-off reminders keep their moment, so in {zone.key} time they are at:\n"
            f"{lines}{more}\nTo keep one at its old hour, cancel it and set it again."
        )
    return f"Your timezone is now {zone.key} (it is {now:%H:%M} there).{note}"


@quiet.sub("")
async def quiet_show(user: User, scheduler: SchedulerService) -> str:
    window = await scheduler.quiet_hours(user)
    if window is None:
        return "No quiet hours. Set them with /quiet 22:00-07:00."
    return f"Quiet hours: {window.start}-{window.end} (your time)."


@quiet.sub("off")
async def quiet_off(user: User, scheduler: SchedulerService) -> str:
    await scheduler.set_quiet_hours(user, None)
    return "Quiet hours are off."


@quiet.sub("<window...>", window=_window)
async def quiet_set(window: QuietWindow, user: User, scheduler: SchedulerService) -> str:
    await scheduler.set_quiet_hours(user, window)
    return (
        f"Quiet hours {window.start}-{window.end}: briefings and check-ins wait until "
        f"{window.end}; reminders you set are still delivered."
    )
