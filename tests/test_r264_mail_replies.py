"""R264: a reply to a large mail, and a reply approved while the mail server is away.

Against real servers (Dovecot, aiosmtpd). What crossed the wire is Dovecot's own account of
each session, written to its log when the session ends (`imap_logout_format`: the bytes it
sent, the fetches that read a body), and its login lines: nothing of Steward is patched.

- R264-2: answering a mail with a 6 MB attachment fetched it whole five times (precheck,
  preview, fingerprint, the approval's fingerprint, the send) over six logins. Now it is
  fetched whole once for the card and once for the approval, which the send uses.
- R266: read by its parts (Dovecot's BODYSTRUCTURE), a hostile mail whose line only starts
  with the boundary was split where Python's parser does not split it: the reply quoted text
  the read never showed, or left out text it showed. The reply quotes a whole read again.
- R264-3: a reply approved while the server was down, or after a password change, was denied
  for good as "changed". Now it fails saying the server could not be reached, nothing sent,
  and a message deleted since the card is still found out at the approval.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from mailservers import (
    USER,
    Dovecot,
    SmtpRecorder,
    _wait_port,
    dovecot_server,
    mail_settings,
    plain_mail,
    received_messages,
)
from trust_world import World, instruction, trust_world

from agent.mail.message import build_reply, parse_message
from memory.approvals import ApprovalStatus

_ACCOUNTING = """
protocol imap {
  imap_logout_format = out=%o fetch_body=%{fetch_body_count}/%{fetch_body_bytes}
}
"""
_ENDED = re.compile(r"imap\(.*?out=(\d+) fetch_body=(\d+)/(\d+)")


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    """Dovecot logging, for each session as it ends, what it sent."""
    with dovecot_server(extra=_ACCOUNTING) as server:
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
        yield server


async def _wire(server: Dovecot) -> tuple[int, int, int]:
    """(logins, body fetches, body bytes fetched) so far, by Dovecot's log; each session's
    line is written as it ends, so the count waits for every login's line."""
    for _ in range(50):
        log = server.log()
        logins = log.count("imap-login: Info: Login: ")
        ended = _ENDED.findall(log)
        if len(ended) >= logins:
            break
        await asyncio.sleep(0.1)
    return logins, sum(int(n) for _, n, _ in ended), sum(int(b) for _, _, b in ended)


def _unmarked(text: str) -> str:
    """A quote without its forwarded-message marks (drawn from the bytes read)."""
    return re.sub(r"(forwarded message) [0-9a-f]{8} ", r"\1 ", text, flags=re.I)


def _pending(w: World, tool: str) -> list:  # type: ignore[type-arg]
    return [p for _, p in w.h.channel.approvals if p.tool == tool]


def _big_mail() -> EmailMessage:
    """Text with an HTML twin, a 6 MB video, and a forwarded message with a PDF of its own."""
    mail = plain_mail(
        "Ann <ann@partner.example>",
        "The video",
        "Here it is.\nThe cut is at 2:10.",
        Date="Thu, 03 Dec 2026 09:15:00 +0000",
    )
    mail.add_alternative("<p>Here it is.</p><p>The cut is at 2:10.</p>", subtype="html")
    mail.make_mixed()
    mail.add_attachment(os.urandom(6_000_000), maintype="video", subtype="mp4", filename="v.mp4")
    inner = plain_mail("Bob <bob@x.example>", "Notes", "Bob's notes on the cut.")
    inner.add_attachment(b"%PDF-1.4 " + b"0" * 40_000, maintype="application", subtype="pdf")
    mail.attach(_forwarded(inner))
    return mail


def _forwarded(inner: EmailMessage) -> EmailMessage:
    part = EmailMessage()
    part.set_content(inner)
    return part


@pytest.mark.parametrize("tls", [True, False])
async def test_a_reply_to_a_large_mail_fetches_it_once_for_the_card_and_once_to_approve(
    tmp_path: Path, counted: Dovecot, smtp_server: SmtpRecorder, tls: bool
) -> None:
    raw = bytes(_big_mail())
    assert len(raw) > 8_000_000
    counted.deliver(raw)
    settings = mail_settings(counted, smtp_server, EMAIL_IMAP_URL=counted.imap_url(tls=tls))
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Thanks, looks good."}))
        [card] = _pending(w, "mail_reply")
        logins, fetches, bodies = await _wire(counted)
        # before: three logins and the whole mail three times (precheck, fingerprint, preview)
        assert (logins, fetches) == (1, 1), counted.log()
        assert len(raw) <= bodies < 2 * len(raw), (bodies, len(raw))  # whole, not by parts
        assert "> Here it is.\n> The cut is at 2:10." in card.preview
        await w.h.say(f"/approve {card.approval_id}")
        logins, fetches, bodies = await _wire(counted)
        # the approval reads it again (whole), the send uses that read, then \\Answered
        assert (logins, fetches) == (3, 2), counted.log()  # before: 6 logins, 5 fetches, 45 MB
        assert 2 * len(raw) <= bodies < 3 * len(raw), (bodies, len(raw))
        [reply] = received_messages(smtp_server)
        text = reply.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
        assert text in card.preview  # what the card showed, marks and all
        assert "> Here it is.\n> The cut is at 2:10." in text
        assert "> From: Bob <bob@x.example>" in text and "> Bob's notes on the cut." in text
        assert "did not open" not in text and "could not be read" not in text
        whole = build_reply(parse_message(raw), "Thanks, looks good.")[1]  # read whole
        assert _unmarked(text) == _unmarked(whole)
        assert reply["In-Reply-To"] and reply["Subject"] == "Re: The video"
        await w.check_invariants()


