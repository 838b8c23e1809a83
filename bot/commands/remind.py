"""/remind: reminders in plain words, their list, and cancelling one.

`/remind list` shows PAGE reminders at a time, by when they fall due, and ends with the command
for the next ones (R209: 300 reminders were one 16,921-character answer); `/remind list all`
still shows every one.
"""

from __future__ import annotations

import difflib
import re
from zoneinfo import ZoneInfo

from agent.config import Settings
from agent.errors import TooManySchedules
from agent.scheduler import SchedulerService
from agent.scheduler.when import EXAMPLES, WhenError, aparse_reminder, describe_delta
from agent.types import Address
from bot.commands.channel_text import for_channel
from bot.commands.ids import LeadingIds, as_id, leading_ids
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.clock import Clock
from memory.people import Chat, User

__all__ = ["group"]

group = CommandGroup()

USAGE = (
    "/remind <when> <what>  (when: 45s, 10m, 2h30m, tomorrow 9:00, 2026-12-24 18:00, "
    "every monday 8:00, every day 21:00)\n/remind list [<page> | all]\n/remind cancel <id> [<id> …]"
)
WHICH = "Which one? /remind cancel <id> (the ids are in /remind list)."
PAGE = 30
"""Reminders one `/remind list` answer shows; `/remind list 2` shows the next ones."""
PAGE_HOW = f"/remind list 2 shows reminders {PAGE + 1} to {2 * PAGE}; /remind list all every one."
NONE = "No reminders. Set one with /remind 10m stretch."

remind = group.command(
    "remind",
    summary="reminders: /remind 10m stretch, /remind list, /remind cancel <id>",
    usage=USAGE,
    example="/remind tomorrow 9:00 call mom",
    missing=f"Tell me when and what. Examples: {EXAMPLES}",
)


def _schedule_ids(text: str) -> LeadingIds:
    return leading_ids(text, WHICH)  # "/remind cancel 2 3", "2, 3", "2,3", "2 3 please"


def _typed(text: str, address: Address) -> str:
    """Steward's own words naming /remind, as it is typed on the channel (Slack keeps /remind
    for itself: there it is /steward remind); never applied to a reminder's own words."""
    return for_channel(text, address.channel, ("remind",))


def _page(text: str) -> int:
    """The page of `/remind list 2`: a number from 1."""
    number = as_id(text)
    if number is None or number < 1:
        raise UsageError(f"{text[:20]!r} is not a page number: {PAGE_HOW}")
    return number


# before "list [page]", which would read "all" as a page
@remind.sub("list all")  # as `/goal list all` has it (review 80): every pending one is listed
async def list_all(user: User, chat: Chat, address: Address, scheduler: SchedulerService) -> str:
    if in_group(chat):
        return IN_PRIVATE
    schedules = await scheduler.pending_for(user)
    if not schedules:
        return _typed(NONE, address)
    return "\n".join(scheduler.describe(s, user) for s in schedules)


# "list" and one word only: "/remind list the groceries tomorrow 10:00" is still a reminder
@remind.sub("list [page]", page=lambda text: _page(text))
async def list_reminders(
    page: int | None, user: User, chat: Chat, address: Address, scheduler: SchedulerService
) -> str:
    """PAGE at a time, the soonest first, then how many more and the command for them."""
    if in_group(chat):
        return IN_PRIVATE
    schedules = await scheduler.pending_for(user)
    if not schedules:
        return _typed(NONE, address)
    number = page or 1
    start = (number - 1) * PAGE
    if start >= len(schedules):
        last = -(-len(schedules) // PAGE)
        count = f"{len(schedules)} reminder{'s' if len(schedules) > 1 else ''}"
        return _typed(
            f"You have {count}, {PAGE} to a page, so there is no page {number}: "
            f"/remind list {last} shows the last page.",
            address,
        )
    shown = schedules[start : start + PAGE]
    lines = [scheduler.describe(s, user) for s in shown]
    if start:
        lines.insert(0, f"Reminders {start + 1} to {start + len(shown)} of {len(schedules)}:")
    left = len(schedules) - start - len(shown)
    if left:
        lines.append(
            _typed(
                f"…and {left} more: /remind list {number + 1} shows the next "
                f"{min(left, PAGE)}, /remind list all every one.",
                address,
            )
        )
    return "\n".join(lines)


@remind.sub("cancel <schedule_ids...>", problem=WHICH, schedule_ids=_schedule_ids)
async def cancel_many(
    schedule_ids: LeadingIds,
    user: User,
    chat: Chat,
    address: Address,
    scheduler: SchedulerService,
) -> str:
    """`/remind cancel 2 3` (or `2, 3`, `2,3`) cancels each; it was refused. R231: "1 2
    please" cancels both, and a number after the words ("1 please 2", "1 -2") is named as
    left out: #2 was left pending unsaid."""
    said = [await cancel(i, user, chat, address, scheduler) for i in schedule_ids.ids]
    if left := schedule_ids.left_said(_typed("/remind cancel", address)):
        said.append(left)
    return "\n".join(said)


async def cancel(
    schedule_id: int, user: User, chat: Chat, address: Address, scheduler: SchedulerService
) -> str:
    cancelled = await scheduler.cancel(user, schedule_id)
    if cancelled is None:
        return _typed(f"There is no pending reminder #{schedule_id}. See /remind list.", address)
    if in_group(chat):  # a group hears only the number, not what the reminder said
        return f"Cancelled #{schedule_id}."
    return f"Cancelled #{schedule_id}: {cancelled.payload.get('text', '')}"


@remind.sub("<words...>")
async def add(
    words: str,
    user: User,
    chat: Chat,
    address: Address,
    settings: Settings,
    clock: Clock,
    scheduler: SchedulerService,
) -> str:
    """`words` is the whole of what was typed ("tomorrow 9:00 call mom"): when, then what.
    "remove 3" and "delete 3" (an id alone) cancel, as people say it; "delete old backups
    tomorrow 9:00" is still a reminder."""
    verb, _, rest = words.strip().partition(" ")
    ids = [w for w in re.split(r"[\s,]+", rest.strip()) if w and w.lower() not in ("and", "&")]
    if verb.lower() in ("remove", "delete") and ids and all(as_id(w) is not None for w in ids):
        return await cancel_many(
            _schedule_ids(rest), user, chat, address, scheduler
        )  # "remove 2 3"
    zone = ZoneInfo(user.timezone or settings.timezone)
    now = clock.now()
    try:
        parsed = await aparse_reminder(words, now, zone)
    except WhenError as exc:
        first = words.split()[0].lower() if words.split() else ""
        close = difflib.get_close_matches(first, ["cancel", "list"], n=1, cutoff=0.7)
        if close and first not in ("cancel", "list"):  # "/remind cancle 3": a typo, not a time
            raise UsageError(f"Did you mean /remind {close[0]}?") from None
        raise UsageError(f"{exc}\nExamples: {EXAMPLES}") from None
    try:
        schedule = await scheduler.add_reminder(
            user=user, chat=chat, address=address, parsed=parsed
        )
    except TooManySchedules as exc:
        return str(exc)
    first = f"{parsed.first.astimezone(zone):%a %Y-%m-%d %H:%M}"
    if parsed.recurrence is not None:
        when = f"{parsed.recurrence.describe()}, first on {first}"
    else:
        when = f"{first} (in {describe_delta(parsed.first - now)})"
    cancel = _typed("/remind cancel", address)
    return f"OK, #{schedule.id}: {when} — {parsed.text}. Cancel with {cancel} {schedule.id}."
