"""R198: a mail the SMTP server took, its "250" lost, was told "could not reach … failed".

aiosmtpd on loopback (tests/mailservers.py) drops the connection at chosen points of the
conversation; mail_send runs as the owner approves it, through the obedient model of the trust
suite (tests/trust_world.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import Envelope, Session
from mailservers import Received, SmtpRecorder, free_port, mail_settings
from trust_world import World, instruction, trust_world

ANN = {"to": "Ann <ann@partner.example>", "subject": "Invoice", "body": "Paid, thanks."}


class TakesThenDrops(SmtpRecorder):
    """Takes the whole message (it is delivered), then the connection drops before "250"."""

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        self.messages.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos), data))
        server.transport.abort()
        return "250 OK"


class DropsAtRecipient(SmtpRecorder):
    """The connection drops as the first recipient is given: no message was handed over."""

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        server.transport.abort()
        return "250 OK"


def _serving(server: SmtpRecorder) -> Iterator[SmtpRecorder]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def takes_then_drops() -> Iterator[SmtpRecorder]:
    yield from _serving(TakesThenDrops())


@pytest.fixture
def drops_at_recipient() -> Iterator[SmtpRecorder]:
    yield from _serving(DropsAtRecipient())


async def _approved_send(w: World) -> tuple[str, str, Any, str]:
    """Ask for the mail to Ann, approve it; what the tool said, the approval's status and
    record, the audit event of the send (None when there is none) and what the owner was told
    of the decision."""
    await w.h.say(instruction("mail_send", ANN))
    [card] = [p for _, p in w.h.channel.approvals if p.tool == "mail_send"]
    decided = await w.h.say(f"/approve {card.approval_id}")
    [result] = [r for q in w.model.requests for r in q.tool_results]
    approval = await w.h.steward.stores.approvals.get(card.approval_id)
    assert approval is not None and approval.result is not None
    events = await w.h.steward.stores.audit.recent(10, kind="mail.sent")
    return json.dumps(result), approval.result, events[0] if events else None, decided


async def test_a_mail_the_server_took_before_the_connection_dropped_may_have_been_sent(
    tmp_path: Path, takes_then_drops: SmtpRecorder
) -> None:
    async with trust_world(tmp_path, **mail_settings(None, takes_then_drops)) as w:
        said, recorded, event, decided = await _approved_send(w)
    assert len(takes_then_drops.messages) == 1  # it went out
    for text in (said, recorded):
        assert "may have been sent" in text and "Sent folder" in text, text
        assert "before sending it again" in text
        assert "could not reach" not in text and "nothing was sent" not in text
    assert event is not None and event.detail["confirmed"] is False
    # the owner is not told "failed" over a mail that went out (R198)
    assert "mail_send may have run: its answer was lost" in decided, decided


async def test_a_connection_lost_before_the_message_was_handed_over_sent_nothing(
    tmp_path: Path, drops_at_recipient: SmtpRecorder
) -> None:
    async with trust_world(tmp_path, **mail_settings(None, drops_at_recipient)) as w:
        said, recorded, event, decided = await _approved_send(w)
    assert drops_at_recipient.messages == []
    for text in (said, recorded):
        assert "broke before the message was handed over" in text, text
        assert "nothing was sent" in text and "may have" not in text
    assert event is None
    assert "mail_send failed." in decided, decided


async def test_a_server_out_of_reach_sent_nothing(tmp_path: Path) -> None:
    nobody = SmtpRecorder(port=free_port())  # never started: nothing listens there
    async with trust_world(tmp_path, **mail_settings(None, nobody)) as w:
        said, recorded, event, _ = await _approved_send(w)
    for text in (said, recorded):
        assert "could not reach 127.0.0.1" in text and "nothing was sent" in text, text
        assert "may have" not in text
    assert event is None
