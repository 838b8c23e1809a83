"""`MailService`: the mailbox as tools, commands, the watcher and the briefing use it.

(Over 400 lines: one short method per mailbox operation over the one session rule below, and
the reply's rules for whom it goes to; the protocol, parsing and rendering are in the other
modules of agent/mail/.)

Each operation opens its own IMAP session (a login is a few milliseconds against a nearby server
and keeps no state to go stale); the watcher keeps one open for IDLE. The message a reply
answers is the one thing kept: read once for its card and once for its approval (R264). A
refused IMAP login is told to the owner once, until a login succeeds again, and audited; the
other channels never notice. A refused SMTP login is told each time, as the mail it did not send.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Literal

from agent.mail.account import MailAccount
from agent.mail.dated_search import arrived_within
from agent.mail.errors import MailError, MailLoginRefused
from agent.mail.imap import FolderState, HeaderItem, ImapSession, SearchQuery
from agent.mail.imap_aio import AioImapSession
from agent.mail.imap_thread import ThreadedImapSession
from agent.mail.message import (
    LookAlikeAddress,
    ParsedMail,
    Recipients,
    build_message,
    build_reply,
    parse_headers,
    parse_message,
    parse_recipients,
    read_headers,
)
from agent.mail.smtp import send_mail
from memory.clock import Clock
from memory.stores import Stores

__all__ = [
    "LOGIN_REFUSED",
    "MARK_SECRET",
    "Hits",
    "Listed",
    "MailService",
    "OwnerNote",
    "ReadResult",
    "Reply",
    "check_folder_name",
    "open_session",
]

log = logging.getLogger(__name__)

OwnerNote = Callable[[str], Awaitable[None]]
"""Tells the owner something Steward itself says (a plain, trusted message)."""

LOGIN_REFUSED = "mail.login_refused_reported"
CONTACT = "mail.contact"
"""How the last attempt to reach the IMAP server went, for /status: "ok", or "unreachable"
with when that began and why (JSON). /status said "login ok" with the server down."""
"""State key: "1" while a refused login has been told to the owner and no login has worked."""
MARK_SECRET = "mail.mark_secret"
"""State key: this install's secret for the marks around a forwarded message (R194)."""
_UNREADABLE = "(its headers could not be read)"


@dataclass(frozen=True)
class Listed:
    """One search hit."""

    folder: str
    uidvalidity: int
    uid: int
    seen: bool
    size: int
    arrived: datetime | None
    mail: ParsedMail


class Hits(list[Listed]):
    """The newest search hits, newest first; `total`: how many matched in all (R133: "20
    message(s)" was said of 47 unread)."""

    def __init__(self, hits: list[Listed], *, total: int) -> None:
        super().__init__(hits)
        self.total = total


@dataclass(frozen=True)
class ReadResult:
    folder: str
    uidvalidity: int
    uid: int
    size: int
    seen: bool
    mail: ParsedMail
    too_big: bool = False


ReadFor = Literal["card", "approval", "approved"]
"""Why a reply's message is read: for its card (a read of the last CARD_KEPT seconds serves),
for its approval (read again), or to send it once approved (the approval's read of the last
APPROVAL_KEPT seconds serves, else read again)."""
CARD_KEPT = 30.0
APPROVAL_KEPT = 10.0
_ORIGINALS_KEPT = 8


@dataclass(frozen=True)
class _Kept:
    at: float
    original: ReadResult
    sent: bool
    checked: bool
    """Read for an approval."""


@dataclass(frozen=True)
class Reply:
    """A reply as it would be sent: what the approval card shows and what goes out."""

    recipients: Recipients
    subject: str
    body: str
    in_reply_to: str
    references: str
    original: ReadResult
    note: str = ""
    """What the card should say about whom it goes to, when that is not plain."""


async def open_session(account: MailAccount) -> ImapSession:
    """Connect and log in. MailLoginRefused: wrong credentials; MailUnavailable: no server."""
    server = account.imap
    if server is None:
        raise MailError("no IMAP server is configured (EMAIL_IMAP_URL)", ours=True)
    password = account.password.get_secret_value()
    if server.implicit_tls:
        return await AioImapSession.connect(server, password)
    return await ThreadedImapSession.connect(server, password)


