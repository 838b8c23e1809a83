"""What every kind of job shares: the handler protocol the engine calls, what a run came to, and
`JobRuntime`, the narrow dependencies the handlers use.

The runtime holds no `Steward`: agent turns go through a `Responder`, plain messages through a
`Sender` (the core's `Courier` fits), long-term memory through `Remembering`. So the scheduler
never imports the core, and a test can hand in anything that fits. The responder is attached
after the core is built, because the core's tools need the scheduler first.

(Some 450 lines: where a job posts, and what its turn came to, are every handler's steps.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from agent.outbox import Switchboard
from agent.private_chats import private_address
from agent.scheduler.recurrence import describe_delta
from agent.types import (
    SILENT_REPLY,
    Address,
    ChatKind,
    TurnOutcome,
    TurnRequest,
    address_from_json,
)
from memory.clock import Clock
from memory.labels import TRUSTED, Label
from memory.longterm import Kind, Source
from memory.people import Chat, User
from memory.schedules import BUDGET_SPENT, RunStatus, Schedule, ScheduleRun, ScheduleStore
from memory.stores import Stores
from memory.turns import TurnStatus

if TYPE_CHECKING:
    from agent.ports import Remembering, Responder

__all__ = [
    "LATE_AFTER",
    "NO_MODEL",
    "AgentJob",
    "DueJob",
    "JobHandler",
    "JobResult",
    "JobRuntime",
    "Late",
    "RunReport",
    "Sender",
    "down_grace",
    "job_sources",
    "while_down",
]

NO_MODEL = "no model configured (ANTHROPIC_API_KEY)"
LATE_AFTER = timedelta(minutes=1)  # a reminder or task later than this says so
RETRY_FIRST = timedelta(minutes=5)
RETRY_MOST = timedelta(hours=1)
RETRY_FOR = timedelta(hours=6)
"""A job whose model call failed for a while (overloaded, unreachable) tries again after
RETRY_FIRST, then after as long as it has been failing (so doubling) up to RETRY_MOST, until it
has been failing for RETRY_FOR (R156: a one-off task was lost at the first failure)."""


def retry_wait(failing_for: timedelta) -> timedelta | None:
    """How long a job that has been failing for `failing_for` waits to try again; None: no
    more tries."""
    wait = min(max(RETRY_FIRST, failing_for), RETRY_MOST)
    return wait if failing_for + wait <= RETRY_FOR else None


class Late(timedelta):
    """How late a run is (a `timedelta`: what `run_text` and `DueJob.late` take), and why,
    for a late note to say. `down`: it fell due while Steward was not running, and runs in
    the catch-up at start-up. Otherwise Steward was running and its alarm came late: the
    machine was asleep, or its wall clock was set forward (see `engine.py`)."""

    down: bool

    def __new__(cls, late: timedelta, *, down: bool) -> Late:
        self = super().__new__(cls, late.days, late.seconds, late.microseconds)
        self.down = down
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copied or pickled as it is, `down` too
        return (_late, (timedelta(self.days, self.seconds, self.microseconds), self.down))


def _late(late: timedelta, down: bool) -> Late:
    return Late(late, down=down)


def while_down(late: timedelta) -> bool:
    """Whether a late run fell due while Steward was down (a plain `timedelta`: as before)."""
    return late.down if isinstance(late, Late) else True


def down_grace(handler: object) -> timedelta | None:
    """How late a recurring run missed while Steward was not running may still go, from the
    handler's optional `down_grace` (None, or none set: always, late). With one, the run is
    skipped and goes at its next time when later than that, or when its next time is nearer
    than it is late (R209: after 3 days down, a daily reminder 23 h 51 min late came again
    9 min later, and 40 check-ins made 40 model calls at start-up). A one-off always goes."""
    window = getattr(handler, "down_grace", None)
    return window if isinstance(window, timedelta) else None


@dataclass(frozen=True)
class RunReport:
    """What one due schedule came to: sent, silent, skipped, deferred or failed."""

    schedule_id: int | None
    kind: str
    status: str
    reason: str = ""
    turn_id: int | None = None


@dataclass
class JobResult:
    """What a handler did; the engine records it on the run and in the audit log."""

    status: RunStatus
    reason: str = ""
    turn_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    stop: bool = False  # the schedule ends here (its goal was closed, …)
    again_at: datetime | None = None  # a one-off not run now runs then (not done, not lost)
    retry_at: datetime | None = None  # failed for now: tried again then (see `retry_wait`)
    reply: str = ""  # what was posted, when it was
    label: Label = TRUSTED  # the turn's: what it posted (and is remembered) carries it


@dataclass(frozen=True)
class DueJob:
    """One claimed run: its schedule, whose it is, how late it is, and the text the claim
    recorded (a reminder's exact words, which recovery looks for in the message log)."""

    schedule: Schedule
    user: User
    run_id: int
    late: timedelta
    text: str | None
    due_at: datetime | None = None
    retrying: bool = False
    """A try again after the model call failed at its time (`late` counts from that time)."""
    held_why: str | None = None
    """Why its run was held back and tried again (the disk full, the database locked), in
    Steward's words, for a late note to say so (R198: a task said "asleep")."""


class Sender(Protocol):
    """Stores and delivers one plain message (the core's `Courier`)."""

    async def send(
        self,
        address: Address,
        chat_id: int,
        text: str,
        *,
        label: Label,
        turn_id: int | None = None,
        in_history: bool = True,
        schedule_id: int | None = None,
    ) -> bool: ...


class JobHandler(Protocol):
    """One kind of job. The engine claims a due run, calls `fire` and records what it returns;
    after a crash it asks `sent_message` whether the run had sent before settling it."""

    deferrable: bool
    """Self-initiated: waits out the user's quiet hours."""
    grace: timedelta | None
    """A run later than this is skipped and logged instead of sent (None: always sent). A
    handler may also set a `down_grace`: the same, for a recurring run missed while Steward
    was down (read by the function `down_grace`)."""

    def run_text(self, schedule: Schedule, late: timedelta) -> str | None:
        """What the claim records on the run, for recovery to recognise."""
        ...

    async def fire(self, job: DueJob) -> JobResult: ...

    async def sent_message(self, run: ScheduleRun, chat_id: int) -> int | None:
        """The id of the message a run cut short by a crash had already sent, if any."""
        ...

    async def settle_sent(self, run: ScheduleRun, schedule: Schedule) -> None:
        """Finish the bookkeeping of a run found sent after a crash."""
        ...

    async def acted(self, run: ScheduleRun, chat_id: int) -> int | None:
        """The turn of a run cut short by a crash after it had asked for a tool, if any: run
        again, it would repeat what already ran unasked."""
        ...


class AgentJob:
    """The defaults of a job that runs an agent turn: it is recognised by that turn's reply."""

    deferrable = False
    grace: timedelta | None = None
    down_grace: timedelta | None = None

    def __init__(self, runtime: JobRuntime) -> None:
        self.runtime = runtime

    def run_text(self, schedule: Schedule, late: timedelta) -> str | None:
        return None

    async def sent_message(self, run: ScheduleRun, chat_id: int) -> int | None:
        return await self.runtime.schedules.turn_message_since(chat_id, run.kind, run.started_at)

    async def settle_sent(self, run: ScheduleRun, schedule: Schedule) -> None:
        return None

    async def acted(self, run: ScheduleRun, chat_id: int) -> int | None:
        return await self.runtime.schedules.run_turn_acted(run, chat_id)


def job_sources(schedule: Schedule) -> tuple[str, ...]:
    """A tainted job's turn names the job, by its kind (R193: a goal's check-in was named
    "task:#1", which no list shows), and what tainted the turn that made it."""
    if not schedule.tainted:
        return ()
    kind = _JOB_NAMES.get(schedule.kind, "task")
    return (f"{kind}:#{schedule.id}", *schedule.label.sources)


_JOB_NAMES = {"reminder": "reminder", "task": "task", "checkin": "check-in"}


class JobRuntime:
    """The handlers' shared dependencies and the steps they have in common: where a job posts,
    running its agent turn, and remembering what a check-in or briefing said."""

    def __init__(
        self,
        *,
        stores: Stores,
        clock: Clock,
        schedules: ScheduleStore,
        sender: Sender,
        memory: Remembering | None,
        timezone: str,
        has_model: bool,
    ) -> None:
        self.stores = stores
        self.clock = clock
        self.schedules = schedules
        self.sender = sender
        self.memory = memory
        self.timezone = timezone
        self.has_model = has_model
        self._responder: Responder | None = None

    def attach(self, responder: Responder) -> None:
        self._responder = responder

    @property
    def responder(self) -> Responder:
        if self._responder is None:
            raise RuntimeError("the scheduler has no responder attached")
        return self._responder

    def zone_for(self, user: User) -> ZoneInfo:
        return ZoneInfo(user.timezone or self.timezone)

    def today(self, user: User) -> datetime:
        return self.clock.now().astimezone(self.zone_for(user))

    def running(self) -> list[str] | None:
        """The channels running now (the courier's switchboard's); None when the sender cannot
        tell (a test's)."""
        outbox = getattr(self.sender, "outbox", None)
        return outbox.channels if isinstance(outbox, Switchboard) else None

    async def destination(self, schedule: Schedule) -> tuple[Address, Chat]:
        """Where a run of `schedule` posts: where it was set, or where the owner is reached now
        (`_owners_elsewhere`)."""
        if schedule.destination is None:
            raise RuntimeError(f"schedule {schedule.id} has nowhere to post")
        address = address_from_json(schedule.destination)
        chat = None
        if schedule.chat_id is not None:
            chat = await self.stores.people.chat_by_id(schedule.chat_id)
        if chat is None:
            chat = await self.stores.people.chat(address.channel, address.chat_id, "channel")
        moved = await self._owners_elsewhere(schedule, address, chat)
        if moved is None:
            return address, chat
        await self.stores.audit.record(
            "schedule.rerouted",
            actor="scheduler",
            subject=f"schedule:{schedule.id}",
            set_in=str(address),
            sent_to=str(moved[0]),
            why=f"channel {address.channel!r} is not running",
        )
        return moved

    async def _owners_elsewhere(
        self, schedule: Schedule, address: Address, chat: Chat
    ) -> tuple[Address, Chat] | None:
        """The owner's private chat on a running channel (not the console if another runs),
        for the owner's own job set in their private chat on a channel not running now (R262:
        a reminder set on the console before the move to Telegram waited for a console that no
        longer runs). None, it posts where it was set: the channel runs (or the sender cannot
        tell), a group or channel (it waits there), another's job or chat, no channel of the
        owner's runs."""
        running = self.running()
        if running is None or address.channel in running or chat.kind != ChatKind.PRIVATE:
            return None
        people = self.stores.people
        owner = await people.owner()
        if owner is None or schedule.user_id != owner.id:
            return None
        identities = await people.identities_of(owner.id)
        owners = address.channel == "console" and any(i.channel == "console" for i in identities)
        owners = owners or any(
            (i.channel, i.platform_user_id) == (address.channel, address.chat_id)
            for i in identities
        )
        if not owners:  # the chat they wrote in (a Slack DM's id is not their user id)
            chats = await people.private_chats(owner.id, address.channel)
            owners = any(c.id == chat.id for c in chats)
        if not owners:
            return None
        reach = [c for c in running if c != "console"] or running
        return await private_address(self.stores, owner.id, reach)

    def _next_budget_day(self) -> datetime:
        """Just after the next midnight of STEWARD_TIMEZONE, where the budget and allowances
        start again: a one-off job skipped for either waits for it (a guest's check-in, and a
        task the owner set, R199, had been dropped silently)."""
        zone = ZoneInfo(self.timezone)
        tomorrow = self.clock.now().astimezone(zone).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0, 5), zone)

    async def agent_turn(
        self,
        request: TurnRequest,
        *,
        footer: str = "",
        retried: DueJob | None = None,
        failed: str = "",
    ) -> JobResult:
        """Run the job's turn through the responder (budget, policy, audit and the chat's place
        in line apply) and say what came of it. A `retried` job tries again when the model
        call failed for a while (`retry_wait`); once it gives up, the owner is told `failed`
        (what did not happen) and why, or nothing when `failed` is empty (a check-in: the next
        one comes)."""
        outcome: TurnOutcome = await self.responder.respond(
            request, footer=footer, hold_failure=retried is not None
        )
        turn_id = outcome.turn_id
        cost = await self.stores.turns.cost_of(turn_id) if turn_id is not None else 0.0
        detail: dict[str, Any] = {"tokens": outcome.usage.total, "cost_usd": round(cost, 6)}
        if outcome.status is TurnStatus.SKIPPED:
            why = {
                "budget": BUDGET_SPENT,
                "allowance": "its person's allowance for today is spent",
            }.get(outcome.skipped_for, "there is no model to run it")
            waits = outcome.skipped_for in ("allowance", "budget")  # not: no model
            again = self._next_budget_day() if waits else None
            return JobResult(RunStatus.SKIPPED, why, detail=detail, again_at=again)
        if outcome.status is TurnStatus.FAILED:
            wait = None
            failing_for, tries = await self._failing(retried) if retried else (timedelta(0), 0)
            if retried is not None and outcome.retryable:
                wait = retry_wait(failing_for)
            if wait is not None:
                again = self.clock.now() + wait
                detail["retry_at"] = again.isoformat()  # the engine knows its try again by it
                reason = f"the model call failed ({outcome.failure}); trying again in " + (
                    f"{round(wait.total_seconds() / 60)} min"
                )
                return JobResult(RunStatus.FAILED, reason, outcome.turn_id, detail, retry_at=again)
            if retried is not None and failed and request.address and request.chat:
                if outcome.retryable and tries:  # nothing was done; it failed, and on
                    text = (
                        f"{failed}: {outcome.failure}. I tried {tries + 1} times over "
                        f"{describe_delta(failing_for)} and gave up."
                    )
                else:  # refused, or failed after an action: the outcome says which
                    text = f"{failed}. {outcome.text}"
                label = request.label.join(outcome.label)  # the turn's: its text may quote it
                await self.sender.send(  # the run's: forgetting what set the task reaches it
                    request.address, request.chat.id, text, label=label, turn_id=outcome.turn_id
                )
            return JobResult(RunStatus.FAILED, "the model call failed", outcome.turn_id, detail)
        if outcome.status is TurnStatus.AWAITING_APPROVAL:
            # nothing was posted yet: not "sent", and no empty check-in or briefing is kept as
            # a memory (R135); the turn posts its answer when the owner decides
            return JobResult(
                RunStatus.WAITING, "waiting for the owner's approval", outcome.turn_id, detail
            )
        if outcome.text.strip() == SILENT_REPLY:
            return JobResult(
                RunStatus.SILENT, "the model chose not to message", outcome.turn_id, detail
            )
        detail["chars"] = len(outcome.text) + len(footer)
        running, channel = self.running(), request.address.channel if request.address else ""
        waits = running is not None and channel and channel not in running  # R262: say so
        return JobResult(
            RunStatus.SENT,
            f"posted; it waits for {channel}, which is not running" if waits else "posted",
            outcome.turn_id,
            detail,
            reply=outcome.text,
            label=outcome.label,
        )

    async def _failing(self, job: DueJob) -> tuple[timedelta, int]:
        """How long this time of the job has been failing, and how many of its runs failed
        before this one: since the first of its runs for the same due time that failed (R157:
        counted across days, a daily task's one failure yesterday meant no try again today)."""
        if not job.retrying or job.due_at is None:
            return timedelta(0), 0
        failed = await self.schedules.last_runs(job.schedule.id, (RunStatus.FAILED.value,), 50)
        same = [r for r in failed if r.due_at == job.due_at]
        return (self.clock.now() - same[0].started_at if same else timedelta(0)), len(same)

    async def remember(
        self,
        request: TurnRequest,
        result: JobResult,
        text: str,
        *,
        kind: Kind,
        source: Source,
        subject: str = "",
        importance: float = 0.4,
    ) -> None:
        """Check-ins and briefings become part of long-term memory (history, not facts)."""
        if self.memory is not None:
            await self.memory.record_event(
                request.user.id,
                text,
                kind=kind,
                source=source,
                label=request.label.join(result.label),
                subject=subject,
                chat_id=request.chat.id if request.chat else None,
                turn_id=result.turn_id,
                importance=importance,
            )
