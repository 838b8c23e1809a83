"""Watching the mailbox: `/mail watch` rules, new mail found by IMAP IDLE (or polling where the
server has no IDLE), and a short notice to the owner for each match.

(Over 400 lines: the one loop and what it owes the owner along the way, a folder that will not
open, a flood folded into a count, a notice kept out of a group; the parsing is in message.py.)

How far each folder was read is kept in SQLite as (UIDVALIDITY, last UID): after a restart the
watcher carries on from there, so mail that came while Steward was down is noticed, and nothing
is noticed twice (each notice is a unique row per message and reason). A folder seen for the
first time, or whose UIDVALIDITY changed, starts from what it holds now.

A notice is a one-shot scheduled job of kind `mail` due at once: the scheduler sends it through
the courier, holds it through quiet hours, and recovers it after a crash. Its text quotes the
sender and subject, which are outside content, so it is labelled untrusted (`mail:<address>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Protocol

from agent.delivery import private_address
from agent.mail.errors import MailError, MailFolderRefused, MailLoginRefused
from agent.mail.imap import HeaderItem, ImapSession, SearchQuery
from agent.mail.message import ParsedMail, parse_message, read_headers
from agent.mail.rules import matches, notice_text
from agent.mail.service import MailService
from agent.recall import group_scope
from agent.scheduler.jobs import DueJob, JobResult, JobRuntime
from agent.types import address_to_json
from memory.labels import Label
from memory.mail import WatchRule
from memory.schedules import RunStatus, Schedule, ScheduleRun

__all__ = ["MailNoticeJob", "MailWatcher", "NoticeScheduler"]

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(days=1)
FOLDER_REFUSED = "mail.folder_refused_reported:"
"""State key prefix (then the folder's name): the owner was told the server would not open it."""
GIST_MAX_BYTES = 2_000_000  # a bigger message's gist is its size, not its text


class NoticeScheduler(Protocol):
    """What the watcher needs of the scheduler: re-arm its alarm after a notice is queued."""

    async def sync_alarms(self) -> None: ...


NOTICE_BURST = 10
NOTICE_WINDOW = timedelta(hours=1)
"""At most NOTICE_BURST mail notices a person gets one by one in NOTICE_WINDOW; the rest are
counted into one message at the window's end (`MailWatcher._fold`)."""


def _digest(count: int) -> dict[str, object]:
    text = (
        f"📧 {count} more mail(s) matched your watch rules within the hour; I stopped "
        "telling you one by one. They are in your mailbox."
    )
    return {"digest": True, "count": count, "text": text}


class MailNoticeJob:
    """Sends a queued notice word for word; held through quiet hours (self-initiated)."""

    deferrable = True
    grace: timedelta | None = None

    def __init__(self, runtime: JobRuntime) -> None:
        self.runtime = runtime

    def run_text(self, schedule: Schedule, late: timedelta) -> str | None:
        return str(schedule.payload.get("text", ""))

    async def fire(self, job: DueJob) -> JobResult:
        address, chat = await self.runtime.destination(job.schedule)
        label = job.schedule.label
        text = job.text or str(job.schedule.payload.get("text", ""))
        delivered = await self.runtime.sender.send(address, chat.id, text, label=label)
        return JobResult(RunStatus.SENT, "new mail", detail={"delivered": delivered})

    async def sent_message(self, run: ScheduleRun, chat_id: int) -> int | None:
        if not run.text:
            return None
        return await self.runtime.schedules.sent_message_since(chat_id, run.started_at, run.text)

    async def settle_sent(self, run: ScheduleRun, schedule: Schedule) -> None:
        return None

    async def acted(self, run: ScheduleRun, chat_id: int) -> int | None:
        return None  # a notice runs no turn


class MailWatcher:
    def __init__(
        self,
        service: MailService,
        scheduler: NoticeScheduler | None = None,
        *,
        backoff_base: float = 30.0,
        backoff_max: float = 3600.0,
    ) -> None:
        self.service = service
        self.stores = service.stores
        self.clock = service.clock
        self.scheduler = scheduler
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.failures = 0
        self.idle_used = False
        self.opened: list[str] = []
        """The watched folders the last check could open (the first is where IDLE waits)."""
        self._task: asyncio.Task[None] | None = None
        self._session: ImapSession | None = None

    # -- one pass ----------------------------------------------------------------------------

    async def check_once(self, session: ImapSession | None = None) -> int:
        """Look at every watched folder once; returns how many notices were queued."""
        await self.requeue()
        if session is not None:
            return await self._check(session)
        async with self.service.session() as opened:
            return await self._check(opened)

    async def _check(self, session: ImapSession) -> int:
        rules = await self.stores.mail.rules()
        made = 0
        opened = []
        for folder in self.service.account.folders:
            try:
                made += await self._check_folder(session, folder, rules)
            except MailFolderRefused:
                # One folder gone (renamed, deleted) must not stop the others being watched
                await self._folder_refused(folder)
                continue
            opened.append(folder)
            if await self.stores.state.get(FOLDER_REFUSED + folder) == "1":
                await self.stores.state.set(FOLDER_REFUSED + folder, "0")
                log.info("mail: %s opens again", folder)
        self.opened = opened
        return made

    async def _folder_refused(self, folder: str) -> None:
        """Tell the owner once (until it opens again) that a watched folder cannot be read."""
        if not await self.stores.state.set_if_changed(FOLDER_REFUSED + folder, "1"):
            return
        log.warning("mail: the server would not open %s; it is not watched", folder)
        await self.stores.audit.record("mail.folder_refused", actor="steward", subject=folder)
        if self.service.tell_owner is not None:
            await self.service.tell_owner(
                f'The mail server would not open the folder "{folder}" (EMAIL_FOLDERS): mail '
                "arriving there is not watched until it opens again; I try at every check. "
                "The other folders are watched as before."
            )

    async def _check_folder(self, session: ImapSession, folder: str, rules: list[WatchRule]) -> int:
        state = await session.select(folder)
        mark = await self.stores.mail.folder(folder)
        made = 0
        if mark is None or mark.uidvalidity != state.uidvalidity:
            if mark is not None:
                log.warning("mail: %s has a new UIDVALIDITY; starting from what it holds", folder)
                await self.stores.audit.record(
                    "mail.uidvalidity_changed", actor="steward", subject=folder
                )
            uids = await session.search(SearchQuery())
            await self.stores.mail.set_folder(folder, state.uidvalidity, max(uids, default=0))
        else:
            arrival = [r for r in rules if r.kind in ("from", "subject")]
            new = await session.search(SearchQuery(uid_above=mark.last_uid))
            for start in range(0, len(new), 100):
                chunk = new[start : start + 100]
                items = await session.headers(chunk)
                # off the loop: a long header costs; one that cannot be read is None
                heads = await asyncio.to_thread(read_headers, [i.header for i in items])
                for item, headers in zip(items, heads, strict=True):
                    if headers is None:  # skipped, and the mark moves past it with the rest
                        log.warning("mail: message %s in %s unreadable; skipped", item.uid, folder)
                        continue
                    made += await self._arrived(
                        session, folder, state.uidvalidity, item, headers, arrival
                    )
                await self.stores.mail.set_folder(folder, state.uidvalidity, max(chunk))
        stale_rules = [r for r in rules if r.kind == "unread_older"]
        if stale_rules:
            made += await self._stale(session, folder, state.uidvalidity, stale_rules)
        return made

    async def _arrived(
        self,
        session: ImapSession,
        folder: str,
        uidvalidity: int,
        item: HeaderItem,
        headers: ParsedMail,
        rules: list[WatchRule],
    ) -> int:
        made = 0
        notified: set[int] = set()
        for rule in rules:
            if rule.user_id in notified or not matches(rule, headers):
                continue
            notified.add(rule.user_id)
            mail = await self._full(session, item, headers)
            made += await self._notice(rule, folder, uidvalidity, item, mail, "new")
        return made

    async def _stale(
        self, session: ImapSession, folder: str, uidvalidity: int, rules: list[WatchRule]
    ) -> int:
        now = self.clock.now()
        # headers only of mail stale now, not told of already, and news to some rule: any
        # sender can set off a pass, and 200 headers of 128 KB were 5 s of it (R118, R119);
        # the arrival dates come first, cheaply (BEFORE is the server's day: one more)
        day = (now - STALE_AFTER).date() + timedelta(days=1)
        oldest_rule = min(r.created_at for r in rules) - STALE_AFTER  # older: never news
        since = oldest_rule.date() - timedelta(days=1)
        unread = await session.search(SearchQuery(unread=True, since=since, before=day))
        told = await self.stores.mail.noticed(
            folder, uidvalidity, "unread", [r.user_id for r in rules]
        )
        unread = [uid for uid in unread if uid not in told]
        stale = [
            i.uid
            for i in await session.headers(unread, header=False)
            if not i.seen
            and i.internaldate is not None
            and oldest_rule <= i.internaldate <= now - STALE_AFTER
        ][-200:]
        made = 0
        items = [i for i in await session.headers(stale) if not i.seen]
        heads = await asyncio.to_thread(read_headers, [i.header for i in items]) if items else []
        for item, headers in zip(items, heads, strict=True):
            if headers is None or item.internaldate is None:
                continue  # unreadable: logged by read_headers
            for rule in rules:
                if item.internaldate < rule.created_at - STALE_AFTER:
                    continue  # it was already old when the rule was made: not news
                made += await self._notice(rule, folder, uidvalidity, item, headers, "unread")
        return made

    async def _full(
        self, session: ImapSession, item: HeaderItem, headers: ParsedMail
    ) -> ParsedMail:
        if item.size > GIST_MAX_BYTES:
            return headers
        raw = await session.message(item.uid)
        return await asyncio.to_thread(parse_message, raw) if raw else headers  # never raises

    async def _notice(
        self,
        rule: WatchRule,
        folder: str,
        uidvalidity: int,
        item: HeaderItem,
        mail: ParsedMail,
        reason: str,
    ) -> int:
        try:
            text = notice_text(mail, stale=reason == "unread", size=item.size)
        except Exception:  # the sender's words cannot stop the notice, nor the later ones
            log.exception(
                "mail: the notice of message %s in %s could not be written", item.uid, folder
            )
            text = "📧 New mail (its sender and subject could not be shown)."
        notice = await self.stores.mail.add_notice(
            user_id=rule.user_id,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=item.uid,
            reason=reason,
            rule_id=rule.id,
            text=text,
            sender=mail.sender_address,
        )
        if notice is None:
            return 0
        await self._queue(notice.id, rule.user_id, notice.text, notice.sender, rule)
        return 1

    async def _queue(
        self, notice_id: int, user_id: int, text: str, sender: str, rule: WatchRule | None
    ) -> None:
        destination, chat_id = await self._private(rule, user_id) if rule else (None, None)
        if destination is None:
            log.warning("mail: notice %s has nowhere to go", notice_id)
            return
        label = Label.untrusted(f"mail:{sender or 'unknown sender'}")
        now = self.clock.now()
        schedules = self.stores.schedules
        waiting = len(await schedules.for_user(user_id, ("mail",), statuses=("active", "firing")))
        made = await schedules.count_made_since(  # a minute's slack for the clock's steps
            user_id, "mail", now - NOTICE_WINDOW, now + timedelta(minutes=1)
        )
        if max(waiting, made) >= NOTICE_BURST:  # held by quiet hours count too: not 10 an hour
            await self._fold(notice_id, user_id, chat_id, destination, now)
            return
        schedule = await self.stores.schedules.add(
            user_id=user_id,
            chat_id=chat_id,
            kind="mail",
            trigger={"type": "once", "at": now.isoformat()},
            payload={"text": text, "notice": notice_id},
            next_run_at=now,
            destination=destination,
            tainted=True,
            sources=label.sources,
        )
        await self.stores.mail.set_notice_schedule(notice_id, schedule.id)
        await self.stores.audit.record(
            "mail.notice", actor="steward", subject=f"schedule:{schedule.id}", notice=notice_id
        )
        if self.scheduler is not None:
            await self.scheduler.sync_alarms()

    async def _private(
        self, rule: WatchRule, user_id: int
    ) -> tuple[dict[str, object] | None, int | None]:
        """Where a rule's notices go: never to a group, where everyone would read the owner's
        mail (review 118: `/mail watch` typed in a group sent them there); a rule made in one
        before that was refused tells its owner privately, else nowhere."""
        chat = await self.stores.people.chat_by_id(rule.chat_id) if rule.chat_id else None
        if group_scope(chat) is None:
            return rule.destination, rule.chat_id
        channel = chat.channel if chat is not None else ""
        private = await private_address(self.stores, user_id, [channel], channel)
        if private is None:
            return None, None
        address, reached = private
        return address_to_json(address), reached.id if reached is not None else None

    async def _fold(
        self,
        notice_id: int,
        user_id: int,
        chat_id: int | None,
        destination: dict[str, object],
        now: datetime,
    ) -> None:
        """Past NOTICE_BURST an hour, notices are counted into one, sent when the hour is up:
        anyone can send mail that matches a rule (a forged From, a subject), and 300 such
        mails were 300 messages at the end of the owner's quiet hours."""
        schedules = self.stores.schedules
        digest = await schedules.find(user_id, "mail", digest=True)
        counted = False
        if digest is not None and digest.status.value == "active":
            count = int(digest.payload.get("count", 1)) + 1  # unless it began to go out meanwhile
            counted = await schedules.update_if_active(digest.id, payload=_digest(count))
        if digest is None or not counted:
            digest = await schedules.add(
                user_id=user_id,
                chat_id=chat_id,
                kind="mail",
                trigger={"type": "once", "at": (now + NOTICE_WINDOW).isoformat()},
                payload=_digest(1),
                next_run_at=now + NOTICE_WINDOW,
                destination=destination,
                tainted=False,  # Steward's own words: a count, nothing of the mails
            )
        await self.stores.mail.set_notice_schedule(notice_id, digest.id)
        if self.scheduler is not None:
            await self.scheduler.sync_alarms()

    async def requeue(self) -> None:
        """Notices recorded but not queued before a crash are queued now (once)."""
        pending = await self.stores.mail.unqueued_notices()
        if not pending:
            return
        rules = {r.id: r for r in await self.stores.mail.rules()}
        for notice in pending:
            rule = rules.get(notice.rule_id or -1)
            await self._queue(notice.id, notice.user_id, notice.text, notice.sender, rule)

    # -- the loop ----------------------------------------------------------------------------

    def backoff(self) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** max(0, self.failures - 1))

    async def run(self) -> None:
        """Check, then wait for the server's word (IDLE) or the poll interval; on a failure,
        retry after a pause that doubles each time (a refused login is told once)."""
        account = self.service.account
        while True:
            session: ImapSession | None = None
            try:
                session = self._session = await self.service.open()
                self.failures = 0
                while True:
                    await self.check_once(session)
                    if not self.opened:  # none opens: look again after the poll interval
                        await asyncio.sleep(account.poll_seconds)
                        continue
                    await session.select(self.opened[0])
                    self.idle_used = "IDLE" in session.capabilities
                    await session.idle(account.poll_seconds)
            except asyncio.CancelledError:
                raise
            except (MailLoginRefused, MailError, OSError) as exc:
                self.failures += 1
                if not isinstance(exc, MailLoginRefused):
                    log.warning("mail: %s; retrying in %.0f s", exc, self.backoff())
            except Exception:
                self.failures += 1
                log.exception("mail: the watcher failed; retrying in %.0f s", self.backoff())
            finally:
                self._session = None
                if session is not None:
                    with contextlib.suppress(Exception):
                        await session.logout()
            await asyncio.sleep(self.backoff())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="mail-watcher")

    async def stop(self) -> None:
        if self._task is not None:
            if self._session is not None:
                self._session.interrupt()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