class MailService:
    def __init__(
        self,
        account: MailAccount,
        stores: Stores,
        clock: Clock,
        *,
        tell_owner: OwnerNote | None = None,
    ) -> None:
        self.account = account
        self.stores = stores
        self.clock = clock
        self.tell_owner = tell_owner
        self._mark_secret: bytes | None = None
        self._mark_lock = asyncio.Lock()  # two first reads make one secret
        self._originals: dict[tuple[str, int], _Kept] = {}

    # -- sessions and the login ---------------------------------------------------------------

    async def open(self) -> ImapSession:
        try:
            session = await open_session(self.account)
        except MailLoginRefused as exc:
            await self._contact(None)
            await self.login_refused(exc)
            raise
        except Exception as exc:  # its kind only: a server's own words stay out of /status
            await self._contact(_reason(exc))
            raise
        await self._contact(None)
        await self.login_ok()
        return session

    async def _contact(self, problem: str | None) -> None:
        """Record whether the server answered; the time only when that changes."""
        state = self.stores.state
        now = json.loads(await state.get(CONTACT) or "{}")
        if now.get("problem") == problem and now:
            return
        await state.set(
            CONTACT, json.dumps({"problem": problem, "since": self.clock.now().isoformat()})
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ImapSession]:
        session = await self.open()
        try:
            yield session
        finally:
            await session.logout()

    async def login_refused(self, exc: MailLoginRefused) -> None:
        """Tell the owner once (until a login works again), and audit every refusal."""
        await self.stores.audit.record("mail.login_refused", actor="steward", subject=str(exc))
        if not await self.stores.state.set_if_changed(LOGIN_REFUSED, "1"):
            return
        log.warning("mail: %s", exc)
        if self.tell_owner is not None:
            await self.tell_owner(
                f"The mail server refused my login ({exc}). Check EMAIL_PASSWORD and the user "
                "name in EMAIL_IMAP_URL / EMAIL_SMTP_URL; I keep retrying with growing pauses."
            )

    async def sending_refused(self, exc: MailLoginRefused) -> None:
        """A refused SMTP login is told each time: nothing retries a send, the mail is lost
        unless the owner sends it again (the watcher's IMAP login is `login_refused`)."""
        await self.stores.audit.record("mail.login_refused", actor="steward", subject=str(exc))
        log.warning("mail: %s", exc)
        if self.tell_owner is not None:
            await self.tell_owner(
                f"The mail server refused my login for sending ({exc}), so that mail was NOT "
                "sent. Check EMAIL_PASSWORD and the user name in EMAIL_SMTP_URL, then ask again."
            )

    async def login_ok(self) -> None:
        if await self.stores.state.get(LOGIN_REFUSED) == "1":
            await self.stores.state.set(LOGIN_REFUSED, "0")
            log.info("mail: the login works again")

    # -- reading ------------------------------------------------------------------------------

    async def search(
        self, folder: str, query: SearchQuery, limit: int = 20, *, zone: tzinfo | None = None
    ) -> Hits:
        """The newest `limit` matches, newest first, and how many matched in all. `zone`: the
        days of `since` and `before` are the person's there, not the server's."""
        _folder_name(folder)
        async with self.session() as session:
            state = await session.select(folder)
            if zone is not None and (query.since or query.before):
                matched = await arrived_within(session, query, zone)
            else:
                matched = await session.search(query)
            uids = matched[-limit:]
            items = sorted(await session.headers(uids), key=lambda i: i.uid, reverse=True)
        # off the loop (a long header costs); one that cannot be read is listed as such
        heads = await asyncio.to_thread(read_headers, [i.header for i in items])
        listed = []
        for item, mail in zip(items, heads, strict=True):
            if mail is None:
                log.warning(
                    "mail: message %s in %s unreadable; listed without headers", item.uid, folder
                )
                mail = ParsedMail(subject=_UNREADABLE, problems=[_UNREADABLE])
            listed.append(
                Listed(
                    folder,
                    state.uidvalidity,
                    item.uid,
                    item.seen,
                    item.size,
                    item.internaldate,
                    mail,
                )
            )
        return Hits(listed, total=len(matched))

    async def read(self, folder: str, uid: int) -> ReadResult:
        _folder_name(folder)
        async with self.session() as session:
            return await self._read(session, folder, uid)

    async def _read(self, session: ImapSession, folder: str, uid: int) -> ReadResult:
        state = await session.select(folder)
        items = await session.headers([uid])
        if not items:
            raise MailError(f"there is no message with UID {uid} in {folder}", ours=True)
        item = items[0]
        if item.size > self.account.max_bytes:
            return ReadResult(
                folder,
                state.uidvalidity,
                uid,
                item.size,
                item.seen,
                await asyncio.to_thread(parse_headers, item.header),
                True,
            )
        raw = await session.message(uid)
        if raw is None:
            raise MailError(f"the server did not return message {uid} in {folder}", ours=True)
        key = await self._marks()
        mail = await asyncio.to_thread(parse_message, raw, mark_key=key)  # 20 MB: off the loop
        return ReadResult(folder, state.uidvalidity, uid, item.size, item.seen, mail)

    async def _original(self, folder: str, uid: int, read: ReadFor) -> tuple[ReadResult, bool]:
        """The message a reply answers, and whether it is in a Sent folder: read once for a
        card's precheck, fingerprint and preview, and once for its approval, which the approved
        reply then sends (R264: five reads of a 15 MB mail). Each read is of the whole message
        (R266: read by its parts, the server's idea of where a part ends let a reply quote
        what the read showed differently). An approval always reads again, so a message
        moved, deleted or replaced since the card is found out."""
        now = time.monotonic()
        for old in [k for k, v in self._originals.items() if now - v.at >= CARD_KEPT]:
            del self._originals[old]  # a mail's text is not held longer than it serves
        kept = self._originals.get((folder, uid))
        if kept is not None and read != "approval":
            age = now - kept.at
            if (read == "card" and age < CARD_KEPT) or (kept.checked and age < APPROVAL_KEPT):
                return kept.original, kept.sent
        async with self.session() as session:
            original = await self._read(session, folder, uid)
            sent = _sent_folder(folder) or any(
                f.sent and f.name == folder for f in await session.folders()
            )
        self._originals.pop((folder, uid), None)
        while len(self._originals) >= _ORIGINALS_KEPT:
            self._originals.pop(next(iter(self._originals)))
        self._originals[(folder, uid)] = _Kept(now, original, sent, checked=read == "approval")
        return original, sent

    async def _marks(self) -> bytes:
        """The secret a read message's forwarded-message marks are drawn from (made on first
        use, kept): a reply re-reads its mail when sent, and must quote it with the marks the
        approved card showed, also after a restart (R194)."""
        async with self._mark_lock:
            if self._mark_secret is None:
                stored = await self.stores.state.get(MARK_SECRET)
                if stored is None:
                    stored = secrets.token_hex(32)
                    await self.stores.state.set(MARK_SECRET, stored)
                self._mark_secret = bytes.fromhex(stored)
            return self._mark_secret

    async def folder_state(self, session: ImapSession, folder: str) -> FolderState:
        _folder_name(folder)  # one line of text before it reaches the server
        return await session.select(folder)

    async def headers(self, session: ImapSession, uids: Sequence[int]) -> list[HeaderItem]:
        return await session.headers(uids)

    # -- changing -----------------------------------------------------------------------------

    async def move(
        self, folder: str, uids: Sequence[int], target: str, *, uidvalidity: int | None = None
    ) -> None:
        """Move; with `uidvalidity`, only while the folder still has it (the UIDs an approval
        named are the same messages only then)."""
        _folder_name(folder)
        _folder_name(target)
        async with self.session() as session:
            names = [f.name for f in await session.folders()]
            if target not in names:
                raise MailError(f"there is no folder {target!r} (folders: {', '.join(names)})")
            _same_folder(await session.select(folder, readonly=False), uidvalidity)
            await session.move(uids, target)

    async def flag(
        self,
        folder: str,
        uids: Sequence[int],
        flags: Sequence[str],
        add: bool,
        *,
        uidvalidity: int | None = None,
    ) -> None:
        """Set or clear flags; `uidvalidity` as for `move`."""
        _folder_name(folder)
        async with self.session() as session:
            _same_folder(await session.select(folder, readonly=False), uidvalidity)
            await session.set_flags(uids, flags, add=add)

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self,
        recipients: Recipients,
        subject: str,
        body: str,
        attachments: list[tuple[str, bytes]],
        *,
        in_reply_to: str = "",
        references: str = "",
    ) -> tuple[str, dict[str, str]]:
        """Send; the new message's Message-ID, and the recipients the server refused (each
        with its code) while it took the others."""
        message = await asyncio.to_thread(  # 25 MB of files in base64: off the loop (R241)
            build_message,
            sender=self.account.sender,
            recipients=recipients,
            subject=subject,
            body=body,
            attachments=attachments,
            in_reply_to=in_reply_to,
            references=references,
        )
        try:
            refused = await send_mail(self.account, message, recipients.everyone)
        except MailLoginRefused as exc:
            await self.sending_refused(exc)
            raise
        return str(message["Message-ID"]), refused

    async def reply(
        self,
        folder: str,
        uid: int,
        body: str,
        *,
        reply_all: bool,
        extra_cc: Sequence[str] = (),
        read: ReadFor = "card",
    ) -> Reply:
        """The reply to one message as it would go out (nothing is sent here). `read`: for
        whom the message is read (`_original`)."""
        _folder_name(folder)
        original, sent = await self._original(folder, uid, read)
        mail = original.mail
        own = self.account.own_addresses
        try:  # the sender wrote these headers: say what is wrong without quoting them
            to = parse_recipients(mail.reply_to or mail.sender)
        except LookAlikeAddress:  # R194
            raise MailError(
                f"message {uid} is not answered here: its Reply-To / From address mixes letters "
                "of different scripts, so it may imitate another address; use mail_send with an "
                "address you know",
                ours=True,
            ) from None
        except ValueError:
            raise MailError(
                f"message {uid} cannot be answered: its Reply-To / From is not an address "
                "mail can be sent to; use mail_send with an address you know",
                ours=True,
            ) from None
        if not to:
            raise MailError("the message has no sender address to reply to", ours=True)
        note = _diverted(mail, to) if mail.sender_address not in own else ""
        if mail.sender_address in own:
            # From is the sender's to write: only a message in the Sent folder is known to be
            # the owner's, and is answered to whom it was written to, as mail clients do;
            # one elsewhere that says it is the owner's is answered back to the owner
            written_to = tuple(a for a in _sendable(mail.to) if a.lower() not in own)
            copied = [a for a in _sendable(mail.cc) if a.lower() not in own] if mail.cc else []
            elsewhere = bool(written_to or copied) or any(a.lower() not in own for a in to)
            if sent:  # the owner's own: to whom it was written (else to them,
                to = written_to or (self.account.from_address,)  # never a Reply-To's stranger)
            else:
                to, reply_all = (self.account.from_address,), False
            if elsewhere and not sent:
                note = (
                    "This message says it is from you (anyone can write that), so the reply "
                    "goes back to you only, whatever its Reply-To or other recipients; to "
                    "answer whom you wrote to, reply to it in your Sent folder."
                )
        to = _unique(to)
        cc: tuple[str, ...] = ()
        if reply_all:
            listed = [x for x in (mail.to, mail.cc) if x]
            others = tuple(a for x in listed for a in _sendable(x))
            cc = tuple(a for a in others if a.lower() not in own)
            if mail.sender_address not in own:  # as mail clients do: its To stay in To (R133)
                written = [a for a in _sendable(mail.to) if a.lower() not in own] if mail.to else []
                to = _unique((*to, *written))
        taken = {a.lower() for a in to}
        cc = tuple(a for a in _unique((*cc, *extra_cc)) if a.lower() not in taken)
        subject, text, in_reply_to, references = build_reply(mail, body)
        return Reply(Recipients(to, cc), subject, text, in_reply_to, references, original, note)


