"""/briefing: the morning briefing's time, feeds, topics and destination."""

from __future__ import annotations

import re
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from agent.scheduler import Recurrence
from agent.scheduler.when import WhenError, describe_trigger, parse_clock_time
from agent.types import Address, address_from_json
from bot.commands.registry import CommandContext, CommandGroup, UsageError
from bot.commands.remind import scheduler_of

__all__ = ["group", "parse_destination"]

group = CommandGroup()

USAGE = (
    "/briefing · /briefing at 07:00 · /briefing off · /briefing now · "
    "/briefing feeds add <url> · /briefing feeds list · /briefing feeds remove <id> · "
    "/briefing topics <text> · /briefing to <@channel | -100… | #slack-channel | here>"
)


def parse_destination(text: str, here: Address) -> Address:
    """Where the briefing goes: here, a Telegram channel (@name or -100… id) or a Slack
    channel (#name)."""
    target = text.strip()
    if target.lower() in ("here", "me", "dm"):
        return here
    if re.fullmatch(r"@[A-Za-z][A-Za-z0-9_]{3,31}", target) or re.fullmatch(r"-100\d{5,}", target):
        return Address("telegram", target)
    if re.fullmatch(r"#[a-z0-9][a-z0-9._-]{0,79}", target):
        return Address("slack", target)
    raise UsageError(
        f"“{target}” is not a destination: use @channel or -100… (Telegram), #channel (Slack) "
        "or here."
    )


def _where(address: Address, here: Address) -> str:
    return "here" if address == here else f"{address.chat_id} on {address.channel}"


@group.command(
    "briefing",
    summary="morning briefing: time, feeds, topics, where it goes",
    usage=USAGE,
    example="/briefing at 07:00",
    owner_only=True,
)
async def briefing_command(ctx: CommandContext) -> str:
    scheduler = scheduler_of(ctx)
    user = ctx.user
    verb, _, rest = ctx.call.args.strip().partition(" ")
    verb, rest = verb.lower(), rest.strip()
    zone = ZoneInfo(user.timezone or ctx.steward.settings.timezone)
    if verb == "":
        return await _status(ctx)
    if verb == "at":
        if not rest:
            raise UsageError("At what time? /briefing at 07:00")
        try:
            hour, minute = parse_clock_time(rest, ctx.steward.clock.now(), zone)
        except WhenError as exc:
            raise UsageError(str(exc)) from None
        schedule = await scheduler.set_briefing(user, Recurrence(hour, minute), here=ctx.address)
        assert schedule.destination is not None
        where = _where(address_from_json(schedule.destination), ctx.address)
        return (
            f"Your briefing comes every day at {hour:02d}:{minute:02d} ({zone.key}), posted "
            f"{where}. Add feeds with /briefing feeds add <url>."
        )
    if verb == "off" and not rest:
        if await scheduler.briefing_off(user):
            return "The morning briefing is off."
        return "There is no briefing scheduled."
    if verb == "now" and not rest:
        report = await scheduler.briefing_now(user, here=ctx.address)
        if report.status == "sent":
            destination = await scheduler.briefing_destination(user, ctx.address)
            return "" if destination == ctx.address else f"Briefing posted to {destination}."
        if report.status == "silent":
            return "I had nothing worth sending."
        return f"No briefing: {report.reason}."
    if verb == "feeds":
        return await _feeds(ctx, rest)
    if verb == "topics":
        if not rest:
            prefs = await scheduler.feeds.prefs(user.id)
            return f"Topics: {prefs.topics}" if prefs.topics else "No topics yet."
        topics = "" if rest.lower() == "off" else rest
        await scheduler.feeds.set_topics(user.id, topics)
        return f"Briefing topics: {topics}" if topics else "Topics cleared."
    if verb == "to":
        if not rest:
            raise UsageError("Where to? /briefing to @mychannel")
        destination = parse_destination(rest, ctx.address)
        await scheduler.set_briefing_destination(user, destination, here=ctx.address)
        await ctx.steward.stores.audit.record(
            "briefing.destination", actor=f"user:{user.id}", subject=str(destination)
        )
        note = ""
        if destination.channel == "telegram" and destination != ctx.address:
            note = " Make the bot an admin of that channel so it may post there."
        return f"Briefings will be posted {_where(destination, ctx.address)}.{note}"
    raise UsageError(f"I don't know /briefing {verb}.")


async def _feeds(ctx: CommandContext, args: str) -> str:
    scheduler = scheduler_of(ctx)
    verb, _, rest = args.partition(" ")
    verb, rest = verb.lower(), rest.strip()
    if verb in ("", "list"):
        feeds = await scheduler.feeds.list(ctx.user.id)
        if not feeds:
            return "No feeds yet. Add one with /briefing feeds add <url>."
        lines = []
        for feed in feeds:
            state = ""
            if feed.last_status == "error":
                state = f" — last fetch failed: {feed.last_error}"
            title = f" ({feed.title})" if feed.title else ""
            lines.append(f"#{feed.id} {feed.url}{title}{state}")
        return "\n".join(lines)
    if verb == "add":
        parts = urlparse(rest)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in rest:
            raise UsageError("Give the feed's http(s) URL: /briefing feeds add https://…/rss")
        feed, added = await scheduler.feeds.add(ctx.user.id, rest)
        if not added:
            return f"Already there: #{feed.id} {feed.url}"
        await ctx.steward.stores.audit.record(
            "feed.added", actor=f"user:{ctx.user.id}", subject=f"feed:{feed.id}"
        )
        return f"Feed #{feed.id} added: {feed.url}"
    if verb == "remove":
        if not rest.lstrip("#").isdigit():
            raise UsageError("Which feed? /briefing feeds remove <id> (ids: /briefing feeds list)")
        removed = await scheduler.feeds.remove(ctx.user.id, int(rest.lstrip("#")))
        if removed is None:
            return f"There is no feed #{rest.lstrip('#')}."
        return f"Removed feed #{removed.id}: {removed.url}"
    raise UsageError(f"I don't know /briefing feeds {verb}.")


async def _status(ctx: CommandContext) -> str:
    scheduler = scheduler_of(ctx)
    user = ctx.user
    zone = ZoneInfo(user.timezone or ctx.steward.settings.timezone)
    schedule = await scheduler.briefing(user)
    prefs = await scheduler.feeds.prefs(user.id)
    feeds = await scheduler.feeds.list(user.id)
    destination = await scheduler.briefing_destination(user, ctx.address)
    lines = [
        f"Briefing: {describe_trigger(schedule.trigger, zone)}"
        if schedule
        else "Briefing: off (/briefing at 07:00)",
        f"Posted: {_where(destination, ctx.address)}",
        f"Feeds: {len(feeds)}",
        f"Topics: {prefs.topics or '(none)'}",
    ]
    return "\n".join(lines)
