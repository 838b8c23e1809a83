"""R264, against a real Dovecot and SMTP server: the briefing read only the 200 newest unread
mails, so a watched sender's under 250 newsletters was never looked at (and the count said 200);
a saved `.eml` forwarded from the workspace went out as message/rfc822 in base64, which RFC 2046
forbids; a reply to a mail with In-Reply-To and no References lost the thread's start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mailservers import Dovecot, SmtpRecorder, mail_settings, plain_mail, received_messages
from test_mail_watch import BOSS, owner_of, scheduler_of
from trust_world import World, instruction, trust_world


def _pending(w: World, tool: str) -> list[Any]:
    return [p for _, p in w.h.channel.approvals if p.tool == tool]


async def test_watched_mail_under_250_newsletters_is_in_the_briefing_and_counted(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    now = time.time()
    dovecot.deliver(plain_mail(BOSS, "Board meeting", "Slides by Friday."), received=now - 3600)
    overdue = plain_mail("Billing <billing@vendor.example>", "Invoice overdue: March", "Pay")
    dovecot.deliver(overdue, received=now - 3000)
    for i in range(250):
        news = plain_mail("News <news@letters.example>", f"Digest {i}", "Links")
        dovecot.deliver(news, received=now - 1800 + i)
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say("/mail watch from boss@corp.example")
        await w.h.say("/mail watch subject invoice overdue")
        await w.h.say("/briefing mail on")
        prompt = (await scheduler_of(w).draft_briefing(await owner_of(w))).prompt
    assert "Board meeting" in prompt and "Invoice overdue: March" in prompt, prompt
    assert prompt.index("Board meeting") < prompt.index("Digest 249")  # watched first
    assert (
        "Unread mail since the last briefing (252 message(s); only the 200 newest and every "
        "one a watch rule finds looked at; the 10 that matter most below)"
    ) in prompt, prompt
    assert "say that 50 of them were not looked at" in prompt


async def test_a_saved_mail_is_attached_as_a_message_never_in_base64(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    saved = b"From: Ann <ann@b.example>\r\nSubject: Original hi\r\n\r\nthe original body\r\n"
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        (w.workspace / "fwd.eml").write_bytes(saved)
        (w.workspace / "odd.eml").write_bytes(b"\x89PNG\r\n\x1a\n not a mail")
        args = {
            "to": "bob@partner.example",
            "subject": "Fwd: Original hi",
            "body": "See below.",
            "attachments": ["fwd.eml", "odd.eml"],
        }
        await w.h.say(instruction("mail_send", args))
        [card] = _pending(w, "mail_send")
        await w.h.say(f"/approve {card.approval_id}")
    [sent] = received_messages(smtp_server)
    forwarded, odd = sent.iter_attachments()  # type: ignore[attr-defined]
    assert forwarded.get_content_type() == "message/rfc822"
    assert forwarded.get("Content-Transfer-Encoding", "7bit").lower() in ("7bit", "8bit")
    assert forwarded.get_filename() == "fwd.eml"
    inner = forwarded.get_content()
    assert inner["Subject"] == "Original hi" and inner["From"] == "Ann <ann@b.example>"
    assert inner.get_content().strip() == "the original body"
    # a file named .eml that is no mail goes as bytes, unchanged
    assert odd.get_content_type() == "application/octet-stream"
    assert odd.get_content() == b"\x89PNG\r\n\x1a\n not a mail"


async def test_a_reply_keeps_the_thread_start_from_in_reply_to(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    original = plain_mail(
        "Ann <ann@partner.example>", "RE: Budget", "Line one", In_Reply_To="<root@partner.example>"
    )
    own = str(original["Message-ID"])
    dovecot.deliver(original)
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "OK"}))
        [card] = _pending(w, "mail_reply")
        await w.h.say(f"/approve {card.approval_id}")
    [sent] = received_messages(smtp_server)
    assert sent["In-Reply-To"] == own
    assert str(sent["References"]).split() == ["<root@partner.example>", own]