def _diverted(mail: ParsedMail, to: tuple[str, ...]) -> str:
    """What the card says when the message's Reply-To sends the reply elsewhere than its From
    (R241: a card from "The Boss <boss@corp.example>" listed a look-alike domain in To, with no
    word that the reply does not go to the sender)."""
    sender = mail.sender_address
    elsewhere = [a for a in to if a.lower() != sender]
    if not elsewhere:
        return ""
    named = ", ".join(elsewhere[:3]) + (
        f" and {len(elsewhere) - 3} more (all in To)" if len(elsewhere) > 3 else ""
    )
    # review 36: a From may list several addresses ("The Boss <boss@…>, pay@evil.example"),
    # and a reply goes to all of them while the card named the first
    by = "its Reply-To" if mail.reply_to else "its From, which names more than one address,"
    if len(elsewhere) < len(to):
        return f"Note: {by} sends this reply to {named} as well as to the sender {sender}."
    return (
        f"Note: {by} sends this reply to {named}, not to the sender "
        f"{sender or '(its From names no address)'}."
    )


_SENT = re.compile(
    r"(^|[./])(sent|sent items|sent messages|sent mail|gesendet|gesendete (elemente|objekte)"
    r"|envoy[ée]s|(messages|[ée]l[ée]ments) envoy[ée]s|enviados|elementos enviados"
    r"|posta inviata|inviati|elementi inviati|verzonden( items)?|skickat|enviadas)$",
    re.I,
)


