"""Hostile mail, review 36: what a large mail costs, and a From that lists two addresses.

- A watch notice and the briefing took a mail's gist from its whole text, split and matched
  on the event loop: ~1 s a notice for a 2 MB mail of short lines, 17 s for a briefing of six.
  The gist's line is looked for in the first 65,536 characters.
- A reply quoted the whole original: a 3.7 MB mail made a card of 3.7 MB, rendered character
  by character on the loop (8-13 s a card). A reply quotes the first 20,000 characters and
  says how many more there were; the card shows exactly what is sent.
- "From: The Boss <boss@corp.example>, pay@evil.example" is a valid From: a reply goes to both,
  and the card's note (written for a Reply-To only) said nothing."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from mailservers import Dovecot, SmtpRecorder, mail_settings
from trust_world import instruction, trust_world

from agent.mail.message import QUOTE_MAX
from agent.mail.parsed import GIST_SCAN, ParsedMail


def test_a_gist_is_looked_for_at_the_start_of_the_text() -> None:
    assert ParsedMail(text="Hi Sam,\n> quoted\n\nThe figures are in.\n").gist() == (
        "The figures are in."
    )
    quoted = "> an old thread\n" * (GIST_SCAN // 10)  # past the scan: the first line stands
    assert ParsedMail(text=quoted + "The real news.\n").gist() == "> an old thread"
    assert ParsedMail(text="x" * 5_000_000).gist(50) == "x" * 49 + "…"  # one line, cut


def _big(lines: int) -> bytes:
    return (
        b"From: The Boss <boss@corp.example>\r\nTo: me@example.org\r\nSubject: figures\r\n"
        b"Message-ID: <big@corp.example>\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        + b"Please see the figures below, Sam.\r\n"
        * lines
    )


async def test_a_reply_to_a_large_mail_quotes_its_start_and_says_how_much_more(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    dovecot.deliver(_big(100_000))  # 3.6 MB of text
    settings = mail_settings(dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=False))
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Thanks."}))
        [(_, prompt)] = [a for a in w.h.channel.approvals if a[1].tool == "mail_reply"]
        assert len(prompt.preview) < QUOTE_MAX * 1.2, len(prompt.preview)
        assert "more characters of the message not quoted]" in prompt.preview
        await w.h.say(f"/approve {prompt.approval_id}")
    [sent] = smtp_server.messages
    mail = email.message_from_bytes(sent.data, policy=email.policy.default)
    body = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert body.startswith("Thanks.") and "more characters of the message not quoted]" in body
    assert "> […" not in body  # Steward's note, not a line of the sender's
    assert len(body) < QUOTE_MAX * 1.2


async def test_a_from_of_two_addresses_is_said_on_the_card(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    dovecot.deliver(
        b"From: The Boss <boss@corp.example>, pay@evil.example\r\n"
        b"To: me@example.org\r\nSubject: Wire details\r\nMessage-ID: <w1@corp.example>\r\n\r\n"
        b"Please confirm you got the new account number.\r\n"
    )
    settings = mail_settings(dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=False))
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Confirmed."}))
        [(_, prompt)] = [a for a in w.h.channel.approvals if a[1].tool == "mail_reply"]
    assert "To: boss@corp.example, pay@evil.example" in prompt.preview
    assert (
        "Note: its From, which names more than one address, sends this reply to "
        "pay@evil.example as well as to the sender boss@corp.example." in prompt.preview
    ), prompt.preview[:600]
