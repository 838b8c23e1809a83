"""The scheduler's engine: Steward starting on its own, for whatever kinds of job it is given.

SQLite (`memory.schedules`) is the source of truth. APScheduler's `AsyncIOScheduler` is only the
alarm clock: it holds one date job, at the earliest `next_run_at` stored, and that alarm calls
`run_due()`, which is also what tests call with a frozen clock.

Firing a job, in order: claim it (the schedule becomes `firing` and a run row is opened, in one
transaction) → send (the kind's `JobHandler`: a reminder through the courier; agent work through
the `Responder`, so budget, policy and audit apply) → finish (the run records what was sent and
the schedule gets its next time, or `done`, in one transaction). A crash after sending leaves
the run `firing`; at the next start-up `recover()` asks the handler whether the message log
shows it sent, and only sends again, marked late, when nothing is there. A message stored but
not marked sent is the courier's to deliver: one whose send was under way at the crash goes
again once, saying it may be a repeat (agent/delivery.py `RESENT`), as the platform may have it.

Misfires, as a person would want them: a reminder that fell due while Steward was down is sent
at start-up with "late by …"; a job later than its handler's grace window (the briefing; under
a minute late is on time) is skipped and logged; a recurring job runs once for everything it
missed (its next time is computed from now). A recurring reminder or check-in missed while
Steward was down is skipped and logged instead when its next time is nearer than it is late,
or (a check-in) it is over an hour late: its handler's `down_grace` (R209: 3 days down, and a
daily reminder came twice in 9 minutes, 40 check-ins made 40 model calls at start-up). Quiet
hours hold back deferrable jobs (briefings, check-ins) until they end; reminders and tasks the
user set are delivered anyway.

The alarm waits on an asyncio timer, which runs on the monotonic clock: on Linux that clock does
not count a suspend, and a wall clock set forward (NTP, the owner) does not move it. So after
the machine slept, or its clock was stepped, the alarm would go off as much later as the clock
moved (a reminder due during a 10 h sleep came an hour after waking; a 07:00 briefing on a
laptop asleep from 22:00 to 06:30 came at 15:30, and was skipped). `check_clock()` notices the
two clocks drift apart (one subtraction; `bot/lifecycle.py` runs it in a loop that wakes
anyway) and sets the alarm again on the wall clock; `sync_alarms()` looks too, and whichever
sees a clock set back first moves waits said as time ("in 5 minutes") back with it (R101,
R224), and a repeating job's next run left far ahead by a clock that ran fast to its next time
from now, as the start-up does (R240). A run late for that says the machine slept or its clock
changed; only the catch-up at start-up says Steward was not running.

A run whose write is refused (the disk full, the database locked by another program) is held
and tried again in RETRY_AFTER, not left for a restart; one refused after its claim is first
settled as a restart's is (sent, or due again); a reminder held so says why it is late (R198).

(Some 800 lines: one job, the alarm and the runs it sets off, kept together because their
invariants, claim before send and re-arm after every change, cross between them.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.scheduler.jobs import (
    LATE_AFTER,
    DueJob,
    JobHandler,
    JobResult,
    JobRuntime,
    Late,
    RunReport,
    down_grace,
)
from agent.scheduler.recurrence import describe_delta, next_run, quiet_contains, quiet_end
from memory.backup import RESTORED_WINDOW
from memory.clock import iso
from memory.errors import StorageFailed
from memory.labels import TRUSTED
from memory.messages import OutStatus
from memory.people import User
from memory.schedules import RunStatus, Schedule, ScheduleRun, ScheduleStatus
from memory.storage import DatabaseLocked

__all__ = ["SchedulerEngine"]

log = logging.getLogger(__name__)

_WAKE_JOB = "steward-wake"
STOP_GRACE = 10.0  # s a run in flight may take to finish when Steward stops
# the alarm wakes a few milliseconds (under load, seconds) after the due instant: a job this
# late is on time, whatever its grace window (STEWARD_BRIEFING_GRACE=0 skipped every briefing)
ON_TIME = timedelta(minutes=1)
# the wall clock moved this far (s) against the monotonic one since the last look: the machine
# slept or the clock was set, and the alarm is set again (NTP's slewing moves it far less)
CLOCK_STEP = 2.0


RETRY_AFTER = timedelta(seconds=30)
"""How long a schedule whose run could not be written (the disk full, the database locked by
another program) waits before it is tried again (R198: it waited for a restart)."""


@dataclass(frozen=True)
class _Cause:
    """What cut a run short after its claim, in the words its records and its owner get."""

    event: str  # "cut short by a restart"
    known: str  # "sent before the restart"
    told: str  # "I was restarted while your scheduled task #3 ran"


_RESTART = _Cause("a restart", "the restart", "I was restarted")
_WRITE_FAILED = _Cause("a failed write", "the failed write", "My data could not be written")


@dataclass
class _Hold:
    """A due schedule whose run failed (a write that could not be made): tried again `until`,
    then said late for `why`; `run_id`, a run of it its failure left `firing`, to settle first."""

    until: datetime
    why: str
    run_id: int | None = None


RESTORED_NOTE = (
    "\n(I was restored from a backup made before this fell due: it may have reached you already)"
)


class SchedulerEngine:
    """Alarms, recovery and the claim → send → finish of each due run; what a run does is its
    kind's handler's business."""

    def __init__(self, runtime: JobRuntime, handlers: Mapping[str, JobHandler]) -> None:
        self.runtime = runtime
        self.handlers = dict(handlers)
        self.store = runtime.schedules
        self._alarm: Any = None  # the AsyncIOScheduler, while running
        self._armed_at: datetime | None = None
        self._offset: float | None = None  # wall clock minus monotonic clock at the last look
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_hand: set[int] = set()  # ids of schedules a `run_due` here is running
        self._held: dict[int, _Hold] = {}  # schedules whose run failed, by id: tried again later

    async def _restored_over(self, due_at: datetime) -> bool:
        """Whether `due_at` lies between the making of a backup restored since and its restore:
        the data it was taken of may have sent it already (R169: sent twice, the second plain)."""
        window = await self.runtime.stores.state.get(RESTORED_WINDOW)
        made, _, restored = (window or "").partition("/")
        try:
            return datetime.fromisoformat(made) <= due_at <= datetime.fromisoformat(restored)
        except ValueError:
            return False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, *, alarm: bool = True) -> list[RunReport]:
        """Settle runs a crash cut short, start the alarm clock (unless told not to: tests drive
        `run_due()` themselves) and run whatever fell due while Steward was down."""
        await self.recover()
        await self._bring_back()  # the clock set right while Steward was stopped (R240)
        if alarm and self._alarm is None:
            from apscheduler.schedulers.asyncio import AsyncIOScheduler

            logging.getLogger("apscheduler").setLevel(logging.WARNING)
            self._alarm = AsyncIOScheduler(timezone=UTC)
            self._alarm.start()
            self._clock_moved()  # the first look: what later looks compare with
        return await self.run_due(catching_up=True)  # which sets the alarm

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """No alarm from now on; runs in flight get `grace` seconds to finish before they are
        cancelled: a reminder cut short after the platform had it, but before its delivery was
        recorded, is sent again by the next start's redelivery, marked as a possible repeat."""
        if self._alarm is not None:
            self._alarm.shutdown(wait=False)
            self._alarm = None
            self._armed_at = None
            self._offset = None
        tasks = list(self._tasks)
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=grace)
        finally:  # a second Ctrl-C during the grace cancels this wait: the runs go too
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def sync_alarms(self, *, after: datetime | None = None) -> None:
        """Arm the one alarm at the earliest next run SQLite holds: one indexed query however
        many schedules are stored. `after` skips what a run in progress is already handling.
        A schedule a run holds in hand is still due (past) until claimed: armed at it, the
        alarm went off at once, found it in hand and armed again, a busy loop for as long as
        the run before it lasted (a briefing's model turn); those are left out. The alarm is
        set again, the time unchanged, if the wall clock moved against the monotonic clock
        (`check_clock`); set back, the waits move with it whichever looks first (R224)."""
        if self._alarm is None:
            return
        moved = await self._clock_step()
        if after is not None and moved < 0:  # read on the clock before it was set back
            after += timedelta(seconds=moved)
        at = await self.store.next_run_time(after=after, exclude=self._in_hand | self._held.keys())
        retries = [  # held schedules, at their try again
            hold.until
            for i, hold in self._held.items()
            if i not in self._in_hand and (after is None or hold.until > after)
        ]
        at = min([*retries, *([at] if at else [])], default=None)
        if at == self._armed_at and not moved:
            return
        self._set_alarm(at)

    def _set_alarm(self, at: datetime | None) -> None:
        """The one alarm, at `at` (None: none)."""
        if self._alarm is None:
            return
        self._armed_at = at
        if at is None:
            if self._alarm.get_job(_WAKE_JOB) is not None:
                self._alarm.remove_job(_WAKE_JOB)
            return
        from apscheduler.triggers.date import DateTrigger

        # timezone=UTC: left out, APScheduler asks tzlocal for the process's zone, which fails
        # on a TZ that is no zone name ("UTC0", "CET-1CEST,…", a typo); `at`, on the system
        # clock, is aware anyway
        self._alarm.add_job(
            self._wake,
            DateTrigger(run_date=self.runtime.clock.system_time(at), timezone=UTC),
            id=_WAKE_JOB,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
        )

    async def check_clock(self) -> bool:
        """Set the alarm again if the wall clock moved against the monotonic clock since the
        last look (the machine slept, or its clock was set): the alarm's timer runs on the
        monotonic clock, and would go off as much later as the wall clock moved. What fell due
        meanwhile runs at once, the rest at its time on the wall clock. One subtraction when
        nothing moved: meant for a loop that wakes anyway. Returns whether it had moved."""
        if self._alarm is None or not await self._clock_step():
            return False
        self._armed_at = None
        await self.sync_alarms()
        if self._alarm is not None:
            self._alarm.wakeup()  # due now: it goes off; later: timed again on the wall clock
        return True

    async def _clock_step(self) -> float:
        """`_clock_moved`, and waits moved back (and repeating jobs a fast clock left far
        ahead brought back, `_bring_back`) if the clock was set back: the one place a
        step is handled, as the first look to see it takes it from the others (R224: a
        reminder added just after the step took it from `check_clock`, and "in 5 minutes"
        came an hour late)."""
        moved = self._clock_moved()
        if moved < 0:
            await self._keep_waits(moved)
            await self._bring_back()
        return moved

    def _clock_moved(self) -> float:
        """How far the wall clock (the system's, as the alarm reads it) moved against the
        monotonic clock (the alarm's timer) since the last look, in seconds; 0 when no more
        than CLOCK_STEP."""
        clock = self.runtime.clock
        wall = clock.system_time(clock.now()).timestamp()
        offset = wall - asyncio.get_running_loop().time()
        last, self._offset = self._offset, offset
        if last is None or abs(offset - last) <= CLOCK_STEP:
            return 0.0
        log.info(
            "the wall clock moved %+.0f s against the monotonic clock (the machine slept, or "
            "its clock was set): the scheduler's alarm is set again",
            offset - last,
        )
        return offset - last

    async def _keep_waits(self, moved: float) -> None:
        """The wall clock was set back: a reminder said as time to wait ("in 5 minutes") is
        moved back as much, so it still comes after that wait, not an hour later (R101). A
        time of day ("at 9:00") stays where it is on the clock."""
        back = timedelta(seconds=moved)
        for schedule in await self.store.elapsed_waiting(self.runtime.clock.now() - back):
            assert schedule.next_run_at is not None
            at = schedule.next_run_at + back
            trigger = {**schedule.trigger, "at": at.isoformat()}
            await self.store.update(schedule.id, trigger=trigger, next_run_at=at)

    async def _bring_back(self) -> None:
        """A repeating schedule whose next run lies beyond the one after its next time from
        now was set while the clock ran fast (a year fast, then set right by NTP): it would
        be silent that long. It runs next at its next time from now (R240). Two periods, not
        one: a 09:00 run and the clock then set back an hour is not run again today."""
        runtime = self.runtime
        now = runtime.clock.now()
        zones: dict[int, ZoneInfo] = {}
        for schedule in await self.store.repeating_after(now + timedelta(days=1)):
            if schedule.user_id not in zones:
                user = await runtime.stores.people.get(schedule.user_id)
                zones[schedule.user_id] = (
                    runtime.zone_for(user) if user else ZoneInfo(runtime.timezone)
                )
            zone, trigger, was = zones[schedule.user_id], schedule.trigger, schedule.next_run_at
            upcoming = next_run(trigger, now, zone)
            following = None if upcoming is None else next_run(trigger, upcoming, zone)
            limit = None if following is None else next_run(trigger, following, zone)
            if was is None or upcoming is None or limit is None or was <= limit:
                continue
            if not await self.store.move(schedule.id, was=was, to=upcoming):
                continue
            log.warning(
                "schedule %s (%s) was next due %s, beyond its next times: set while the clock "
                "ran fast; next due %s",
                schedule.id,
                schedule.kind,
                iso(was),
                iso(upcoming),
            )
            await runtime.stores.audit.record(
                "schedule.moved",
                actor="scheduler",
                subject=f"schedule:{schedule.id}",
                job=schedule.kind,
                reason="its next run was set while the clock ran fast",
                was=iso(was),
                until=iso(upcoming),
            )

    async def _wake(self) -> None:
        if self._alarm is None:  # went off as the scheduler stopped: nothing more starts
            return
        self._armed_at = None
        self._spawn(self.run_due())

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until the runs the alarm clock started are finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- recovery ----------------------------------------------------------------------------

    async def recover(self) -> int:
        """Settle runs left `firing` by a crash: done if the message log shows they sent,
        due again (and so sent late) if it shows they did not. Returns how many."""
        settled = 0
        for run in await self.store.firing_runs():
            settled += await self._settle(run, self.runtime.clock.now(), _RESTART)
        return settled

    async def _settle(self, run: ScheduleRun, now: datetime, cause: _Cause) -> bool:
        """Settle one run left `firing` by `cause` (a restart, or a write that failed after it
        was claimed, R198); False when its schedule is gone."""
        runtime = self.runtime
        schedule = await self.store.get(run.schedule_id)
        if schedule is None:
            return False
        handler = self.handlers.get(run.kind)
        sent_id = acted = None
        if schedule.chat_id is not None and handler is not None:
            sent_id = await handler.sent_message(run, schedule.chat_id)
            if sent_id is None:
                acted = await handler.acted(run, schedule.chat_id)
        if sent_id is None and acted is not None:
            outcome = await self._cut_short_after_acting(run, schedule, acted, now, cause)
        elif sent_id is not None:
            assert handler is not None
            user = await runtime.stores.people.get(schedule.user_id)
            zone = runtime.zone_for(user) if user else ZoneInfo(runtime.timezone)
            await handler.settle_sent(run, schedule)
            # stored is not sent: what is not yet out is the courier's (redelivered, marked
            # as a possible repeat where its send was under way), never run again here
            delivered = await self._delivered(sent_id)
            if not delivered and cause is _WRITE_FAILED:
                self._hand_over(sent_id)
            await self.store.finish(
                run.id,
                schedule.id,
                status=RunStatus.SENT,
                reason=f"it had been sent before {cause.event}"
                if delivered
                else f"its message was stored before {cause.event}; the message log delivers it",
                next_run_at=next_run(schedule.trigger, now, zone),
            )
            outcome = f"sent before {cause.known}" if delivered else f"stored before {cause.known}"
        else:
            await self.store.interrupt(run, due_again_at=run.due_at)
            outcome = "due again"
        await runtime.stores.audit.record(
            "schedule.recovered",
            actor="scheduler",
            subject=f"schedule:{schedule.id}",
            job=run.kind,
            run=run.id,
            outcome=outcome,
            message_id=sent_id,
        )
        return True

    def _hand_over(self, message_id: int) -> None:
        """A message a failed write left stored and unsent goes to the courier's redelivery
        now (R203: only a restart's would have sent it). After a restart, the start-up
        redelivery sends it; a sender that is not the courier (a test's) has no redelivery."""
        take_over = getattr(self.runtime.sender, "take_over", None)
        if take_over is not None:
            take_over(message_id)

    async def _delivered(self, message_id: int) -> bool:
        """Whether a message a run stored is marked sent (not merely stored, waiting to go)."""
        message = await self.runtime.stores.messages.get(message_id)
        return message is not None and message.status == OutStatus.SENT

    async def _cut_short_after_acting(
        self, run: ScheduleRun, schedule: Schedule, turn_id: int, now: datetime, cause: _Cause
    ) -> str:
        """Not run again: what its turn ran unasked (a file written, a reminder added, an
        "always" rule's command) would run twice. Its owner hears so instead."""
        runtime = self.runtime
        user = await runtime.stores.people.get(schedule.user_id)
        zone = runtime.zone_for(user) if user else ZoneInfo(runtime.timezone)
        await self.store.finish(
            run.id,
            schedule.id,
            status=RunStatus.INTERRUPTED,
            reason=f"cut short by {cause.event} after it had begun to act; not run again",
            turn_id=turn_id,
            next_run_at=next_run(schedule.trigger, now, zone),
        )
        if user is None or not await runtime.stores.people.may_talk(user.id):
            return "cut short after acting: not run again"  # revoked since: no word to them
        address, chat = await runtime.destination(schedule)
        await runtime.sender.send(
            address,
            chat.id,
            f"{cause.told} while your scheduled {run.kind} #{schedule.id} ran, after it had "
            "begun to act (see /audit). I did not run it again, so nothing happens twice; "
            "check what it did.",
            label=TRUSTED,
            in_history=False,
        )
        return "cut short after acting: not run again"

    # -- running -----------------------------------------------------------------------------

    async def run_due(self, *, catching_up: bool = False) -> list[RunReport]:
        """Run every schedule whose time has come and no other call here is running. Concurrent
        calls are safe (across processes too): each run is claimed in SQLite first, so a
        schedule fires once. `catching_up`: the run at start-up, whose late jobs fell due while
        Steward was down (later, a late job's alarm came late: the machine slept, or its clock
        was set). A run that fails (its write refused: the disk full) is tried again in
        RETRY_AFTER, and the alarm is set again whatever happened (R198: the alarm spent, a
        reminder due on a full disk waited for a restart)."""
        now = self.runtime.clock.now()
        unread = False
        try:
            return await self._run_due(now, catching_up)
        except Exception as exc:  # not even read (the database failing): looked at again soon
            bug = not isinstance(exc, StorageFailed)
            log.error("the scheduler could not look at its schedules: %s", exc, exc_info=bug)
            unread = True
            return []
        finally:  # nothing raised from here: it would replace what the run returned (R259)
            try:
                if unread:
                    self._set_alarm(now + RETRY_AFTER)
                else:
                    await self._rearm()
            except Exception as exc:
                log.error("the scheduler's alarm could not be set: %s", exc, exc_info=True)

    async def _run_due(self, now: datetime, catching_up: bool) -> list[RunReport]:
        await self._settle_held(now)
        # A run already in hand here is left to the call that holds it: each alarm during a
        # long run starts another call, and retrying every pending claim in each made a burst
        # of due reminders quadratic (200 due within 5 s: 13,000 runs tried, seconds late).
        found = await self.store.due(now)
        due_ids = {s.id for s in found}  # a hold lasts while its schedule is due (or firing)
        self._held = {
            i: hold for i, hold in self._held.items() if hold.run_id is not None or i in due_ids
        }
        due = [s for s in found if s.id not in self._in_hand and not self._waits(s.id, now)]
        self._in_hand.update(s.id for s in due)
        try:
            due = await self._in_order(due, now)
            await self.sync_alarms(after=now)  # what falls due during a long run must not wait
            reports = []
            for schedule in due:
                if (report := await self._run_held(schedule, now, catching_up)) is not None:
                    reports.append(report)
                self._in_hand.discard(schedule.id)
        finally:
            self._in_hand.difference_update(s.id for s in due)
        return reports

    async def _in_order(self, due: list[Schedule], now: datetime) -> list[Schedule]:
        """Reminders first, then by due time; check-ins due at the same time, the goal least
        recently checked in on first (never: first of all), so under a tight budget each goal
        gets its turn over the days (R209: in id order, goals 1-23 got one every day and goals
        24-40 never); otherwise by id."""
        goals = {s.id: int(s.payload.get("goal_id", 0)) for s in due if s.kind == "checkin"}
        last = await self.store.last_checkins(set(goals.values())) if goals else {}

        def order(s: Schedule) -> tuple[bool, datetime, str, int]:
            checked = last.get(goals[s.id], "") if s.id in goals else ""
            return (s.kind != "reminder", s.next_run_at or now, checked, s.id)

        return sorted(due, key=order)

    def _waits(self, schedule_id: int, now: datetime) -> bool:
        """Whether a held schedule is still waiting for its try again."""
        hold = self._held.get(schedule_id)
        return hold is not None and hold.until > now

    async def _run_held(
        self, schedule: Schedule, now: datetime, catching_up: bool
    ) -> RunReport | None:
        """One schedule's run; a failure is held to be tried again, not let end the others."""
        try:
            report = await self._run(schedule, now, catching_up=catching_up)
        except StorageFailed as exc:
            log.error(
                "schedule %s (%s) could not run: %s; tried again in %d s",
                schedule.id,
                schedule.kind,
                exc,
                RETRY_AFTER.total_seconds(),
            )
            self._hold(schedule.id, now, _why(exc))
            return None
        except Exception as exc:
            log.exception("schedule %s (%s) failed; tried again later", schedule.id, schedule.kind)
            self._hold(schedule.id, now, _why(exc))
            return None
        self._held.pop(schedule.id, None)
        return report

    def _hold(self, schedule_id: int, now: datetime, why: str, run_id: int | None = None) -> None:
        """Try a schedule again in RETRY_AFTER, late for the first failure's `why`."""
        held = self._held.get(schedule_id)
        run_id = run_id if run_id is not None else (held.run_id if held else None)
        self._held[schedule_id] = _Hold(now + RETRY_AFTER, held.why if held else why, run_id)

    async def _settle_held(self, now: datetime) -> None:
        """Runs a failed write left `firing` in this process (claimed, not finished), once
        their wait is over: settled as a restart's are, done or due again (`_settle`)."""
        ready = {h.run_id for h in self._held.values() if h.run_id is not None and h.until <= now}
        if not ready:
            return
        for run in await self.store.firing_runs():
            if run.id not in ready:
                continue
            try:
                await self._settle(run, now, _WRITE_FAILED)
            except Exception as exc:
                bug = not isinstance(exc, StorageFailed)
                why = "schedule %s: its run %s not settled yet: %s"
                log.error(why, run.schedule_id, run.id, exc, exc_info=bug)
                self._hold(run.schedule_id, now, _why(exc))
                continue
            self._held[run.schedule_id].run_id = None
        for hold in self._held.values():  # finished after all (its record came through)
            if hold.run_id in ready:
                hold.run_id = None

    async def _rearm(self) -> None:
        """Set the alarm again; when SQLite cannot even be read, look again in RETRY_AFTER."""
        try:
            await self.sync_alarms()
        except StorageFailed as exc:
            log.error("the scheduler's alarm could not be set (%s); set in %s", exc, RETRY_AFTER)
            self._set_alarm(self.runtime.clock.now() + RETRY_AFTER)

    async def _run(self, schedule: Schedule, now: datetime, *, catching_up: bool) -> RunReport:
        assert schedule.next_run_at is not None
        runtime = self.runtime
        user = await runtime.stores.people.get(schedule.user_id)
        if user is None:
            await self.store.cancel(schedule.id)
            return RunReport(schedule.id, schedule.kind, "cancelled", "its user is gone")
        if not user.is_owner and not await runtime.stores.people.identities_of(user.id):
            # /revoke'd (every identity): nothing of theirs runs or posts any more
            await self.store.cancel(schedule.id)
            await runtime.stores.audit.record(
                "schedule.cancelled", actor="steward", subject=str(schedule.id), reason="revoked"
            )
            return RunReport(schedule.id, schedule.kind, "cancelled", "its user was revoked")
        zone = runtime.zone_for(user)
        due_at, missed = self._latest_occurrence(schedule, now, zone)
        first_due = None if missed else await self._retrying(schedule)
        if first_due is not None:
            due_at = first_due  # its lateness counts from its own time, not the try again's
        late = Late(now - due_at, down=catching_up)
        late_seconds = max(0, int(late.total_seconds()))
        upcoming = next_run(schedule.trigger, now, zone)
        audit = runtime.stores.audit
        handler = self.handlers.get(schedule.kind)

        if reason := _too_late(handler, late, None if upcoming is None else upcoming - now):
            await self.store.record_skip(
                schedule, reason=reason, late_seconds=late_seconds, next_run_at=upcoming
            )
            await audit.record(
                "schedule.run",
                actor="scheduler",
                subject=f"schedule:{schedule.id}",
                job=schedule.kind,
                outcome="skipped",
                reason=reason,
                due_at=iso(due_at),
                late_s=late_seconds,
                missed_earlier=missed,
            )
            return RunReport(schedule.id, schedule.kind, "skipped", reason)

        if handler is not None and handler.deferrable:
            deferred = await self._defer_for_quiet_hours(schedule, user, now, zone)
            if deferred is not None:
                return deferred

        text = self._text(handler, schedule, late)
        if text is not None and await self._restored_over(due_at):
            text += RESTORED_NOTE
        run_id = await self.store.claim(  # due at the time it answers (R158: not a stale one)
            schedule, late_seconds=late_seconds, text=text, due_at=due_at
        )
        if run_id is None:
            return RunReport(schedule.id, schedule.kind, "taken", "another run took it")
        hold = self._held.get(schedule.id)
        job = DueJob(
            schedule, user, run_id, late, text, due_at, first_due is not None,
            held_why=hold.why if hold else None,
        )  # fmt: skip
        try:
            return await self._fire(job, now, missed)
        except Exception as exc:  # left `firing`: settled before it is tried again
            self._hold(schedule.id, now, _why(exc), run_id)
            raise

    def _text(self, handler: JobHandler | None, schedule: Schedule, late: Late) -> str | None:
        """What the run sends as it is (a reminder's words), late for the reason it was held
        back if it was (R198: a reminder held by a full disk said "I wasn't running")."""
        if handler is None:
            return None
        hold = self._held.get(schedule.id)
        if hold is None or late <= LATE_AFTER:
            return handler.run_text(schedule, late)
        text = handler.run_text(schedule, Late(timedelta(0), down=late.down))
        return None if text is None else f"{text}\n(late by {describe_delta(late)}: {hold.why})"

    async def _fire(self, job: DueJob, now: datetime, missed: int) -> RunReport:
        """Send a claimed run and record how it ended."""
        schedule, due_at = job.schedule, job.due_at
        handler = self.handlers.get(schedule.kind)
        zone = self.runtime.zone_for(job.user)
        upcoming = next_run(schedule.trigger, now, zone)
        try:
            if handler is None:
                result = JobResult(RunStatus.FAILED, f"unknown kind {schedule.kind!r}", stop=True)
            else:
                result = await handler.fire(job)
        except StorageFailed:
            raise  # nothing recorded of it: not a failed run, one to settle and try again
        except Exception as exc:
            log.exception("schedule %s (%s) failed", schedule.id, schedule.kind)
            result = JobResult(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        stopped = result.stop or (
            result.status is RunStatus.FAILED and not schedule.recurring and result.retry_at is None
        )
        status = ScheduleStatus.CANCELLED if result.stop else None
        if stopped and status is None:
            status = ScheduleStatus.FAILED
        await self.store.finish(
            job.run_id,
            schedule.id,
            status=result.status,
            reason=result.reason,
            turn_id=result.turn_id,
            detail=result.detail,
            next_run_at=None if stopped else _next_at(upcoming, due_at, result, zone),
            schedule_status=status,
        )
        await self.runtime.stores.audit.record(
            "schedule.run",
            actor="scheduler",
            subject=f"schedule:{schedule.id}",
            job=schedule.kind,
            outcome=result.status.value,
            reason=result.reason,
            due_at=iso(due_at),
            late_s=max(0, int(job.late.total_seconds())),
            missed_earlier=missed,
            turn_id=result.turn_id,
            tainted=schedule.tainted,
            **result.detail,
        )
        return RunReport(
            schedule.id, schedule.kind, result.status.value, result.reason, result.turn_id
        )

    async def _defer_for_quiet_hours(
        self, schedule: Schedule, user: User, now: datetime, zone: ZoneInfo
    ) -> RunReport | None:
        """Move a self-initiated job to the end of the user's quiet hours, if it is in them."""
        quiet = await self.store.quiet(user.id)
        if not quiet or not quiet_contains(quiet.start, quiet.end, now, zone):
            return None
        until = quiet_end(quiet.end, now, zone)
        await self.store.update(schedule.id, next_run_at=until)
        reason = f"quiet hours {quiet.start}-{quiet.end}"
        await self.runtime.stores.audit.record(
            "schedule.deferred",
            actor="scheduler",
            subject=f"schedule:{schedule.id}",
            job=schedule.kind,
            reason=reason,
            until=iso(until),
        )
        return RunReport(schedule.id, schedule.kind, "deferred", reason)

    async def _retrying(self, schedule: Schedule) -> datetime | None:
        """The due time of the run a failed one asked to try again now (`JobResult.retry_at`),
        None when this is not such a try."""
        statuses = tuple(s.value for s in RunStatus if s is not RunStatus.FIRING)
        last = await self.store.last_run(schedule.id, statuses)
        if last is None or last.status is not RunStatus.FAILED:
            return None
        asked = last.detail.get("retry_at")
        if not isinstance(asked, str) or schedule.next_run_at is None:
            return None
        try:
            return last.due_at if datetime.fromisoformat(asked) == schedule.next_run_at else None
        except ValueError:
            return None

    @staticmethod
    def _latest_occurrence(
        schedule: Schedule, now: datetime, zone: ZoneInfo
    ) -> tuple[datetime, int]:
        """The most recent time the job was due, and how many earlier times it missed: a job
        that missed several runs runs once, as late as its latest missed time."""
        assert schedule.next_run_at is not None
        due_at, missed = schedule.next_run_at, 0
        while missed < 10_000:
            following = next_run(schedule.trigger, due_at, zone)
            if following is None or following > now:
                break
            due_at, missed = following, missed + 1
        return due_at, missed


def _next_at(
    upcoming: datetime | None, due_at: datetime, result: JobResult, zone: ZoneInfo
) -> datetime | None:
    """When the schedule runs next: a failed run's try again (before the next occurrence),
    else the next occurrence, else a one-off put off (`_same_time_after`)."""
    if result.retry_at is not None and (upcoming is None or result.retry_at < upcoming):
        return result.retry_at
    return upcoming or _same_time_after(due_at, result, zone)


def _same_time_after(due_at: datetime, result: JobResult, zone: ZoneInfo) -> datetime | None:
    """A one-off put off to `result.again_at` (a person's allowance spent) runs at its own time
    of day on the first day it may: a task set for 17:00 must not fire at five past midnight."""
    if result.again_at is None:
        return None
    again = due_at.astimezone(zone)
    while again < result.again_at:
        again += timedelta(days=1)  # the same wall-clock time, across a DST change too
    return again


def _too_late(handler: JobHandler | None, late: Late, until_next: timedelta | None) -> str:
    """Why a run is skipped rather than sent this late, or "": later than its handler's grace
    window (a briefing); with a `down_grace`, later than its next time is away (`until_next`;
    None: a one-off, always sent), whether Steward was down or the computer asleep: sent now,
    a daily reminder 23 h 51 min late came again 9 min later (R209, R210); or, missed while
    Steward was not running, later than its `down_grace`. On time is never late."""
    if handler is None or late <= ON_TIME:
        return ""
    missed = f"missed by {describe_delta(late)}"
    if handler.grace is not None and late > handler.grace:
        return f"{missed}, more than the {describe_delta(handler.grace)} grace window"
    window = down_grace(handler)
    if window is None or until_next is None:
        return ""
    missed += (
        " while I was not running"
        if late.down
        else " while the computer slept or its clock changed"
    )
    if late > until_next:  # asleep too (R210: a daily reminder came twice on waking)
        return f"{missed}; its next time is nearer (in {describe_delta(until_next)})"
    if late.down and late > window:
        return f"{missed}, more than the {describe_delta(window)} it may be late"
    return ""


def _why(exc: Exception) -> str:
    """Why a run held back by `exc` is late, in the owner's words."""
    if isinstance(exc, DatabaseLocked):
        return "another program had my database locked when it fell due"
    if isinstance(exc, StorageFailed):
        return "my data disk was full or could not be written when it fell due"
    return "something went wrong on my side when it fell due"