def _sent_folder(folder: str) -> bool:
    """A folder of what the owner sent by its name, for servers that do not mark it `\\Sent`
    (RFC 6154) ("Sent", "Sent Items", "[Gmail]/Sent Mail", "INBOX.Sent",
    "Gesendete Elemente", "[Gmail]/Messages envoy&AOk-s" as IMAP spells "envoyés")."""
    return bool(_SENT.search(_imap_utf7(folder.strip())))


def _imap_utf7(name: str) -> str:
    """A mailbox name as IMAP writes it (RFC 3501's modified UTF-7: "&AOk-" is "é")."""

    def decoded(match: re.Match[str]) -> str:
        if not match[1]:
            return "&"
        packed = match[1].replace(",", "/")
        try:
            return base64.b64decode(packed + "=" * (-len(packed) % 4)).decode("utf-16-be")
        except ValueError:
            return match[0]

    return re.sub(r"&([A-Za-z0-9+,]*)-", decoded, name)


def _unique(addresses: Sequence[str]) -> tuple[str, ...]:
    """Each address once, whatever its letter case (the first spelling kept)."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def _sendable(field: str) -> tuple[str, ...]:
    """The addresses of a To / Cc header that mail can be sent to (odd ones left out)."""
    try:
        return parse_recipients(field)
    except ValueError:
        parts = [p for p in field.split(",") if p.strip()]
        found: list[str] = []
        for part in parts:
            try:
                found += parse_recipients(part)
            except ValueError:
                continue
        return tuple(found)


def check_folder_name(folder: str) -> None:
    """MailError unless `folder` can be a folder's name (see `_folder_name`)."""
    _folder_name(folder)


def _same_folder(state: FolderState, uidvalidity: int | None) -> None:
    if uidvalidity is not None and state.uidvalidity != uidvalidity:
        raise MailError(
            f"{state.name} was rebuilt on the server since its messages were looked at (its "
            "UIDVALIDITY changed), so their UIDs name other messages now; nothing was changed: "
            "search again",
            ours=True,
        )


def _folder_name(folder: str) -> None:
    """A folder name is one line of text: a line break or NUL (which the IMAP libraries refuse
    by raising) is a clear refusal for the model instead."""
    if not folder or any(ord(c) < 32 or ord(c) == 127 for c in folder):
        raise MailError(f"{folder!r} is not a folder name", ours=True)


def _reason(exc: BaseException) -> str:
    """Why the server could not be reached, in the system's words (an OSError's, through
    whatever wrapped it), else the error's kind; never the server's own text."""
    seen: BaseException | None = exc
    for _ in range(5):
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        if isinstance(seen, TimeoutError):
            return "timed out"
        if seen is None:
            break
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__
