"""Watching the mailbox and the inbox in the briefing, against a real Dovecot.

Rules fire once per message, across restarts; notices wait out quiet hours; IDLE wakes the
watcher; a refused login is told to the owner once while everything else keeps working.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import OWNER
from mailservers import (
    Dovecot,
    SmtpRecorder,
    dovecot_server,
    mail_settings,
    plain_mail,
)
from trust_world import World, instruction, trust_world

from agent.mail.watch import MailWatcher
from agent.scheduler import SchedulerService
from agent.types import Address, ChatKind, IncomingMessage, address_to_json
from memory.clock import FrozenClock
from memory.people import User
from memory.stores import Stores

BOSS = "The Boss <boss@corp.example>"


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Wait until `check()` holds; fails the test after `seconds`."""
    async with asyncio.timeout(seconds):
        for _ in range(100_000):
            if await check():
                return
            await asyncio.sleep(0.05)


async def _count(w: World, kind: str, at_least: int) -> bool:
    return len(await w.audit_kinds(kind)) >= at_least


async def _failed_twice(watcher: MailWatcher) -> bool:
    return watcher.failures >= 2


async def _marked(stores: Stores) -> bool:
    return await stores.mail.folder("INBOX") is not None


async def _noticed(stores: Stores, owner: User) -> bool:
    return bool(await stores.mail.notices(owner.id))


def watcher_of(w: World) -> MailWatcher:
    watcher = w.h.steward.mail
    assert watcher is not None
    return watcher


def scheduler_of(w: World) -> SchedulerService:
    scheduler = w.h.steward.scheduler
    assert isinstance(scheduler, SchedulerService)
    return scheduler


async def owner_of(w: World) -> User:
    owner = await w.h.steward.stores.people.owner()
    assert owner is not None
    return owner


def notices(w: World) -> list[str]:
    return [t for t in w.h.channel.texts("c1") if t.startswith("📧")]


async def test_a_watch_rule_fires_once_across_a_restart(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    settings = mail_settings(dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=False))
    async with trust_world(tmp_path, **settings) as w:
        assert (await w.h.say("/mail watch from boss@corp.example")).startswith("Watching #1")
        assert (await w.h.say("/mail watch subject invoice")).startswith("Watching #2")
        listed = await w.h.say("/mail watch list")
        assert "#1 from boss@corp.example" in listed and "#2 subject has “invoice”" in listed
        watcher = watcher_of(w)
        dovecot.deliver(plain_mail(BOSS, "Old news", "From before I watched"))
        assert await watcher.check_once() == 0  # the first look only notes where the folder is
        dovecot.deliver(
            plain_mail(BOSS, "Budget numbers", "Hi Sam,\nPlease send me the Q3 budget by noon.")
        )
        dovecot.deliver(plain_mail("Ads <win@ads.example>", "You won", "Click here"))
        dovecot.deliver(plain_mail("Billing <bills@acme.example>", "Invoice 42 overdue", "Pay"))
        assert await watcher.check_once() == 2
        assert await watcher.check_once() == 0
        await scheduler_of(w).run_due()
        assert notices(w) == [
            "📧 New mail from The Boss <boss@corp.example>: “Budget numbers”\n"
            "> Please send me the Q3 budget by noon.",
            "📧 New mail from Billing <bills@acme.example>: “Invoice 42 overdue”\n> Pay",
        ]
        owner = await owner_of(w)
        [first, *_] = await w.h.steward.stores.mail.notices(owner.id)
        assert first.schedule_id is not None
        done = await w.h.steward.stores.schedules.get(first.schedule_id)
        assert done is not None and done.tainted  # the notice quotes outside words
        assert any(s.startswith("mail:") for s in done.label.sources)
        assert (await w.h.say("/mail watch remove 2")).startswith("Stopped watching #2")
        assert "#2" not in await w.h.say("/mail watch list")
    # while Steward is down, the boss writes again; the first mail must not be told again
    dovecot.deliver(plain_mail(BOSS, "Second thing", "Call me when you can."))
    dovecot.deliver(plain_mail("Billing <bills@acme.example>", "Invoice 43", "Pay"))
    async with trust_world(tmp_path, reuse=True, **settings) as w:
        watcher = watcher_of(w)
        assert await watcher.check_once() == 1  # the rule on invoices was removed
        await scheduler_of(w).run_due()
        assert notices(w) == [
            "📧 New mail from The Boss <boss@corp.example>: “Second thing”\n> Call me when you can."
        ]
        assert await watcher.check_once() == 0
        await scheduler_of(w).run_due()
        assert len(notices(w)) == 1
        # a crash between recording a notice and queueing it (the state it leaves, made by hand)
        dovecot.deliver(plain_mail(BOSS, "Third", "Last one."))
        assert await watcher.check_once() == 1
        w.h.edit_database("DELETE FROM schedules WHERE kind = 'mail' AND status = 'active'")
        w.h.edit_database("UPDATE mail_notices SET schedule_id = NULL WHERE text LIKE '%Third%'")
        assert await watcher.check_once() == 0  # nothing new, but the lost notice is queued
        await scheduler_of(w).run_due()
        assert [n for n in notices(w) if "Third" in n] == [
            "📧 New mail from The Boss <boss@corp.example>: “Third”\n> Last one."
        ]
        await watcher.check_once()
        await scheduler_of(w).run_due()
        assert len(notices(w)) == 2
        # a crash while a notice was being sent: the start after it recovers it (recovery
        # asked every kind of job whether its turn had acted, and a notice's had no answer)
        dovecot.deliver(plain_mail(BOSS, "Fourth", "After the crash."))
        assert await watcher.check_once() == 1
        store = scheduler_of(w).store
        [due] = await store.due(w.h.steward.clock.now())
        assert await store.claim(due, late_seconds=0, text="left firing")
    async with trust_world(tmp_path, reuse=True, **settings) as w:
        await scheduler_of(w).start(alarm=False)
        assert [n for n in notices(w) if "Fourth" in n]


