"""`SchedulerService`: the scheduler as the rest of Steward sees it.

It builds the engine (`engine.py`: alarms, claim → send → finish, recovery) and one handler per
kind of job (`reminders.py`, `tasks.py`, `checkins.py`, `briefing.py`), and is the settings
facade the commands and tools use: reminder and task CRUD (the `Scheduling` port), goal
check-ins, the briefing's time and destination, quiet hours and timezone changes.

It holds no `Steward`: turns go through the `Responder` it is attached to, plain messages
through a `Sender`, memory through `Remembering` (see `jobs.py`).

(Over 400 lines: it is that facade, each method a few lines over the store and the engine,
grouped by what they set; the work is in the modules named above.)
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from agent.errors import TooManySchedules
from agent.scheduler.briefing import BriefingDraft, BriefingJob, BriefingWriter, InterestSource
from agent.scheduler.checkins import CheckinJob
from agent.scheduler.engine import SchedulerEngine
from agent.scheduler.feeds import FeedFetcher
from agent.scheduler.jobs import JobResult, JobRuntime, RunReport, Sender
from agent.scheduler.reminders import ReminderJob
from agent.scheduler.tasks import TaskJob
from agent.scheduler.when import Parsed, Recurrence, describe_trigger
from agent.types import Address, address_from_json, address_to_json
from memory.clock import Clock, iso
from memory.goals import Goal
from memory.people import Chat, User
from memory.schedules import QuietWindow, RunStatus, Schedule
from memory.stores import Stores

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.ports import Remembering, Responder

__all__ = ["REMINDER_KINDS", "SchedulerService"]

log = logging.getLogger(__name__)

REMINDER_KINDS = ("reminder", "task")
PER_PERSON_LIMIT = 50
"""Reminders, tasks and check-ins another person may have waiting (the owner: no limit)."""


class SchedulerService:
    def __init__(
        self,
        *,
        settings: Settings,
        stores: Stores,
        clock: Clock,
        sender: Sender,
        memory: Remembering | None = None,
        fetcher: FeedFetcher | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.clock = clock
        self.store = stores.schedules
        self.feeds = stores.feeds
        self.fetcher = fetcher or FeedFetcher(
            timeout=settings.feed_timeout,
            max_bytes=settings.feed_max_bytes,
            allow_hosts=settings.fetch_allow_hosts,
        )
        self.runtime = JobRuntime(
            stores=stores,
            clock=clock,
            schedules=self.store,
            sender=sender,
            memory=memory,
            timezone=settings.timezone,
            has_model=settings.anthropic_api_key is not None,
        )
        self.briefings = BriefingWriter(self.runtime, self.feeds, self.fetcher)
        self._briefing_job = BriefingJob(
            self.runtime,
            self.briefings,
            self.feeds,
            grace=timedelta(minutes=settings.briefing_grace),
        )
        self.engine = SchedulerEngine(
            self.runtime,
            {
                "reminder": ReminderJob(self.runtime),
                "task": TaskJob(self.runtime),
                "checkin": CheckinJob(self.runtime),
                "briefing": self._briefing_job,
            },
        )

    # -- wiring and the engine ---------------------------------------------------------------

    def attach(self, responder: Responder) -> None:
        """Give the scheduler what runs its agent turns (the core, built after it)."""
        self.runtime.attach(responder)

    def set_interest_source(self, source: InterestSource | None) -> None:
        """What long-term memory says the owner cares about, for ranking briefing items."""
        self.briefings.interests = source

    @property
    def has_model(self) -> bool:
        return self.runtime.has_model

    def zone_for(self, user: User) -> ZoneInfo:
        return self.runtime.zone_for(user)

    async def start(self, *, alarm: bool = True) -> list[RunReport]:
        """Recover, start the alarm clock (tests pass `alarm=False`) and run what is due."""
        return await self.engine.start(alarm=alarm)

    async def stop(self) -> None:
        await self.engine.stop()

    async def run_due(self) -> list[RunReport]:
        return await self.engine.run_due()

    async def check_clock(self) -> bool:
        """After a suspend or a wall-clock step, set the alarm again on the wall clock (a loop
        that wakes anyway calls this: `bot/lifecycle.py`)."""
        return await self.engine.check_clock()

    async def recover(self) -> int:
        return await self.engine.recover()

    async def sync_alarms(self, *, after: datetime | None = None) -> None:
        await self.engine.sync_alarms(after=after)

    async def idle(self) -> None:
        await self.engine.idle()

    # -- reminders and tasks -----------------------------------------------------------------

    async def add_reminder(
        self,
        *,
        user: User,
        chat: Chat,
        address: Address,
        parsed: Parsed,
        kind: str = "reminder",
        tainted: bool = False,
        sources: tuple[str, ...] = (),
        made_in_turn: int | None = None,
    ) -> Schedule:
        """A reminder (its text is sent as it is) or a task (its text is an instruction the
        agent carries out at that time); `made_in_turn`: the turn whose tool call asked."""
        assert kind in REMINDER_KINDS
        return await self._add(
            made_in_turn=made_in_turn,
            user=user,
            kind=kind,
            chat_id=chat.id,
            destination=_posted_in(address, chat),
            trigger=parsed.trigger(),
            first=parsed.first,
            payload={"text": parsed.text},
            tainted=tainted,
            sources=sources,
        )

    async def _add(
        self,
        *,
        user: User,
        kind: str,
        chat_id: int,
        destination: Address,
        trigger: dict[str, Any],
        first: datetime,
        payload: dict[str, Any],
        tainted: bool,
        sources: tuple[str, ...] = (),
        replaces: Schedule | None = None,
        made_in_turn: int | None = None,
    ) -> Schedule:
        """Add a schedule; `replaces` is cancelled once the new one is in (a refusal at the
        limit keeps it)."""
        if not user.is_owner:  # another person's words, whether through a tool or /remind
            tainted, sources = True, (*sources, f"person:#{user.id}")
            waiting = await self.store.count_active(user.id) - (replaces is not None)
            if waiting >= PER_PERSON_LIMIT:  # a flood of theirs would hold up the owner's
                raise TooManySchedules(
                    f"You have {waiting} reminders and tasks waiting, as many as I keep for "
                    "one person: cancel some first (/remind list)."
                )
        schedule = await self.store.add(
            user_id=user.id,
            chat_id=chat_id,
            kind=kind,
            trigger=trigger,
            payload=payload,
            next_run_at=first,
            destination=address_to_json(destination),
            tainted=tainted,
            sources=sources,
            made_in_turn=made_in_turn,
        )
        if replaces is not None:
            await self.store.cancel(replaces.id)
        await self.stores.audit.record(
            "schedule.created",
            actor=f"user:{user.id}",
            subject=f"schedule:{schedule.id}",
            job=kind,
            when=describe_trigger(trigger, self.zone_for(user)),
            next_run_at=iso(first),
            tainted=tainted,
        )
        await self.sync_alarms()
        return schedule

    async def cancel(
        self, user: User, schedule_id: int, kinds: tuple[str, ...] = REMINDER_KINDS
    ) -> Schedule | None:
        schedule = await self.store.get(schedule_id)
        if schedule is None or schedule.user_id != user.id or schedule.kind not in kinds:
            return None
        if not await self.store.cancel(schedule_id):
            return None
        await self.stores.audit.record(
            "schedule.cancelled",
            actor=f"user:{user.id}",
            subject=f"schedule:{schedule_id}",
            job=schedule.kind,
        )
        await self.sync_alarms()
        return schedule

    async def pending_for(
        self, user: User, kinds: tuple[str, ...] = REMINDER_KINDS
    ) -> list[Schedule]:
        return await self.store.for_user(user.id, kinds, statuses=("active", "firing"))

    def describe(self, schedule: Schedule, user: User) -> str:
        """One line: "#3 every Monday at 08:00 — weekly review (next Mon 2026-03-16 08:00)"."""
        zone = self.zone_for(user)
        when = describe_trigger(schedule.trigger, zone)
        text = schedule.payload.get("text", "")
        line = f"#{schedule.id} {when} — {text}" if text else f"#{schedule.id} {when}"
        if schedule.kind == "task":
            line += " [task]"
        if schedule.recurring and schedule.next_run_at:
            line += f" (next {schedule.next_run_at.astimezone(zone):%a %Y-%m-%d %H:%M})"
        elif schedule.next_run_at and schedule.trigger.get("type") == "once":
            asked = datetime.fromisoformat(schedule.trigger["at"])
            if abs(schedule.next_run_at - asked) >= timedelta(minutes=1):  # held back (quiet
                # hours, a guest's spent allowance): the time it will come, not the one asked
                line += f" (moved to {schedule.next_run_at.astimezone(zone):%a %Y-%m-%d %H:%M})"
        return line

    # -- the user's time ---------------------------------------------------------------------

    async def timezone_changed(self, user: User) -> int:
        """Recurring schedules follow the user's new timezone; one-shot times stay absolute.
        One already due is left to fire (after a restart: "late by …"); its next run is then
        reckoned in the new zone."""
        zone = self.zone_for(user)
        now = self.clock.now()
        moved = 0
        kinds = ("reminder", "task", "checkin", "briefing")
        for schedule in await self.store.for_user(user.id, kinds):
            due = schedule.next_run_at is not None and schedule.next_run_at <= now
            if schedule.recurring and not due:
                recurrence = Recurrence.from_trigger(schedule.trigger)
                upcoming = recurrence.next_after(now, zone)
                last = await self.store.last_run(schedule.id, ("sent", "silent", "skipped"))
                if last is not None and _same_day(last.started_at, upcoming, zone):
                    # flown west after today's ran: today's 8:00 there is not another today
                    # (R176: "every day 8:00 pills" came at 8:00 Lisbon and 8:00 New York)
                    upcoming = recurrence.next_after(upcoming, zone)
                await self.store.update(schedule.id, next_run_at=upcoming)
                moved += 1
        await self.sync_alarms()
        return moved

    async def quiet_hours(self, user: User) -> QuietWindow | None:
        return await self.store.quiet(user.id)

    async def set_quiet_hours(self, user: User, window: QuietWindow | None) -> None:
        """Briefings and check-ins wait until the window ends (None: no quiet hours)."""
        await self.store.set_quiet(user.id, window)

    # -- goal check-ins ----------------------------------------------------------------------

    async def set_checkin(
        self,
        user: User,
        goal: Goal,
        recurrence: Recurrence | None,
        *,
        chat: Chat,
        address: Address,
    ) -> Schedule | None:
        """Check in on a goal at this cadence (None stops the check-ins)."""
        existing = await self.store.find(user.id, "checkin", goal_id=goal.id)
        if recurrence is None:
            if existing is not None:
                await self.store.cancel(existing.id)
            await self.sync_alarms()
            return None
        return await self._add(
            user=user,
            kind="checkin",
            chat_id=chat.id,
            destination=_posted_in(address, chat),
            trigger=recurrence.to_trigger(),
            first=recurrence.next_after(self.clock.now(), self.zone_for(user)),
            payload={"goal_id": goal.id},
            tainted=goal.tainted,
            replaces=existing,
        )

    async def close_checkin(self, user: User, goal_id: int) -> None:
        """A goal closed: its check-ins stop, marked as stopped by the close, the only ones a
        reopening may bring back (not those a revocation or an unlinking stopped, R111)."""
        checkin = await self.checkin_for(user, goal_id)
        if checkin is None:
            return
        await self.store.update_if_active(
            checkin.id, payload={**checkin.payload, "closed_with_goal": True}
        )
        await self.cancel(user, checkin.id, ("checkin",))

    async def restore_checkin(self, user: User, goal: Goal) -> Schedule | None:
        """The check-ins a goal had when it was closed, set going again for a goal reopened:
        the very trigger (its start day, so every other week stays on its weeks), chat and
        place. Read back from its description before, a cadence that did not parse back
        ("every weekend day") was lost, and a fortnightly one moved to the reopening day
        (R107). None when the goal had none at its close."""
        if goal.cadence is None:
            return None
        cancelled = await self.store.for_user(user.id, ("checkin",), statuses=("cancelled",))
        closed = [
            schedule
            for schedule in cancelled
            if schedule.payload.get("goal_id") == goal.id
            and schedule.payload.get("closed_with_goal") is True
            and schedule.recurring
            and schedule.chat_id is not None
            and schedule.destination is not None
            and Recurrence.from_trigger(schedule.trigger).describe() == goal.cadence
        ]
        if not closed:
            return None
        last = max(closed, key=lambda schedule: schedule.id)
        recurrence = Recurrence.from_trigger(last.trigger)
        assert last.chat_id is not None and last.destination is not None
        if not await self._still_theirs(user, last.chat_id):
            return None  # the account it went to was unlinked since: not there (R111)
        return await self._add(
            user=user,
            kind="checkin",
            chat_id=last.chat_id,
            destination=address_from_json(last.destination),
            trigger=last.trigger,
            first=recurrence.next_after(self.clock.now(), self.zone_for(user)),
            payload={"goal_id": goal.id},
            tainted=goal.tainted,
            replaces=await self.store.find(user.id, "checkin", goal_id=goal.id),
        )

    async def _still_theirs(self, user: User, chat_id: int) -> bool:
        """Whether a private chat is still this user's: on Telegram its id is an identity of
        theirs; elsewhere they still have an identity on that channel (as `links.unlink`
        decides which private chats go with an account taken away)."""
        chat = await self.stores.people.chat_by_id(chat_id)
        if chat is None or chat.kind != "private":
            return False
        identities = await self.stores.people.identities_of(user.id)
        mine = [i for i in identities if i.channel == chat.channel]
        if chat.channel == "telegram":
            return any(i.platform_user_id == chat.platform_chat_id for i in mine)
        return bool(mine)

    async def set_due_checkin(
        self, user: User, goal: Goal, at: datetime, *, chat: Chat, address: Address
    ) -> Schedule:
        """One check-in at `at` for a goal with a due date and no cadence (replacing the
        one set for an earlier date)."""
        existing = await self.store.find(user.id, "checkin", goal_id=goal.id)
        return await self._add(
            user=user,
            kind="checkin",
            chat_id=chat.id,
            destination=_posted_in(address, chat),
            trigger={"type": "once", "at": at.isoformat()},
            first=at,
            payload={"goal_id": goal.id},
            tainted=goal.tainted,
            replaces=existing,
        )

    async def checkin_for(self, user: User, goal_id: int) -> Schedule | None:
        return await self.store.find(user.id, "checkin", goal_id=goal_id)

    # -- briefing ----------------------------------------------------------------------------

    async def briefing(self, user: User) -> Schedule | None:
        return await self.store.find(user.id, "briefing")

    async def briefing_destination(self, user: User, here: Address) -> Address:
        prefs = await self.feeds.prefs(user.id)
        return address_from_json(prefs.destination) if prefs.destination else here

    async def set_briefing(self, user: User, recurrence: Recurrence, *, here: Address) -> Schedule:
        destination = await self.briefing_destination(user, here)
        chat = await self._chat_for(destination, here)
        return await self._add(
            user=user,
            kind="briefing",
            chat_id=chat.id,
            destination=_posted_in(destination, chat),
            trigger=recurrence.to_trigger(),
            first=recurrence.next_after(self.clock.now(), self.zone_for(user)),
            payload={},
            tainted=False,
            replaces=await self.briefing(user),
        )

    async def briefing_off(self, user: User) -> bool:
        existing = await self.briefing(user)
        if existing is None:
            return False
        return await self.cancel(user, existing.id, ("briefing",)) is not None

    async def set_briefing_destination(
        self, user: User, destination: Address, *, here: Address
    ) -> None:
        await self.feeds.set_destination(user.id, address_to_json(destination))
        existing = await self.briefing(user)
        if existing is not None:
            chat = await self._chat_for(destination, here)
            await self.store.update(
                existing.id,
                destination=address_to_json(_posted_in(destination, chat)),
                chat_id=chat.id,
            )

    async def _chat_for(self, destination: Address, here: Address) -> Chat:
        kind = "private" if destination == here else "channel"
        return await self.stores.people.chat(destination.channel, destination.chat_id, kind)

    async def briefing_now(self, user: User, *, here: Address) -> RunReport:
        """Write and post a briefing now (`/briefing now`), outside the schedule."""
        destination = await self.briefing_destination(user, here)
        chat = await self._chat_for(destination, here)
        try:
            result = await self._briefing_job.brief(user, chat, destination, run_id=None)
        except Exception as exc:
            log.exception("briefing failed")
            result = JobResult(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        await self.stores.audit.record(
            "schedule.run",
            actor=f"user:{user.id}",
            subject="briefing:now",
            job="briefing",
            outcome=result.status.value,
            reason="asked for with /briefing now; " + result.reason,
            turn_id=result.turn_id,
            **result.detail,
        )
        return RunReport(None, "briefing", result.status.value, result.reason, result.turn_id)

    async def draft_briefing(self, user: User) -> BriefingDraft:
        return await self.briefings.draft(user)


def _posted_in(address: Address, chat: Chat) -> Address:
    """Where a schedule posts: in a private chat, at the top of it, not under the message
    that set it (R140: a Slack DM's reminder came days later as a reply deep in a thread,
    seen only as "1 reply"); in a group, in the thread it was asked in."""
    if chat.kind == "private" and address.thread_id is not None:
        return replace(address, thread_id=None)
    return address


def _same_day(ran: datetime, upcoming: datetime, zone: ZoneInfo) -> bool:
    """Whether a run and an upcoming occurrence fall on one local day in `zone` (a recurrence
    runs at most once a day)."""
    return ran.astimezone(zone).date() == upcoming.astimezone(zone).date()
