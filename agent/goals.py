"""Goal operations shared by the /goal command and the agent's goal tools, so both keep a goal
and its check-in schedule in step.

(Over 400 lines: each operation, add, note, done, reopen, due, check-ins, is short, and they
stay together so that no path changes a goal without its schedule.)

Goals reach the scheduler only through the `Scheduling` port and long-term memory only through
`Remembering` (`agent/ports.py`), so this module depends on neither service.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.delivery import private_address
from agent.errors import GoalError, GoalExists, GoalTitleError, TooManySchedules
from agent.ports import Remembering, Scheduling
from agent.recall import group_scope
from agent.scheduler.when import Recurrence, aparse_day, describe_trigger, local_at
from agent.types import Address
from memory.clock import Clock, parse_iso
from memory.goals import Goal, GoalNote, GoalStatus, note_memory_text
from memory.labels import TRUSTED, Label
from memory.longterm import Kind, Saved, Source
from memory.people import Chat, User
from memory.stores import Stores
from memory.visible import visible

__all__ = ["CHECKINS_IN_PRIVATE", "GoalError", "Goals", "earlier_note"]

CHECKINS_IN_PRIVATE = "Check-ins share your goal's notes: set them in our private chat."
GUEST_ACTIVE_GOALS = 50
"""Active goals another person may have at once (the owner: no limit), as for reminders."""
SOONEST_CHECKIN = timedelta(hours=3)
"""A due date's check-in closer than this to now is not made: the date was just said."""


