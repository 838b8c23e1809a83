"""/briefing: the morning briefing's time, feeds, topics and destination."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from agent.config import Settings
from agent.scheduler import Recurrence, SchedulerService
from agent.scheduler.when import WhenError, describe_trigger, parse_clock_time
from agent.types import Address, address_from_json
from bot.commands.ids import digits_of_id
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.clock import Clock
from memory.people import Chat, User
from memory.stores import Stores

__all__ = ["destination_running", "group", "parse_destination"]

group = CommandGroup()

USAGE = (
    "/briefing · /briefing at 07:00 · /briefing off · /briefing now · "
    "/briefing feeds add <url> · /briefing feeds list · /briefing feeds remove <id> · "
    "/briefing topics <text> · /briefing to <@channel | -100… | #slack-channel | here> · "
    "/briefing mail on|off"
)
FEED_URL = "Give the feed's http(s) URL: /briefing feeds add https://…/rss"
WHICH_FEED = "Which feed? /briefing feeds remove <id> (ids: /briefing feeds list)"

briefing = group.command(
    "briefing",
    summary="morning briefing: time, feeds, topics, where it goes",
    usage=USAGE,
    example="/briefing at 07:00",
    owner_only=True,
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
    if re.fullmatch(r"[CG][A-Z0-9]{6,20}", target):  # a Slack channel's id ("here", typed there)
        return Address("slack", target)
    raise UsageError(
        f"“{target}” is not a destination: use @channel or -100… (Telegram), #channel (Slack) "
        "or here."
    )


def _feed_url(text: str) -> str:
    parts = urlparse(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in text:
        raise UsageError(FEED_URL)
    return text


def _feed_id(text: str) -> str:
    """The id as typed, without its `#` (digits: "There is no feed #007." quotes it so)."""
    return digits_of_id(text, WHICH_FEED)


def _where(address: Address, here: Address) -> str:
    return "here" if address == here else f"{address.chat_id} on {address.channel}"


def _zone(user: User, settings: Settings) -> ZoneInfo:
    return ZoneInfo(user.timezone or settings.timezone)


@briefing.sub("")
async def show_status(
    user: User,
    chat: Chat,
    address: Address,
    settings: Settings,
    stores: Stores,
    scheduler: SchedulerService,
) -> str:
    if in_group(chat):  # its topics, feeds and destination are the owner's to know
        return IN_PRIVATE
    schedule = await scheduler.briefing(user)
    prefs = await stores.feeds.prefs(user.id)
    feeds = await stores.feeds.list(user.id)
    destination = await scheduler.briefing_destination(user, address)
    lines = [
        f"Briefing: {describe_trigger(schedule.trigger, _zone(user, settings))}"
        if schedule
        else "Briefing: off (/briefing at 07:00)",
        f"Posted: {_where(destination, address)}",
        f"Feeds: {len(feeds)}",
        f"Topics: {prefs.topics or '(none)'}",
        f"Unread mail: {'on' if (await stores.mail.prefs(user.id)).briefing else 'off'}",
    ]
    return "\n".join(lines)


@briefing.sub("at <time...>", problem="At what time? /briefing at 07:00")
async def set_time(
    time: str,
    user: User,
    address: Address,
    settings: Settings,
    clock: Clock,
    scheduler: SchedulerService,
) -> str:
    zone = _zone(user, settings)
    try:
        hour, minute = parse_clock_time(time, clock.now(), zone, hour_alone=True)  # "at 7"
    except WhenError as exc:
        raise UsageError(str(exc)) from None
    schedule = await scheduler.set_briefing(user, Recurrence(hour, minute), here=address)
    assert schedule.destination is not None
    where = _where(address_from_json(schedule.destination), address)
    return (
        f"Your briefing comes every day at {hour:02d}:{minute:02d} ({zone.key}), posted "
        f"{where}. Add feeds with /briefing feeds add <url>."
    )


@briefing.sub("off")
async def turn_off(user: User, scheduler: SchedulerService) -> str:
    if await scheduler.briefing_off(user):
        return "The morning briefing is off."
    return "There is no briefing scheduled."


@briefing.sub("now")
async def brief_now(user: User, address: Address, scheduler: SchedulerService) -> str:
    report = await scheduler.briefing_now(user, here=address)
    if report.status == "sent":
        destination = await scheduler.briefing_destination(user, address)
        return "" if destination == address else f"Briefing posted to {destination}."
    if report.status == "silent":
        return "I had nothing worth sending."
    return f"No briefing: {report.reason}."


@briefing.sub("mail on")
async def mail_on(user: User, settings: Settings, stores: Stores) -> str:
    if not settings.email_imap_url:
        return "E-mail is not set up: set EMAIL_IMAP_URL and EMAIL_PASSWORD first."
    await stores.mail.set_briefing(user.id, True)
    return "Your briefing will include unread mail since the last briefing (quoted as untrusted)."


@briefing.sub("mail off")
async def mail_off(user: User, stores: Stores) -> str:
    await stores.mail.set_briefing(user.id, False)
    return "Your briefing will leave out the mail."


@briefing.sub("mail [ignored...]")
async def mail_usage(user: User) -> str:
    raise UsageError("Say /briefing mail on or /briefing mail off.")


@briefing.sub("feeds")
@briefing.sub("feeds list [ignored...]")
async def feeds_list(user: User, chat: Chat, stores: Stores) -> str:
    if in_group(chat):
        return IN_PRIVATE
    feeds = await stores.feeds.list(user.id)
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


@briefing.sub("feeds add <url...>", problem=FEED_URL, url=_feed_url)
async def feeds_add(url: str, user: User, stores: Stores) -> str:
    feed, added = await stores.feeds.add(user.id, url)
    if not added:
        return f"Already there: #{feed.id} {feed.url}"
    await stores.audit.record("feed.added", actor=f"user:{user.id}", subject=f"feed:{feed.id}")
    return f"Feed #{feed.id} added: {feed.url}"


@briefing.sub("feeds remove <feed_id...>", problem=WHICH_FEED, feed_id=_feed_id)
async def feeds_remove(feed_id: str, user: User, chat: Chat, stores: Stores) -> str:
    removed = await stores.feeds.remove(user.id, int(feed_id))
    if removed is None:
        return f"There is no feed #{feed_id}."
    if in_group(chat):
        return f"Removed feed #{removed.id}."
    return f"Removed feed #{removed.id}: {removed.url}"


@briefing.sub("feeds <verb> [ignored...]")
async def feeds_unknown(verb: str) -> str:
    raise UsageError(f"I don't know /briefing feeds {verb.lower()}.")


@briefing.sub("topics")
async def topics_show(user: User, chat: Chat, stores: Stores) -> str:
    if in_group(chat):
        return IN_PRIVATE
    prefs = await stores.feeds.prefs(user.id)
    return f"Topics: {prefs.topics}" if prefs.topics else "No topics yet."


@briefing.sub("topics off")
async def topics_clear(user: User, stores: Stores) -> str:
    await stores.feeds.set_topics(user.id, "")
    return "Topics cleared."


@briefing.sub("topics <topics...>")
async def topics_set(topics: str, user: User, stores: Stores) -> str:
    try:
        await stores.feeds.set_topics(user.id, topics)
    except ValueError as exc:  # too long
        raise UsageError(str(exc)) from None
    return f"Briefing topics: {topics}"


def destination_running(destination: str, address: Address, channels: Sequence[str]) -> Address:
    """Where the owner said to post the briefing, on a channel that runs here (the console's
    form as the command: R138, it took #nowhere on a Slack not running); UsageError if not."""
    target = parse_destination(destination, address)
    if target != address and target.channel not in channels:
        name = "Telegram" if target.channel == "telegram" else "Slack"
        raise UsageError(
            f"{name} is not running here, so I could not post to {target.chat_id}: set "
            f"{target.channel.upper()}_BOT_TOKEN first, or say /briefing to here."
        )
    return target


@briefing.sub("to <destination...>", problem="Where to? /briefing to @mychannel")
async def set_destination(
    destination: str,
    user: User,
    address: Address,
    stores: Stores,
    scheduler: SchedulerService,
    channels: tuple[str, ...],
) -> str:
    target = destination_running(destination, address, channels)
    await scheduler.set_briefing_destination(user, target, here=address)
    await stores.audit.record("briefing.destination", actor=f"user:{user.id}", subject=str(target))
    note = ""
    if target.channel == "telegram" and target != address:
        note = " Make the bot an admin of that channel so it may post there."
    return f"Briefings will be posted {_where(target, address)}.{note}"
