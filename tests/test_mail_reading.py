"""How a message reads (agent/mail/message.py `parse_message`), on messages as mail clients
write them: Windows-1252 sent as ISO-8859-1, script mail with no charset, Apple Mail's inline
attachments, a message forwarded as an attachment, a calendar invite; and a reply to the
owner's own message, answered to whom it was written (real Dovecot and aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailservers import (
    USER,
    Dovecot,
    SmtpRecorder,
    mail_settings,
    plain_mail,
    running_dovecot,
    running_smtp,
)
from test_mail import _pending
from trust_world import instruction, trust_world

from agent.mail.message import parse_message

WINDOWS_MAIL = (  # Outlook and other Windows clients label Windows-1252 as ISO-8859-1
    b"From: Ann <ann@partner.example>\r\nTo: me@example.org\r\nSubject: Invoice\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
    b"It\x92s \x93final\x94: the total is \x80 1,200.\r\n"
)
SCRIPT_MAIL = (  # cron, scripts, web forms: 8-bit UTF-8 with no charset at all
    b"From: Backup job <root@server.example>\r\nTo: me@example.org\r\nSubject: nightly\r\n\r\n"
    + "Sicherung für Müller: 3 Dateien übersprungen\r\n".encode()
)
APPLE_MAIL = (  # Apple Mail sends attachments as `inline` parts with a file name
    b"From: Ann <ann@partner.example>\r\nTo: me@example.org\r\nSubject: Q3 numbers\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe numbers are attached.\r\n"
    b'--B\r\nContent-Type: text/csv; name="q3.csv"\r\n'
    b'Content-Disposition: inline; filename="q3.csv"\r\n\r\nregion,revenue\r\nnorth,100\r\n'
    b'--B\r\nContent-Type: text/plain; name="notes.txt"\r\n'
    b'Content-Disposition: inline; filename="notes.txt"\r\n\r\nDRAFT NOTES FROM A FILE\r\n'
    b"--B\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n"
    b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    b"--B--\r\n"
)


def test_windows_and_script_mail_read_as_written() -> None:
    """The euro sign and the quotes were C1 control characters; undeclared UTF-8 was U+FFFD."""
    assert parse_message(WINDOWS_MAIL).text == "It’s “final”: the total is € 1,200."
    assert parse_message(SCRIPT_MAIL).text == "Sicherung für Müller: 3 Dateien übersprungen"


def test_inline_attachments_are_attachments_not_body_or_nothing() -> None:
    """An inline CSV vanished, an inline .txt was read as the sender's words, an invite was
    neither text nor attachment."""
    mail = parse_message(APPLE_MAIL)
    assert mail.text == "The numbers are attached."
    names = [(a.name, a.content_type) for a in mail.attachments]
    assert names == [
        ("q3.csv", "text/csv"),
        ("notes.txt", "text/plain"),
        ("(unnamed)", "text/calendar"),
    ]


def test_a_forwarded_message_reads_as_its_authors_not_the_forwarders() -> None:
    """Forwarded as an attachment, "Please wire 40,000 EUR today." followed the boss's "Do NOT
    pay." as if the boss wrote it, and its iban.pdf was listed as the boss's."""
    inner = EmailMessage()
    inner["From"] = "Mallory <mallory@scam.example>"
    inner["To"] = "boss@corp.example"
    inner["Subject"] = "Urgent wire"
    inner.set_content("Please wire 40,000 EUR today.")
    inner.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="iban.pdf")
    outer = plain_mail(
        "Boss <boss@corp.example>", "Fwd: Urgent wire", "Is this a scam? Do NOT pay."
    )
    outer.add_attachment(inner)
    mail = parse_message(outer.as_bytes())
    own, forwarded = mail.text.split("---------- Forwarded message ----------")
    assert own.strip() == "Is this a scam? Do NOT pay."
    assert "From: Mallory <mallory@scam.example>" in forwarded
    assert "Subject: Urgent wire" in forwarded and "Please wire 40,000 EUR today." in forwarded
    assert [a.name for a in mail.attachments] == ["(forwarded) iban.pdf"]


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    yield from running_dovecot(monkeypatch)


@pytest.fixture
def smtp_server() -> Iterator[SmtpRecorder]:
    yield from running_smtp()


async def test_a_reply_to_the_owners_own_message_goes_to_whom_it_was_written(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """ "Follow up on my mail to Ann" (their own message, Cc'd to themself): the card said
    To: the owner, and approving it mailed the owner instead of Ann."""
    mine = plain_mail(f"Me <{USER}>", "Contract draft", "Ann, here is the draft.")
    mine.replace_header("To", "Ann <ann@partner.example>")
    mine["Cc"] = f"{USER}, Bob <BOB@partner.example>"
    dovecot.deliver(mine)
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Any news?"}))
        [card] = _pending(w, "mail_reply")
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "All?", "reply_all": True}))
        [_, everyone] = _pending(w, "mail_reply")
    assert "To: ann@partner.example" in card.preview and f"To: {USER}" not in card.preview
    addressed = [ln for ln in everyone.preview.splitlines() if ln.startswith(("To:", "Cc:"))]
    assert addressed == ["To: ann@partner.example", "Cc: BOB@partner.example"]
