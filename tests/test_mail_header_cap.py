"""A message's header block is read up to HEADER_LIMIT (review 81): 8 MB of short `X-Pad:`
lines were fetched and parsed whole by every listing, the watcher and the briefing (2.5 s and
80 MiB a message). Against real Dovecot, through both IMAP libraries: what a listing fetched is
Dovecot's own count of the bytes it sent, never a time."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from mailservers import (
    Dovecot,
    SmtpRecorder,
    mail_settings,
    plain_mail,
)
from trust_world import trust_world

from agent.mail.header_cap import CUT_NOTE, HEADER_LIMIT
from agent.mail.imap import SearchQuery
from agent.mail.parsed import ParsedMail
from agent.mail.rules import notice_text
from agent.mail.service import ReadResult
from agent.mail.watch import MailWatcher
from agent.tools.mail import render_read

PAD = (b"X-Pad: " + b"a" * 90 + b"\r\n") * (2 * 2**20 // 99)  # 2 MB of short header lines
BOSS = b"From: The Boss <boss@corp.example>\r\nTo: me@example.org\r\nSubject: padded first\r\n"
BOMB_AFTER = BOSS + b"Message-ID: <after@corp.example>\r\n" + PAD + b"\r\nhi\r\n"
BOMB_BEFORE = b"Message-ID: <before@corp.example>\r\n" + PAD + BOSS + b"\r\nhi there\r\n"


def sent_by_dovecot(dovecot: Dovecot) -> list[int]:
    """The bytes Dovecot sent in each IMAP session ended so far: its own count, logged at
    logout (`out=`), so what a listing fetched is measured at the wire."""
    return [int(n) for n in re.findall(r"Logged out in=\d+ out=(\d+)", dovecot.log())]


async def until_logged_out(dovecot: Dovecot, sessions: int) -> list[int]:
    for _ in range(100):
        if len(sent := sent_by_dovecot(dovecot)) >= sessions:
            return sent
        await asyncio.sleep(0.05)
    raise AssertionError(f"no logout logged: {dovecot.log()[-2000:]}")


@pytest.mark.parametrize("tls", [True, False], ids=["imaps-aioimaplib", "starttls-imapclient"])
async def test_a_huge_header_block_is_read_up_to_the_limit_and_never_misread(
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_server: SmtpRecorder,
    tls: bool,
) -> None:
    normal = plain_mail(
        "Ann Example <ann@partner.example>",
        "Lunch on Friday",
        "Friday at noon?",
        Reply_To="Ann <ann.private@partner.example>",
        Date="Thu, 03 Dec 2026 09:15:00 +0000",
        In_Reply_To="<earlier@partner.example>",
        References="<first@partner.example> <earlier@partner.example>",
    )
    dovecot.deliver(normal)  # UID 1
    dovecot.deliver(BOMB_AFTER)  # UID 2: the padding after From and Subject
    dovecot.deliver(BOMB_BEFORE)  # UID 3: the padding before them
    settings = mail_settings(dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=tls))
    async with trust_world(tmp_path, **settings) as w:
        watcher = w.h.steward.mail
        assert isinstance(watcher, MailWatcher)
        service = watcher.service
        before = len(sent_by_dovecot(dovecot))  # the watcher's own sessions, if any
        listed = {hit.uid: hit.mail for hit in await service.search("INBOX", SearchQuery(), 20)}
        sent = (await until_logged_out(dovecot, before + 1))[before:]
        # three header blocks of up to HEADER_LIMIT, not two of 2 MB (4.2 MB before)
        assert sum(sent) < 3 * HEADER_LIMIT + 20_000, sent
        read = {uid: (await service.read("INBOX", uid)).mail for uid in (1, 2, 3)}

    for mail in (listed[1], read[1]):  # a normal message: every header as written, no note
        assert mail.sender == "Ann Example <ann@partner.example>"
        assert mail.sender_address == "ann@partner.example"
        assert mail.to == "me@example.org" and mail.subject == "Lunch on Friday"
        assert mail.reply_to == "Ann <ann.private@partner.example>"
        assert mail.date_text == "Thu, 03 Dec 2026 09:15:00 +0000" and mail.date is not None
        assert mail.message_id == normal["Message-ID"]
        assert mail.references == "<first@partner.example> <earlier@partner.example>"
        assert mail.problems == []
    assert read[1].text == "Friday at noon?"

    for mail in (listed[2], read[2]):  # before the cut: read, and the cut is said
        assert mail.sender_address == "boss@corp.example" and mail.subject == "padded first"
        assert mail.message_id == "<after@corp.example>"
        assert CUT_NOTE in mail.problems
    assert read[2].text == "hi"

    for mail in (listed[3], read[3]):  # after the cut: no sender and no subject, never others
        assert (mail.sender, mail.sender_address, mail.subject, mail.to) == ("", "", "", "")
        assert mail.message_id == "<before@corp.example>"
        assert CUT_NOTE in mail.problems
    assert read[3].text == "hi there"


async def test_where_a_cut_header_block_is_shown_it_says_so() -> None:
    """What the model reads (mail_read) and the watcher's notice name the cut."""
    from agent.mail.message import parse_message

    mail = parse_message(BOMB_BEFORE)
    shown = render_read(ReadResult("INBOX", 1, 3, len(BOMB_BEFORE), False, mail), 20_000)
    assert "From: (none)" in shown and "Subject: (none)" in shown and CUT_NOTE in shown
    notice = notice_text(mail, stale=False, size=len(BOMB_BEFORE))
    assert "(no sender)" in notice and CUT_NOTE in notice and "boss" not in notice


def test_a_long_message_is_read_on_from_where_it_was_cut() -> None:
    """A 65 KB contract stopped at 20,000 characters, and its last clause could not be reached
    (R133): the cut says where to read on, and `offset` reads from there, to the end."""
    text = "".join(f"Clause {n}: the parties agree.\n" for n in range(2_000)) + "FINAL CLAUSE"
    result = ReadResult("INBOX", 1, 3, len(text), False, ParsedMail(subject="Contract", text=text))
    pages, where = [], 0
    while True:
        page = render_read(result, 20_000, where)
        pages.append(page.split("\n\n", 1)[1].split("\n… (")[0])
        found = re.search(r"offset=(\d+)", page)
        if found is None:
            break
        where = int(found[1])
    assert len(pages) >= 3 and "".join(pages) == text
