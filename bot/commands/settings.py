"""/timezone and /quiet: when it is for you, and when Steward keeps its own messages back."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.scheduler.when import WhenError, parse_quiet
from bot.commands.registry import CommandContext, CommandGroup, UsageError
from bot.commands.remind import scheduler_of
from memory.schedules import QuietWindow

__all__ = ["group"]

group = CommandGroup()


@group.command(
    "timezone",
    summary="show or set your timezone",
    usage="/timezone [Area/City]",
    example="/timezone Europe/Berlin",
)
async def timezone_command(ctx: CommandContext) -> str:
    current = ctx.user.timezone or ctx.steward.settings.timezone
    name = ctx.call.args.strip()
    if not name:
        return f"Your timezone: {current}. Change it with /timezone Area/City."
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"I don't know the timezone “{name}” (use an IANA name).") from None
    people = ctx.steward.stores.people
    await people.set_timezone(ctx.user.id, zone.key)
    user = await people.get(ctx.user.id)
    assert user is not None
    moved = await scheduler_of(ctx).timezone_changed(user)
    await ctx.steward.stores.audit.record(
        "user.timezone", actor=f"user:{user.id}", subject=zone.key
    )
    now = ctx.steward.clock.now().astimezone(zone)
    note = f" {moved} recurring schedule(s) now follow it." if moved else ""
    return f"Your timezone is now {zone.key} (it is {now:%H:%M} there).{note}"


@group.command(
    "quiet",
    summary="quiet hours: briefings and check-ins wait until they end",
    usage="/quiet [HH:MM-HH:MM | off]",
    example="/quiet 22:00-07:00",
)
async def quiet_command(ctx: CommandContext) -> str:
    store = scheduler_of(ctx).store
    args = ctx.call.args.strip().lower()
    if not args:
        window = await store.quiet(ctx.user.id)
        if window is None:
            return "No quiet hours. Set them with /quiet 22:00-07:00."
        return f"Quiet hours: {window.start}-{window.end} (your time)."
    if args == "off":
        await store.set_quiet(ctx.user.id, None)
        return "Quiet hours are off."
    try:
        start, end = parse_quiet(args)
    except WhenError as exc:
        raise UsageError(str(exc)) from None
    await store.set_quiet(ctx.user.id, QuietWindow(start, end))
    return (
        f"Quiet hours {start}-{end}: briefings and check-ins wait until {end}; "
        "reminders you set are still delivered."
    )
