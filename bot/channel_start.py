"""Starting the channels: each at once, a failure reported to the owner, and one that could not
reach its platform (the network, a 5xx, a timeout) started again in the background until it is
up; also what a channel may ask of the core besides dispatch (a profile's time zone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent.core import Steward
from agent.delivery import private_address
from bot.channels import Channel
from bot.commands.handlers import CommandDeps
from bot.commands.settings import timezone_set
from bot.router import Router
from memory.labels import TRUSTED
from memory.people import Identity

__all__ = [
    "adopt_profile_timezone",
    "chat_moved",
    "start_channels",
    "stop_starting",
    "wire_channel",
]

log = logging.getLogger(__name__)

_RETRY_FIRST = 5.0  # s: a channel that could not reach its platform is started again after this,
_RETRY_MOST = 300.0  # doubling up to this, for as long as Steward runs


async def start_channels(
    steward: Steward, router: Router, channels: list[Channel]
) -> list[Channel]:
    """Start every channel at once; one that fails is reported (log, audit, and a note to the
    owner on the channels that did start) and the others keep running. One that could not
    reach its platform (a start error with `may_pass`: the network, a 5xx, a timeout) is
    started again in the background (`_RETRY_FIRST` seconds, doubling to `_RETRY_MOST`) for
    as long as Steward runs, and registered once up (the owner is told then too); a refused
    token stays final. Returns the channels running or coming up."""

    async def start(channel: Channel) -> Exception | None:
        wire_channel(steward, channel)
        steward.switchboard.register(channel.name, channel)
        try:
            await channel.start(router.dispatch)
        except Exception as exc:
            steward.switchboard.unregister(channel.name)
            if not _may_pass(exc):
                with contextlib.suppress(Exception):
                    await channel.stop()
            return exc
        return None

    problems = await asyncio.gather(*(start(channel) for channel in channels))
    started = [c for c, problem in zip(channels, problems, strict=True) if problem is None]
    reach = [c.name for c in started]
    running = list(started)
    for channel, problem in zip(channels, problems, strict=True):
        if problem is None:
            continue
        reason = _reason(problem)
        await steward.stores.audit.record("channel.failed", actor="steward", subject=channel.name)
        note = f"The {channel.name} channel did not start: {reason}"
        if not _may_pass(problem):
            log.error("the %s channel did not start: %s", channel.name, reason)
            await _tell_owner(steward, note, reach)
            continue
        log.warning("the %s channel did not start: %s; trying again", channel.name, reason)
        told = await _tell_owner(
            steward, f"{note}. I keep trying and will say when it is up.", reach
        )
        _spawn(_keep_starting(steward, router, channel, reason, told))
        running.append(channel)
    return [c for c in channels if c in running]  # in their order


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _may_pass(exc: BaseException) -> bool:
    """A start that failed for what may pass (the platform unreachable for now), not for what
    only the owner can fix (a refused token, a missing setting)."""
    return bool(getattr(exc, "may_pass", False))


_STARTING: set[asyncio.Task[None]] = set()
"""The channels being started again in the background."""


def _spawn(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` in the background, referenced until done."""
    task = asyncio.create_task(work)
    _STARTING.add(task)
    task.add_done_callback(_STARTING.discard)


async def stop_starting() -> None:
    """Steward stops: no channel is started again (one caught starting is stopped after)."""
    for task in list(_STARTING):
        task.cancel()
    await asyncio.gather(*_STARTING, return_exceptions=True)


