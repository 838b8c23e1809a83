"""A new STEWARD_TIMEZONE between starts moves what was computed in the old one.

Recurring schedules store their next run as an instant, and a goal's due date as the end of a
day, both reckoned in the user's zone; for everyone who never set /timezone that zone is the
default. Changed in .env, it would leave "every day at 08:00" firing at 08:00 of the old zone
and due dates off their day. At start-up, before the scheduler fires, the zone the schedules
were computed in is compared with the configured one and, when it differs, the same
reconciliation as /timezone runs for each of those users (closed goals' due dates too, R232).
"""

from __future__ import annotations

import logging
from zoneinfo import ZoneInfo

from agent.goals import Goals
from agent.scheduler.service import SchedulerService

__all__ = ["DEFAULT_ZONE_KEY", "follow_default_timezone"]

log = logging.getLogger(__name__)

DEFAULT_ZONE_KEY = "scheduler.default_timezone"
"""State key: the default zone the stored schedules and due dates were computed in."""


async def follow_default_timezone(scheduler: SchedulerService) -> int:
    """Move the schedules and due dates of users on the default zone when it changed since the
    last start; how many moved. A first start only records the zone."""
    stores, default = scheduler.stores, scheduler.settings.timezone
    remembered = await stores.state.get(DEFAULT_ZONE_KEY)
    if remembered is None or remembered == default:
        if remembered is None:
            await stores.state.set(DEFAULT_ZONE_KEY, default)
        return 0
    previous = ZoneInfo(remembered)
    goals = Goals(stores, scheduler, default, clock=scheduler.clock)
    schedules = due_dates = people = 0
    for user_id in await stores.people.on_default_timezone():
        user = await stores.people.get(user_id)
        if user is None:
            continue
        moved = await scheduler.timezone_changed(user)
        due = await goals.timezone_changed(user, previous)
        schedules, due_dates, people = schedules + moved, due_dates + due, people + 1
    log.info(
        "STEWARD_TIMEZONE is now %s (was %s): %d recurring schedule(s) and %d goal due date(s)"
        " of %d user(s) on the default zone moved to it",
        default,
        remembered,
        schedules,
        due_dates,
        people,
    )
    await stores.state.set(DEFAULT_ZONE_KEY, default)
    return schedules + due_dates