class Goals:
    """Progress notes and closings also go into long-term memory (when it runs), so a later
    turn that asks "how is the marathon training going?" finds them."""

    def __init__(
        self,
        stores: Stores,
        scheduler: Scheduling | None,
        timezone: str,
        memory: Remembering | None = None,
        *,
        clock: Clock,
    ) -> None:
        self._stores = stores
        self._scheduler = scheduler
        self._timezone = timezone
        self._memory = memory
        self._clock = clock

    def zone(self, user: User) -> ZoneInfo:
        return ZoneInfo(user.timezone or self._timezone)

    async def get(self, user: User, goal_id: int, *, active: bool = False) -> Goal:
        goal = await self._stores.goals.get(user.id, goal_id)
        if goal is None:
            raise GoalError(f"There is no goal #{goal_id}.")
        if active and goal.status is not GoalStatus.ACTIVE:  # said as a refusal: nothing done
            raise GoalError(
                f"Goal #{goal_id} is already {goal.status.value}, so nothing was changed; "
                "start a new one with /goal add."
            )
        return goal

    async def add(
        self,
        user: User,
        title: str,
        *,
        tainted: bool,
        due: datetime | None = None,
        sources: tuple[str, ...] = (),
        made_in_turn: int | None = None,
    ) -> Goal:
        title = _titled(title)
        if not visible(title):  # nothing, or zero-width marks alone (R121)
            raise GoalTitleError("A goal needs a title.")
        same = _same_title(title)
        actives = await self._stores.goals.active(user.id)
        _within_ceiling(user, len(actives))
        for active in actives:
            if _same_title(active.title) == same:
                # by number only: a goal tool's result never echoes a title (a group reads it)
                raise GoalExists(
                    f"That is goal #{active.id} already: /goal show {active.id} has it, "
                    f"/goal due {active.id} <date> sets its date."
                )
        if not user.is_owner:  # another person's words, whether through a tool or /goal
            tainted, sources = True, (*sources, f"person:#{user.id}")
        goal = await self._stores.goals.add(
            user.id, title, tainted=tainted, due_at=due, sources=sources, made_in_turn=made_in_turn
        )
        await self._stores.audit.record(
            "goal.added", actor=f"user:{user.id}", subject=f"goal:{goal.id}", tainted=tainted
        )
        await self._due_checkin(user, goal, due)
        return goal

    async def closed_alike(self, user: User, goal: Goal) -> list[int]:
        """The closed goals of `user` with `goal`'s title (R248: a goal dropped in March and
        taken up in May started blank, its log and `/goal reopen` unmentioned)."""
        same = _same_title(goal.title)
        return [
            earlier.id
            for earlier in await self._stores.goals.all(user.id)
            if earlier.id != goal.id
            and earlier.status is not GoalStatus.ACTIVE
            and _same_title(earlier.title) == same
        ]

    async def note(
        self,
        user: User,
        goal_id: int,
        text: str,
        *,
        source: Source = Source.OWNER_SAID,
        tainted: bool = False,
        label: Label = TRUSTED,
    ) -> GoalNote:
        goal = await self.get(user, goal_id, active=True)
        if not text.strip():
            raise GoalError("What progress should I note?")
        source, label = _provenance(user, source, label.join(Label.of(tainted)))
        note = await self._stores.goals.add_note(goal.id, text.strip())
        await self._stores.goals.taint(goal.id, label)
        await self._stores.audit.record(
            "goal.progress", actor=f"user:{user.id}", subject=f"goal:{goal.id}", note=note.id
        )
        day = note.created_at.astimezone(self.zone(user)).date()
        saved = await self._remember(
            user,
            goal,
            note_memory_text(goal.title, day, note.note),
            source=source,
            label=label.join(goal.label),
        )
        if saved is not None:  # forgetting or correcting the memory does the same to the note
            # (a repeat of a note's words is one memory: both go when it is forgotten, and a
            # correction rewrites the newest, migration 0019)
            await self._stores.goals.link_note(note.id, saved.memory.id)
        return note

    async def _remember(
        self, user: User, goal: Goal, text: str, *, source: Source, label: Label
    ) -> Saved | None:
        if self._memory is None:
            return None
        return await self._memory.record_event(
            user.id,
            text,
            kind=Kind.GOAL_NOTE,
            source=source,
            label=label,
            subject=f"goal {goal.id}",
        )

    async def next_step(
        self, user: User, goal_id: int, text: str, *, label: Label = TRUSTED
    ) -> Goal:
        goal = await self.get(user, goal_id, active=True)
        if not text.strip():
            raise GoalError("What is the next step?")
        await self._stores.goals.set_next_step(goal.id, text.strip())
        await self._stores.goals.taint(goal.id, label)
        await self._stores.audit.record(
            "goal.next_step", actor=f"user:{user.id}", subject=f"goal:{goal.id}"
        )
        return await self.get(user, goal_id)

    async def close(
        self,
        user: User,
        goal_id: int,
        status: GoalStatus,
        *,
        source: Source = Source.OWNER_SAID,
        tainted: bool = False,
        label: Label = TRUSTED,
    ) -> Goal:
        goal = await self.get(user, goal_id, active=True)
        source, label = _provenance(user, source, label.join(Label.of(tainted)))
        await self._stores.goals.set_status(goal.id, status)
        if self._scheduler is not None:
            await self._scheduler.close_checkin(user, goal.id)
        await self._stores.audit.record(
            f"goal.{status.value}", actor=f"user:{user.id}", subject=f"goal:{goal.id}"
        )
        closed = await self.get(user, goal_id)
        day = parse_iso(closed.updated_at).astimezone(self.zone(user))
        await self._remember(
            user,
            goal,
            f"Goal “{goal.title}” was marked {status.value} on {day:%Y-%m-%d}.",
            source=source,
            label=label.join(goal.label),
        )
        return closed

    async def reopen(self, user: User, goal_id: int) -> Goal:
        """A goal closed by mistake (done instead of note) is active again, with the check-ins
        it had at its close (the same schedule, chat and days), else its due date's."""
        goal = await self.get(user, goal_id)
        if goal.status is GoalStatus.ACTIVE:
            raise GoalError(f"Goal #{goal_id} is not closed.")
        _within_ceiling(user, len(await self._stores.goals.active(user.id)))  # R178
        await self._stores.goals.set_status(goal.id, GoalStatus.ACTIVE)
        restored = None
        if self._scheduler is not None:
            restored = await self._scheduler.restore_checkin(user, goal)
        if restored is None:
            await self._stores.goals.set_cadence(goal.id, None)
        await self._stores.audit.record(
            "goal.reopened", actor=f"user:{user.id}", subject=f"goal:{goal.id}"
        )
        if goal.due_at and restored is None:
            await self._due_checkin(user, goal, parse_iso(goal.due_at))
        day = self._clock.now().astimezone(self.zone(user))
        source, label = _provenance(user, Source.OWNER_SAID, TRUSTED)
        await self._remember(
            user,
            goal,
            f"Goal “{goal.title}” was reopened on {day:%Y-%m-%d}.",
            source=source,
            label=label.join(goal.label),
        )
        return await self.get(user, goal_id)

    async def rename(self, user: User, goal_id: int, title: str, *, label: Label = TRUSTED) -> Goal:
        """A goal's title corrected (a typo, a sharper aim); its notes and dates stay."""
        goal = await self.get(user, goal_id, active=True)
        title = _titled(title)
        if not visible(title):  # nothing, or zero-width marks alone (R121)
            raise GoalTitleError("What should it be called?")
        if not user.is_owner:  # another person's words, as in `add`
            label = label.join(Label.untrusted(f"person:#{user.id}"))
        await self._stores.goals.set_title(goal.id, title)
        await self._stores.goals.taint(goal.id, label)
        await self._stores.audit.record(
            "goal.renamed", actor=f"user:{user.id}", subject=f"goal:{goal.id}"
        )
        return await self.get(user, goal_id)

    async def set_cadence(
        self,
        user: User,
        goal_id: int,
        recurrence: Recurrence | None,
        *,
        chat: Chat | None,
        address: Address | None,
    ) -> Goal:
        """Check-ins `recurrence` (None: none). A check-in carries the goal's notes, so asked
        for in a group (by command or by the model's tool) it is set in the user's private
        chat on that platform, never the group; with no private chat there, refused."""
        goal = await self.get(user, goal_id, active=True)
        if self._scheduler is None:
            raise GoalError("Check-ins need the scheduler, which is not running.")
        if recurrence is not None and (chat is None or address is None):
            raise GoalError("Check-ins need a chat to post in.")
        if recurrence is not None and address is not None and group_scope(chat) is not None:
            private = await private_address(
                self._stores, user.id, [address.channel], address.channel
            )
            if private is None:
                raise GoalError(CHECKINS_IN_PRIVATE)
            address, chat = private
        cadence = recurrence.describe() if recurrence else None
        assert chat is not None or recurrence is None
        try:  # the schedule first: a goal never shows a cadence that no check-in carries out
            await self._scheduler.set_checkin(
                user,
                goal,
                recurrence,
                chat=chat,  # type: ignore[arg-type]
                address=address,  # type: ignore[arg-type]
            )
        except TooManySchedules as exc:
            raise GoalError(str(exc)) from None
        await self._stores.goals.set_cadence(goal.id, cadence)
        if recurrence is None and goal.due_at:  # the due date's own check-in comes back
            await self._due_checkin(user, goal, parse_iso(goal.due_at))
        return await self.get(user, goal_id)

    async def due_by(self, user: User, text: str) -> datetime:
        """A due date in the user's words, the same wherever it is given (chat, web, a tool): a
        day, read from its start ("today" counts), due by its end in the user's zone. WhenError
        says what is wrong."""
        zone = self.zone(user)
        day = await aparse_day(text, self._clock.now(), zone)
        return local_at(day, 23, 59, zone)

    async def timezone_changed(self, user: User, previous: ZoneInfo) -> int:
        """A due date is a day in the user's zone: after /timezone the same day's end in the
        new one, and its check-in (the day before at 9:00) moves with it. How many moved. One
        at a day's end in the new zone and not in the old was moved before (a start cut short
        part-way, run again): it keeps its day. One at a day's end in both (zones 24 hours
        apart, review 85) is read in the old zone, as every due date is the first time. A
        closed goal's moves too, without a check-in (R232: left, it showed the next day, and
        reopened it was due then, at 06:59)."""
        zone = self.zone(user)
        moved = 0
        for goal in await self._stores.goals.all(user.id):
            if not goal.due_at:
                continue
            due_at = parse_iso(goal.due_at)
            if _day_end(due_at, zone) and not _day_end(due_at, previous):
                continue
            day = due_at.astimezone(previous).date()
            due = local_at(day, 23, 59, zone)
            if due != due_at:
                await self._stores.goals.set_due(goal.id, due)
                if goal.status is GoalStatus.ACTIVE:
                    await self._due_checkin(user, goal, due)
                moved += 1
        return moved

    async def set_due(self, user: User, goal_id: int, due: datetime | None) -> Goal:
        goal = await self.get(user, goal_id, active=True)
        await self._stores.goals.set_due(goal.id, due)
        await self._due_checkin(user, goal, due)
        return await self.get(user, goal_id)

    async def _due_checkin(self, user: User, goal: Goal, due: datetime | None) -> None:
        """A due date with no check-in cadence was never followed up: it gets one check-in,
        the day before at 9:00 (the due day's, when that has passed), in the private chat; none
        when that is under three hours away or past the due time (R176: "due tomorrow" said at
        10:00 was nudged at 10:05). A cadence set (or set later) stands instead."""
        if self._scheduler is None:
            return
        existing = await self._scheduler.checkin_for(user, goal.id)
        if existing is not None and existing.trigger.get("type") != "once":
            return  # the cadence's check-ins see the due date
        now = self._clock.now()
        if due is None or due <= now:
            if existing is not None:
                await self._scheduler.cancel(user, existing.id, ("checkin",))
            return
        zone = self.zone(user)
        eve = (due.astimezone(zone) - timedelta(days=1)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        # the day before's 9:00, else the due day's (R178: said at 06:30 for tomorrow, the
        # day before's was under three hours away, and no check-in was made at all)
        at = next(
            (t for t in (eve, eve + timedelta(days=1)) if now + SOONEST_CHECKIN <= t < due), None
        )
        if at is None:
            if existing is not None:
                await self._scheduler.cancel(user, existing.id, ("checkin",))
            return
        people = self._stores.people
        channels = [c.channel for c in await people.private_chats(user.id)]
        channels += [i.channel for i in await people.identities_of(user.id)]
        private = await private_address(self._stores, user.id, list(dict.fromkeys(channels)))
        if private is None:
            return
        address, chat = private
        try:
            await self._scheduler.set_due_checkin(user, goal, at, chat=chat, address=address)
        except TooManySchedules:
            return  # another person at their limit: the due date stands, unwatched

    # -- showing -----------------------------------------------------------------------------

    async def list_text(self, user: User, *, include_closed: bool = False) -> str:
        goals = await (
            self._stores.goals.all(user.id)
            if include_closed
            else self._stores.goals.active(user.id)
        )
        if not goals:
            closed = 0 if include_closed else len(await self._stores.goals.all(user.id))
            if closed:
                return f"No active goals ({closed} closed: /goal list all)."
            return "No goals yet. Start one with /goal add <text>."
        latest = await self._stores.goals.latest_notes(g.id for g in goals)
        zone = self.zone(user)
        return "\n".join(self.line(g, latest.get(g.id), zone) for g in goals)

    def line(self, goal: Goal, last: GoalNote | None, zone: ZoneInfo) -> str:
        parts = [f"#{goal.id} {goal.title}"]
        if goal.status is not GoalStatus.ACTIVE:
            parts.append(f"[{goal.status.value}]")
        if goal.next_step:
            parts.append(f"— next: {goal.next_step}")
        if goal.due_at:
            parts.append(f"(due {parse_iso(goal.due_at).astimezone(zone):%Y-%m-%d})")
        if last is not None:
            parts.append(f"(last progress {last.created_at.astimezone(zone):%Y-%m-%d})")
        return " ".join(parts)

    async def show_text(self, user: User, goal_id: int) -> str:
        goal = await self.get(user, goal_id)
        zone = self.zone(user)
        notes = await self._stores.goals.notes(goal.id, limit=20)
        lines = [f"#{goal.id} {goal.title}", f"Status: {goal.status.value}"]
        lines.append(f"Next step: {goal.next_step or '(none yet: /goal next <id> <step>)'}")
        if goal.due_at:
            due = parse_iso(goal.due_at).astimezone(zone)
            shown = "%a %Y-%m-%d" if (due.hour, due.minute) == (23, 59) else "%a %Y-%m-%d %H:%M"
            lines.append(f"Due: {due:{shown}}")  # a day's end is the day itself
        checkin = None
        if self._scheduler is not None:
            checkin = await self._scheduler.checkin_for(user, goal.id)
        if checkin is not None:
            when = describe_trigger(checkin.trigger, zone)
            lines.append(f"Check-ins: {when}")
        else:
            lines.append("Check-ins: none (/goal every <id> <cadence>)")
        if goal.created_at:
            lines.append(f"Started: {parse_iso(goal.created_at).astimezone(zone):%Y-%m-%d}")
        lines.append("Progress:")
        lines += [f"  {n.created_at.astimezone(zone):%Y-%m-%d} {n.note}" for n in notes] or [
            "  (nothing logged yet: /goal note <id> <progress>)"
        ]
        return "\n".join(lines)


def _provenance(user: User, source: Source, label: Label) -> tuple[Source, Label]:
    """Another person's goal notes and closings are theirs, not the owner's: outside content."""
    if user.is_owner:
        return source, label
    return Source.USER_SAID, label.join(Label.untrusted(f"person:#{user.id}"))


def _within_ceiling(user: User, active: int) -> None:
    """Another person may have GUEST_ACTIVE_GOALS active at once (R177: commands cost no
    tokens, and one guest added 1,000, each add slower, two audit events each)."""
    if not user.is_owner and active >= GUEST_ACTIVE_GOALS:
        raise GoalError(
            f"You have {active} active goals, the most I keep for anyone but my owner: close "
            "one first (/goal done <id> or /goal drop <id>)."
        )


TITLE_CHARS = 200
"""A goal's title rides in every turn's context: a longer one (20,000 characters was taken)
is refused, with where the details belong."""


def _titled(title: str) -> str:
    title = " ".join(title.split())
    if len(title) > TITLE_CHARS:
        raise GoalTitleError(
            f"A goal's title is at most {TITLE_CHARS} characters (this one has {len(title):,}); "
            "give it a short title and put the details in a note (/goal note)."
        )
    return title


def _day_end(moment: datetime, zone: ZoneInfo) -> bool:
    """Whether `moment` is 23:59 in `zone`: where a due date is kept."""
    local = moment.astimezone(zone)
    return (local.hour, local.minute) == (23, 59)


def earlier_note(closed: list[int]) -> str:
    """What an added goal's answer says of closed goals of its title: their log stays theirs
    unless one is reopened (numbers only, as goal tools' results are)."""
    if not closed:
        return ""
    ids = ", ".join(f"#{i}" for i in closed[-3:])
    return (
        f" (closed goal {ids} had this title: /goal reopen {closed[-1]} brings it back with its "
        "log, and this new one can be dropped)"
    )


def _same_title(title: str) -> str:
    """A title as compared for sameness: case, spacing and end punctuation aside."""
    return " ".join(title.casefold().split()).rstrip(".!?")