async def _keep_starting(
    steward: Steward,
    router: Router,
    channel: Channel,
    problem: str,
    told: str | None,
) -> None:
    """Start `channel` again until it is up, or until it is stopped (Steward shuts down: its
    `finished` is set); a refusal meanwhile ends the trying, logged and told like one at
    start. Once up it is registered, so its queued messages go out (keep_redelivering)."""
    delay = _RETRY_FIRST
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(channel.finished.wait(), delay)
        if channel.finished.is_set():
            return
        try:
            await channel.start(router.dispatch)
        except Exception as exc:
            if not _may_pass(exc):
                log.error("the %s channel did not start: %s", channel.name, _reason(exc))
                with contextlib.suppress(Exception):
                    await channel.stop()
                text = f"The {channel.name} channel will not start: {_reason(exc)}"
                await _tell_owner(steward, text, steward.switchboard.channels, told)
                return
            delay = min(delay * 2, _RETRY_MOST)
            log.warning(
                "the %s channel still cannot start (%s); next try in %.0f s",
                channel.name,
                _reason(exc),
                delay,
            )
            continue
        if channel.finished.is_set():  # stopped while it was starting
            await channel.stop()
            return
        steward.switchboard.register(channel.name, channel)
        log.info("the %s channel is up", channel.name)
        await steward.stores.audit.record(
            "channel.recovered", actor="steward", subject=channel.name
        )
        text = f"The {channel.name} channel is up now (at start: {problem})."
        await _tell_owner(steward, text, steward.switchboard.channels, told)
        return


async def _tell_owner(
    steward: Steward, text: str, reach: list[str], prefer: str | None = None
) -> str | None:
    """A note to the owner in their private chat on one of `reach` (on `prefer` if they have
    one there), out of the model's history; the channel it went to, None if nowhere."""
    owner = await steward.stores.people.owner()
    reach = [name for name in reach if name != "console"]
    found = (
        await private_address(steward.stores, owner.id, reach, prefer) if owner and reach else None
    )
    if found is None:
        return None
    address, chat = found
    await steward.courier.send(address, chat.id, text, in_history=False, label=TRUSTED)
    return address.channel


def wire_channel(steward: Steward, channel: Channel) -> None:
    """What a channel may ask of the core besides dispatch: Slack, its users' profile time
    zones and whether someone is known (a stranger's mention fetches no thread); Telegram, that
    a chat moved to a new id (a group upgraded to a supergroup, R201)."""
    if hasattr(channel, "adopt_timezone"):
        channel.adopt_timezone = partial(adopt_profile_timezone, steward)  # type: ignore[attr-defined]
    if hasattr(channel, "known"):
        channel.known = partial(_known, steward)  # type: ignore[attr-defined]
    if hasattr(channel, "chat_moved"):
        channel.chat_moved = partial(chat_moved, steward, channel.name)  # type: ignore[attr-defined]


async def chat_moved(steward: Steward, channel: str, old: str, new: str) -> None:
    """A channel's word that a chat moved to a new id: its row re-pointed (`People.move_chat`:
    history, memories, reminders and cards follow it), and audited."""
    chat = await steward.stores.people.move_chat(channel, old, new)
    if chat is None:
        return
    await steward.stores.audit.record(
        "chat.moved", actor="steward", subject=f"{channel}:{old}", to=new, chat_id=chat.id
    )


async def _known(steward: Steward, identity: Identity) -> bool:
    """Whether someone is allowed to talk to Steward (a person it knows)."""
    return await steward.stores.people.resolve(identity) is not None


async def adopt_profile_timezone(steward: Steward, identity: Identity, name: str) -> bool:
    """A person's chat profile time zone (Slack's `user.tz`) becomes theirs when they have none,
    set as /timezone sets it (their recurring schedules and goal dates follow it); one they set
    is never overridden, nor the owner's STEWARD_TIMEZONE when it is set. True once settled;
    False for a stranger (asked again once admitted)."""
    user = await steward.stores.people.resolve(identity)
    if user is None:
        return False
    if user.timezone:
        return True
    if user.is_owner and "timezone" in steward.settings.model_fields_set:
        return True  # STEWARD_TIMEZONE is the owner's, set on purpose (their briefings follow it)
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        log.info("%s's profile time zone %r is not one I know; not adopted", identity, name)
        return True
    deps = CommandDeps.of(steward)
    if deps.scheduler is None:
        await steward.stores.people.set_timezone(user.id, zone.key)
    else:
        await timezone_set(  # no chat: the reply is not shown to anyone
            zone,
            user,
            chat=None,
            stores=deps.stores,
            clock=deps.clock,
            scheduler=deps.scheduler,
            goals=deps.goals,
        )
    log.info("%s: time zone %s, from their profile", identity, zone.key)
    return True