async def test_a_small_mail_is_fetched_whole_once_for_the_card_and_once_to_approve(
    tmp_path: Path, counted: Dovecot, smtp_server: SmtpRecorder
) -> None:
    counted.deliver(plain_mail("Ann <ann@partner.example>", "Budget", "Numbers?"))
    async with trust_world(tmp_path, **mail_settings(counted, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Here"}))
        [card] = _pending(w, "mail_reply")
        await w.h.say(f"/approve {card.approval_id}")
        assert len(smtp_server.messages) == 1
        log = counted.log()
        fetches = sum(int(n) for _, n, _ in _ENDED.findall(log))
        assert (log.count("imap-login: Info: Login: "), fetches) == (3, 2), log


def _restart(server: Dovecot, args: list[str]) -> None:
    server.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _wait_port(server.imap_port)
    _wait_port(server.imaps_port)


async def _told_unreachable(w: World, approval_id: str, said: str, smtp: SmtpRecorder) -> None:
    """Not denied as changed: the approved call ran and failed, saying why; nothing sent."""
    assert "no longer matches" not in said, said
    assert said == f"Approved {approval_id}: mail_reply failed.", said
    approval = await w.h.steward.stores.approvals.get(approval_id)
    assert approval is not None and approval.status is ApprovalStatus.FAILED
    assert approval.result is not None and "nothing was sent" in approval.result
    assert await w.audit_kinds("approval.mismatch") == []
    assert smtp.messages == []


async def test_a_reply_approved_while_the_server_is_down_is_not_called_changed(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    dovecot.deliver(plain_mail("Ann <ann@partner.example>", "Budget", "Numbers?"))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Here"}))
        [card] = _pending(w, "mail_reply")
        assert dovecot.process is not None
        args = list(dovecot.process.args)  # type: ignore[arg-type]
        dovecot.stop()
        said = await w.h.say(f"/approve {card.approval_id}")
        await _told_unreachable(w, card.approval_id, said, smtp_server)
        approval = await w.h.steward.stores.approvals.get(card.approval_id)
        assert approval is not None and "could not be reached" in (approval.result or "")
        await asyncio.to_thread(_restart, dovecot, args)
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Here"}))  # asked again
        [_, again] = _pending(w, "mail_reply")
        assert await w.h.say(f"/approve {again.approval_id}") == (
            f"Approved {again.approval_id}: mail_reply ran."
        )
        assert [m.recipients for m in smtp_server.messages] == [["ann@partner.example"]]
        await w.check_invariants()


async def test_a_reply_approved_after_a_password_change_is_not_called_changed(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    dovecot.deliver(plain_mail("Ann <ann@partner.example>", "Budget", "Numbers?"))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Here"}))
        [card] = _pending(w, "mail_reply")
        (dovecot.root / "passwd").write_text(f"{USER}:{{PLAIN}}another-password\n")
        await asyncio.sleep(1.1)  # the passwd file is read again when its mtime changes
        said = await w.h.say(f"/approve {card.approval_id}")
        await _told_unreachable(w, card.approval_id, said, smtp_server)
        approval = await w.h.steward.stores.approvals.get(card.approval_id)
        assert approval is not None and "refused the login" in (approval.result or "")
        await w.check_invariants()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_message_gone_since_the_card_is_still_found_out_at_the_approval(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder, how: str
) -> None:
    """Approved at once (while the card's read is still kept): the approval reads again."""
    path = dovecot.deliver(plain_mail("Ann <ann@partner.example>", "Budget", "Numbers?"))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Here"}))
        [card] = _pending(w, "mail_reply")
        [now] = dovecot.maildir().glob(f"*/{path.name.split(':')[0]}*")  # new/ or cur/ by now
        now.unlink()
        if how == "replaced":  # another message, as UID 2
            dovecot.deliver(plain_mail("Mallory <m@evil.example>", "Budget", "Pay me"))
        said = await w.h.say(f"/approve {card.approval_id}")
        assert said == (
            f"{card.approval_id} no longer matches what was requested (its arguments or the "
            "files it depends on changed), so it was denied."
        )
        assert smtp_server.messages == []
        await w.check_invariants()


def _shaped(shape: str) -> bytes:
    """Large mails of other shapes (once read by parts, R266: now whole)."""
    video = os.urandom(400_000)
    if shape == "html only":
        mail = plain_mail("Ann <ann@partner.example>", "Q3", "x")
        mail.set_content("<p>The <b>Q3</b> numbers.</p><script>x()</script>", subtype="html")
        mail.add_attachment(video, maintype="application", subtype="pdf", filename="q3.pdf")
        return bytes(mail)
    if shape == "text attachment":
        mail = plain_mail("Ann <ann@partner.example>", "Logs", "The log is attached.")
        mail.add_attachment("ERROR " * 80_000, filename="app.log")  # text/plain, attached
        mail.add_attachment("Also inline.", disposition="inline", filename="note.txt")
        return bytes(mail)
    if shape == "latin-1 base64":
        mail = plain_mail("Ann <ann@partner.example>", "Café", "x")
        mail.set_content("Déjà vu au café.".encode("latin-1"), "text", "plain", cte="base64")
        mail.replace_header("Content-Type", 'text/plain; charset="iso-8859-1"')
        mail.make_mixed()
        mail.add_attachment(video, maintype="image", subtype="png", filename="p.png")
        return bytes(mail)
    boundary, inner = "BOUNCE-1", "INNER-1"  # a bounce: a report, its status, the mail back
    return (
        "From: MAILER-DAEMON@mx.example\r\nTo: me@example.org\r\nSubject: Undelivered\r\n"
        "Message-ID: <b1@mx.example>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"'
        f"\r\n\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\nYour mail could not be "
        f"delivered.\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; x@y.example\r\n"
        f"Status: 5.1.1\r\n\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: me@example.org\r\nSubject: Plans\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{inner}"\r\n\r\n--{inner}\r\n'
        f"Content-Type: text/plain\r\n\r\nMy plans.\r\n--{inner}\r\n"
        'Content-Type: application/zip\r\nContent-Disposition: attachment; filename="a.zip"'
        f"\r\nContent-Transfer-Encoding: base64\r\n\r\n{'QUJD' * 100_000}\r\n--{inner}--\r\n"
        f"--{boundary}--\r\n"
    ).encode()


@pytest.mark.parametrize("shape", ["html only", "text attachment", "latin-1 base64", "bounce"])
async def test_a_large_mail_of_another_shape_is_quoted_as_read_whole(
    tmp_path: Path, counted: Dovecot, smtp_server: SmtpRecorder, shape: str
) -> None:
    raw = _shaped(shape)
    assert len(raw) > 300_000
    counted.deliver(raw)
    async with trust_world(tmp_path, **mail_settings(counted, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Noted."}))
        [card] = _pending(w, "mail_reply")
        assert (await _wire(counted))[1] == 1, counted.log()
        whole = build_reply(parse_message(raw), "Noted.")[1]  # read whole
        assert _unmarked(whole) in _unmarked(card.preview), (whole, card.preview)


def _hostile(variant: str) -> bytes:
    """R266: over 256 KB (then read by parts), with a line `--bX` that Dovecot takes for the
    boundary `b` and Python's parser does not: text only the reply saw ("prefix"), or text
    the read showed and the reply left out ("hide")."""
    pad = (b"A" * 76 + b"\r\n") * 4000
    head = (
        b"From: Eve <eve@evil.example>\r\nTo: me@example.org\r\nSubject: hi\r\n"
        b"Message-ID: <x1@evil.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nVisible line.\r\n"
    )
    png = b"Content-Type: image/png\r\n"
    if variant == "prefix":
        body = (
            b"--b\r\n"
            + png
            + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + pad
            + b"--bX\r\nContent-Type: text/plain\r\n\r\nINJECTED only the reply sees\r\n"
        )
    else:
        body = (
            b"--bX\r\n" + png + b"\r\nHIDDEN from reply\r\n"
            b"--b\r\n" + png + b"Content-Transfer-Encoding: base64\r\n\r\n" + pad
        )
    return head + body + b"--b--\r\n"


@pytest.mark.parametrize("variant", ["prefix", "hide"])
async def test_a_reply_quotes_a_hostile_mail_as_its_whole_read_shows_it(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder, variant: str
) -> None:
    raw = _hostile(variant)
    assert len(raw) > 256 * 1024
    dovecot.deliver(raw)
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Noted."}))
        [card] = _pending(w, "mail_reply")
        assert await w.h.say(f"/approve {card.approval_id}") == (
            f"Approved {card.approval_id}: mail_reply ran."
        )
        [reply] = received_messages(smtp_server)
        text = reply.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
        assert w.h.steward.mail is not None
        read = await w.h.steward.mail.service.read("INBOX", 1)  # what mail_read shows
        whole = build_reply(read.mail, "Noted.")[1]
        assert text == whole, (text, read.mail.text)
        assert whole in card.preview
        assert "> Visible line." in text
        if variant == "prefix":
            assert "INJECTED" not in read.mail.text and "INJECTED" not in text
        else:
            assert "HIDDEN from reply" in read.mail.text and "> HIDDEN from reply" in text
        await w.check_invariants()