async def test_notices_wait_out_quiet_hours_and_stale_unread_mail_is_told_once(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FrozenClock(now)
    settings = mail_settings(dovecot, smtp_server)
    async with trust_world(tmp_path, clock=clock, **settings) as w:
        await w.h.say("/mail watch from corp.example")
        await w.h.say("/mail watch unread older than a day")
        start, end = (now - timedelta(hours=1)), (now + timedelta(hours=1))
        quiet = await w.h.say(f"/quiet {start:%H:%M}-{end:%H:%M}")
        assert "quiet" in quiet.lower(), quiet
        watcher = watcher_of(w)
        await watcher.check_once()
        dovecot.deliver(plain_mail("Eve <eve@sales.corp.example>", "Quick question", "Got a sec?"))
        assert await watcher.check_once() == 1
        await scheduler_of(w).run_due()
        assert notices(w) == []  # quiet hours: held back
        clock.advance(timedelta(hours=2))
        await scheduler_of(w).run_due()
        assert notices(w) == [
            "📧 New mail from Eve <eve@sales.corp.example>: “Quick question”\n> Got a sec?"
        ]
        # a day later it is still unread: one more notice, once
        clock.advance(timedelta(days=1))
        assert await watcher.check_once() == 1
        assert await watcher.check_once() == 0
        await scheduler_of(w).run_due()
        assert notices(w)[-1].startswith("📧 Still unread after a day from Eve")
        assert len(notices(w)) == 2


async def test_a_flood_of_matching_mail_is_counted_not_sent_one_by_one(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """Anyone can send mail that matches a rule (a forged From, a subject): 300 such mails
    were 300 messages at the end of the owner's quiet hours."""
    from agent.mail.watch import NOTICE_BURST, NOTICE_WINDOW

    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    async with trust_world(tmp_path, clock=clock, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say("/mail watch from corp.example")
        watcher = watcher_of(w)
        await watcher.check_once()
        for n in range(NOTICE_BURST + 15):
            dovecot.deliver(plain_mail("Boss <boss@corp.example>", f"Urgent {n}", "Now."))
        assert await watcher.check_once() == NOTICE_BURST + 15
        await scheduler_of(w).run_due()
        assert len(notices(w)) == NOTICE_BURST
        clock.advance(NOTICE_WINDOW)
        await scheduler_of(w).run_due()
        assert len(notices(w)) == NOTICE_BURST + 1
        assert notices(w)[-1].startswith("📧 15 more mail(s) matched your watch rules")


async def test_a_flood_held_by_quiet_hours_is_counted_too(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """Counted by the hour they were made, notices held back by quiet hours let ten more
    through every hour: 31 messages at once after five hours of a flood."""
    from agent.mail.watch import NOTICE_BURST

    now = datetime.now(UTC).replace(microsecond=0)
    clock = FrozenClock(now)
    async with trust_world(tmp_path, clock=clock, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say("/mail watch from corp.example")
        start, end = now - timedelta(hours=1), now + timedelta(hours=4)
        await w.h.say(f"/quiet {start:%H:%M}-{end:%H:%M}")
        watcher = watcher_of(w)
        await watcher.check_once()
        for hour in range(3):
            for n in range(NOTICE_BURST + 5):
                dovecot.deliver(plain_mail("Boss <boss@corp.example>", f"Hour {hour} {n}", "x"))
            await watcher.check_once()
            clock.advance(timedelta(hours=1, minutes=1))
        clock.advance(timedelta(hours=2))
        await scheduler_of(w).run_due()
        assert len(notices(w)) == NOTICE_BURST + 1, len(notices(w))
        assert notices(w)[-1].startswith(f"📧 {2 * NOTICE_BURST + 15} more mail(s)")


@pytest.mark.parametrize("tls", [True, False], ids=["aioimaplib-idle", "imapclient-idle"])
async def test_idle_wakes_the_watcher_on_new_mail(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder, tls: bool
) -> None:
    settings = mail_settings(
        dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=tls), EMAIL_POLL_SECONDS="300"
    )
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say("/mail watch from boss@corp.example")
        watcher = watcher_of(w)
        stores = w.h.steward.stores
        watcher.start()
        try:
            await eventually(lambda: _marked(stores), 10)
            await asyncio.sleep(0.3)  # in IDLE by now; polling would wait 300 s
            dovecot.deliver(plain_mail(BOSS, "Now", "Right now please."))
            delivered = time.perf_counter()
            owner = await owner_of(w)
            await eventually(lambda: _noticed(stores, owner), 10)
            print(f"\nIDLE: delivered to notice queued in {time.perf_counter() - delivered:.2f} s")
            assert watcher.idle_used
            await asyncio.sleep(0.3)  # back in IDLE, for 300 s
        finally:
            started = time.perf_counter()
            await watcher.stop()
        assert time.perf_counter() - started < 5  # stopping does not wait out the IDLE


async def test_a_refused_login_is_told_once_and_the_rest_keeps_working(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    settings = mail_settings(dovecot, smtp_server, EMAIL_PASSWORD="CANARY-wrong-pw")
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say("hello")
        watcher = watcher_of(w)
        watcher.backoff_base, watcher.backoff_max = 0.05, 0.2
        watcher.start()
        try:
            # Dovecot delays each refusal after the first by ~4.5 s (its auth penalty)
            await eventually(lambda: _count(w, "mail.login_refused", 2), 30)
            await eventually(lambda: _failed_twice(watcher), 30)  # audited before counted
        finally:
            await watcher.stop()
        assert watcher.backoff() > watcher.backoff_base  # it backs off
        await w.h.say(instruction("mail_search", {}))
        told = [t for t in w.h.channel.texts() if "refused my login" in t]
        assert len(told) == 1, w.h.channel.texts()
        assert "EMAIL_PASSWORD" in told[0]
        assert all("CANARY-wrong-pw" not in t for t in w.h.channel.texts())
        status = await w.h.say("/status")  # the other commands keep working, and say why
        assert "Mail: me@example.org on 127.0.0.1; watching INBOX" in status
        assert "login refused (check EMAIL_PASSWORD)" in status
        assert (await w.h.say("/remind 10m stretch")).startswith("OK")
        await w.check_invariants()
    async with trust_world(tmp_path, reuse=True, **settings) as w:  # still wrong after a restart
        await w.h.say(instruction("mail_search", {}))
        assert [t for t in w.h.channel.texts() if "refused my login" in t] == []


async def test_the_briefing_brings_unread_mail_ranked_and_fenced(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    settings = mail_settings(dovecot, smtp_server)
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say("/mail watch from boss@corp.example")
        assert "unread mail" in await w.h.say("/briefing mail on")
        assert "Unread mail: on" in await w.h.say("/briefing")
        dovecot.deliver(plain_mail("News <news@letters.example>", "Weekly digest", "Links"))
        dovecot.deliver(plain_mail(BOSS, "Board meeting", "Slides by Friday."))
        dovecot.deliver(plain_mail("Ann <ann@partner.example>", "Already read", "x"), seen=True)
        owner = await owner_of(w)
        draft = await scheduler_of(w).draft_briefing(owner)
        prompt = draft.prompt
        assert "<untrusted id=" in prompt and 'source="mail:briefing"' in prompt
        boss, news = prompt.index("Board meeting"), prompt.index("Weekly digest")
        assert boss < news  # the watched sender first
        assert "[M1] From: The Boss <boss@corp.example>" in prompt
        assert "Already read" not in prompt and "Slides by Friday." in prompt
        await w.h.say("/briefing now")
        [turn] = [t for t in await w.h.turns() if t.kind == "briefing"]
        assert turn.tainted and any(s == "mail:boss@corp.example" for s in turn.label.sources)
        again = await scheduler_of(w).draft_briefing(owner)
        assert "No unread mail since the last briefing" in again.prompt
        assert "Board meeting" not in again.prompt
        await w.h.say("/briefing mail off")
        assert "Unread mail: off" in await w.h.say("/briefing")


async def test_without_idle_the_watcher_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, smtp_server: SmtpRecorder
) -> None:
    no_idle = "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ENABLE UIDPLUS MOVE\n"
    with dovecot_server(extra=no_idle) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        settings = mail_settings(server, smtp_server, EMAIL_POLL_SECONDS="5")
        async with trust_world(tmp_path, **settings) as w:
            await w.h.say("/mail watch subject report")
            watcher = watcher_of(w)
            stores = w.h.steward.stores
            watcher.start()
            try:
                await eventually(lambda: _marked(stores), 10)
                server.deliver(plain_mail("Ann <ann@partner.example>", "The report", "Done."))
                owner = await owner_of(w)
                await eventually(lambda: _noticed(stores, owner), 15)
                assert not watcher.idle_used  # the server offered no IDLE: it polled
            finally:
                await watcher.stop()


async def test_a_new_uidvalidity_starts_the_folder_over_without_repeats(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say("/mail watch from boss@corp.example")
        watcher = watcher_of(w)
        await watcher.check_once()
        dovecot.deliver(plain_mail(BOSS, "One", "First."))
        assert await watcher.check_once() == 1
        before = await w.h.steward.stores.mail.folder("INBOX")
        assert before is not None
        # the server loses its UID list (a restore, a migration): new UIDVALIDITY, new UIDs
        for name in (
            "dovecot-uidlist",
            "dovecot.index",
            "dovecot.index.log",
            "dovecot.index.cache",
        ):
            (dovecot.maildir() / name).unlink(missing_ok=True)
        dovecot.deliver(plain_mail("Ads <win@ads.example>", "Promo", "..."))
        assert await watcher.check_once() == 0  # what the folder holds now is the new start
        after = await w.h.steward.stores.mail.folder("INBOX")
        assert after is not None and after.uidvalidity != before.uidvalidity
        assert await w.audit_kinds("mail.uidvalidity_changed")
        dovecot.deliver(plain_mail(BOSS, "Two", "Second."))
        assert await watcher.check_once() == 1
        await scheduler_of(w).run_due()
        assert [n.split("\n")[0] for n in notices(w)] == [
            "📧 New mail from The Boss <boss@corp.example>: “One”",
            "📧 New mail from The Boss <boss@corp.example>: “Two”",
        ]


async def test_status_says_when_the_mail_server_does_not_answer(
    tmp_path: Path, smtp_server: SmtpRecorder
) -> None:
    """/status said "login ok" while the IMAP server could not be reached at all (review 28)."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    settings = mail_settings(None, smtp_server, EMAIL_IMAP_URL=f"imaps://me@127.0.0.1:{closed}")
    async with trust_world(tmp_path, **settings) as w:
        assert "login not tried yet" in await w.h.say("/status")
        await w.h.say(instruction("mail_search", {}))
        status = await w.h.say("/status")
        assert "login not reached since" in status and "(UTC): " in status, status
        assert "MailUnavailable" not in status  # the reason, not a wrapper's name
        assert "login ok" not in status


@pytest.mark.parametrize("tls", [True, False], ids=["aioimaplib", "imapclient"])
async def test_a_watched_folder_the_server_will_not_open_leaves_the_others_watched(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder, tls: bool
) -> None:
    """A folder in EMAIL_FOLDERS that is gone (renamed on the server) stopped every folder's
    notices, silently: each check failed on it and started over."""
    settings = mail_settings(
        dovecot,
        smtp_server,
        EMAIL_IMAP_URL=dovecot.imap_url(tls=tls),
        EMAIL_FOLDERS="Receipts,INBOX",
    )
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say("/mail watch from boss@corp.example")
        watcher = watcher_of(w)
        stores = w.h.steward.stores
        owner = await owner_of(w)
        watcher.start()
        try:
            await eventually(lambda: _marked(stores), 10)
            await asyncio.sleep(0.3)  # in IDLE on INBOX, the first folder that opens
            dovecot.deliver(plain_mail(BOSS, "Still here", "INBOX is watched."))
            await eventually(lambda: _noticed(stores, owner), 10)
        finally:
            await watcher.stop()
        await watcher.check_once()  # a second failure is not told again
        told = [t for t in w.h.channel.texts() if "would not open the folder" in t]
        assert len(told) == 1, w.h.channel.texts()
        assert '"Receipts"' in told[0] and "other folders are watched" in told[0]
        assert len(await w.audit_kinds("mail.folder_refused")) == 1
        status = await w.h.say("/status")
        assert "watching Receipts (the server would not open it), INBOX" in status
        dovecot.deliver(plain_mail(BOSS, "Old", "Was there first."), folder="Receipts")
        await watcher.check_once()  # it opens now: marked from what it holds
        assert await stores.mail.folder("Receipts") is not None
        dovecot.deliver(plain_mail(BOSS, "Filed", "Arrived in Receipts."), folder="Receipts")
        await watcher.check_once()
        texts = [n.text for n in await stores.mail.notices(owner.id)]
        assert any("Filed" in t for t in texts) and not any("Old" in t for t in texts), texts
        assert "watching Receipts, INBOX" in await w.h.say("/status")


async def test_mail_watched_from_a_group_is_told_in_the_private_chat(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """`/mail watch` typed in a group sent every notice there (review 118): a bank alert's
    reset code read by the whole group. A rule made in a group before goes private too."""
    group = Address("test", "g1")

    async def in_group(text: str) -> str:
        await w.h.router.dispatch(
            IncomingMessage(sender=OWNER, address=group, text=text, chat_kind=ChatKind.GROUP)
        )
        return w.h.channel.texts("g1")[-1]

    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say("hello")  # the owner's private chat, c1
        said = await in_group("/mail watch subject invoice")
        assert "private chat" in said and "invoice" not in said, said
        owner = await owner_of(w)
        group_chat = await w.h.steward.stores.people.chat("test", "g1")
        assert group_chat is not None
        await w.h.steward.stores.mail.add_rule(  # as a rule made in the group was stored
            owner.id, "subject", "alert", chat_id=group_chat.id, destination=address_to_json(group)
        )
        watcher = watcher_of(w)
        await watcher.check_once()
        dovecot.deliver(plain_mail("Bank <a@bank.example>", "Invoice 4242", "Reset code 918273."))
        dovecot.deliver(plain_mail("Bank <a@bank.example>", "Login alert", "Code 555123."))
        assert await watcher.check_once() == 2
        await scheduler_of(w).run_due()
        assert [t for t in w.h.channel.texts("g1") if "📧" in t] == []
        private = notices(w)
        assert len(private) == 2 and any("918273" in t for t in private), private


class _Counting:
    """The watcher's IMAP session, passed through, counting the headers it asks for."""

    def __init__(self, session: Any) -> None:
        self.session, self.asked = session, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)

    async def headers(self, uids: Any, *, header: bool = True) -> Any:
        self.asked += len(uids) if header else 0
        return await self.session.headers(uids, header=header)


async def test_stale_unread_mail_already_told_of_is_not_read_again(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """Each pass read the headers of up to 200 stale unread messages, told of or not: any
    sender sets off a pass, and 200 headers of 128 KB were 5 s (review 118)."""
    two_days_ago = time.time() - 2 * 86400
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say("/mail watch unread older than a day")
        watcher = watcher_of(w)
        rule = (await w.h.steward.stores.mail.rules())[0]
        await w.h.steward.stores.db.execute(  # made before the mail came: all of it is news
            "UPDATE mail_watch_rules SET created_at = ? WHERE id = ?",
            (datetime.fromtimestamp(two_days_ago - 3600, UTC).isoformat(), rule.id),
        )
        for n in range(3):
            dovecot.deliver(plain_mail(BOSS, f"Old {n}", "x"), received=two_days_ago)
        dovecot.deliver(plain_mail(BOSS, "New", "x"))  # unread, but not for a day yet
        async with watcher.service.session() as session:
            first = _Counting(session)
            assert await watcher.check_once(first) == 3
            again = _Counting(session)
            assert await watcher.check_once(again) == 0
        assert first.asked == 3, first.asked  # the new one not at all
        assert again.asked == 0, again.asked


async def test_unread_mail_not_yet_stale_or_older_than_the_rule_is_not_read(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """Mail from late yesterday (under a day old, yet BEFORE today) and a backlog from before
    the rule were header-fetched on every pass, never told of (R119)."""
    now = time.time()
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        for n in range(3):
            dovecot.deliver(plain_mail(BOSS, f"Backlog {n}", "x"), received=now - 3 * 86400)
        await w.h.say("/mail watch unread older than a day")
        for n in range(3):
            dovecot.deliver(plain_mail(BOSS, f"Late {n}", "x"), received=now - 20 * 3600)
        watcher = watcher_of(w)
        async with watcher.service.session() as session:
            passes = []
            for _ in range(2):
                counting = _Counting(session)
                passes.append((await watcher.check_once(counting), counting.asked))
        assert passes == [(0, 0), (0, 0)], passes


async def test_notices_made_before_a_clock_set_back_do_not_fold_the_next_mail(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """R224: the hour's count of notices had no upper bound, so after the clock was set back
    two hours the burst made "later" still counted, and the next mail was folded into a
    digest instead of being told."""
    from agent.mail.watch import NOTICE_BURST

    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    async with trust_world(tmp_path, clock=clock, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say("/mail watch from corp.example")
        watcher = watcher_of(w)
        await watcher.check_once()
        for n in range(NOTICE_BURST):
            dovecot.deliver(plain_mail("Boss <boss@corp.example>", f"Urgent {n}", "Now."))
        assert await watcher.check_once() == NOTICE_BURST
        await scheduler_of(w).run_due()
        assert len(notices(w)) == NOTICE_BURST
        clock.advance(-timedelta(hours=2))  # NTP steps a clock that ran fast
        dovecot.deliver(plain_mail("Ann <ann@corp.example>", "Lunch?", "At one."))
        assert await watcher.check_once() == 1
        await scheduler_of(w).run_due()
        assert len(notices(w)) == NOTICE_BURST + 1
        assert notices(w)[-1].startswith("📧 New mail from Ann"), notices(w)[-1]
