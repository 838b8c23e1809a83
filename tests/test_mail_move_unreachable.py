"""A move or a flag approved while the mail server is away is not denied as "changed"
(session 33 left this open; R264 did it for replies).

The card binds a move to the very messages (the folder's UIDVALIDITY and the UIDs). At the
approval they are looked at again; with the server down, or refusing the login, that look
failed and the approval was denied for good as "no longer matches". Now the approved call
runs, looks at the messages itself, and fails saying the server could not be reached, nothing
changed; asked again once the server is back, it moves them. Against a real Dovecot."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mailservers import Dovecot, SmtpRecorder, mail_settings, plain_mail
from test_mail import imap_flags
from test_r264_mail_replies import _pending, _restart
from trust_world import World, instruction, trust_world

from memory.approvals import ApprovalStatus

MOVE = {"uids": [1], "to_folder": "Archive"}
FLAG = {"uids": [1], "action": "flag"}


async def _asked(w: World, tool: str, arguments: dict[str, object]) -> str:
    """The move or flag asked for after a mail was read in the same turn (outside content:
    the owner is asked). The approval's id."""
    before = len(_pending(w, tool))
    await w.h.say(instruction("mail_read", {"uid": 1}) + " " + instruction(tool, arguments))
    cards = _pending(w, tool)
    assert len(cards) == before + 1
    return cards[-1].approval_id


@pytest.mark.parametrize(("tool", "arguments"), [("mail_move", MOVE), ("mail_flag", FLAG)])
async def test_approved_while_the_server_is_down_it_fails_saying_so_then_runs_once_back(
    tmp_path: Path,
    dovecot: Dovecot,
    smtp_server: SmtpRecorder,
    tool: str,
    arguments: dict[str, object],
) -> None:
    dovecot.deliver(plain_mail("Shop <news@shop.example>", "Offer", "Buy now"))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        approval_id = await _asked(w, tool, arguments)
        assert dovecot.process is not None
        args = list(dovecot.process.args)  # type: ignore[arg-type]
        dovecot.stop()
        said = await w.h.say(f"/approve {approval_id}")
        assert "no longer matches" not in said, said
        assert said == f"Approved {approval_id}: {tool} failed.", said
        approval = await w.h.steward.stores.approvals.get(approval_id)
        assert approval is not None and approval.status is ApprovalStatus.FAILED
        assert "could not be reached" in (approval.result or "")
        assert "nothing was changed" in (approval.result or "")
        assert await w.audit_kinds("approval.mismatch") == []
        await asyncio.to_thread(_restart, dovecot, args)
        assert list(imap_flags(dovecot)) == [1]  # untouched
        again = await _asked(w, tool, arguments)
        assert await w.h.say(f"/approve {again}") == f"Approved {again}: {tool} ran."
        if tool == "mail_move":
            assert imap_flags(dovecot) == {} and len(imap_flags(dovecot, "Archive")) == 1
        else:
            assert b"\\Flagged" in imap_flags(dovecot)[1]
        await w.check_invariants()


async def test_a_message_gone_while_the_server_was_down_is_not_moved(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """Approved with the server up, a message deleted since the card is found out at the
    approval, as before: denied as changed, nothing moved."""
    dovecot.deliver(plain_mail("Shop <news@shop.example>", "Offer", "Buy now"))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        approval_id = await _asked(w, "mail_move", MOVE)
        for path in (dovecot.maildir() / "cur").iterdir():
            path.unlink()
        for path in (dovecot.maildir() / "new").iterdir():
            path.unlink()
        said = await w.h.say(f"/approve {approval_id}")
        assert "no longer matches" in said, said
        assert imap_flags(dovecot, "Archive") == {}
        await w.check_invariants()


async def test_a_move_or_flag_held_to_a_uidvalidity_the_folder_no_longer_has_changes_nothing(
    tmp_path: Path, dovecot: Dovecot
) -> None:
    """Review 35: the approved call looks at the messages, then acts in a session of its own;
    a folder rebuilt in between (a new UIDVALIDITY: its UIDs name other messages) must not be
    acted on. The act is held to the UIDVALIDITY the look found."""
    from datetime import UTC, datetime

    from test_mail_folders_and_counts import _service

    from agent.mail.errors import MailError
    from memory.clock import FrozenClock
    from memory.stores import Stores

    dovecot.deliver(plain_mail("Shop <news@shop.example>", "Offer", "Buy now"))
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    stores = await Stores.open(tmp_path / "db.sqlite", clock)
    try:
        service = _service(dovecot, stores, clock, True, ("INBOX",))
        async with service.session() as session:
            validity = (await service.folder_state(session, "INBOX")).uidvalidity
        for act in (
            service.move("INBOX", [1], "Archive", uidvalidity=validity + 1),
            service.flag("INBOX", [1], ["\\Flagged"], True, uidvalidity=validity + 1),
        ):
            with pytest.raises(MailError, match="UIDVALIDITY changed"):
                await act
        assert list(imap_flags(dovecot)) == [1] and b"\\Flagged" not in imap_flags(dovecot)[1]
        await service.move("INBOX", [1], "Archive", uidvalidity=validity)  # still the same
        assert imap_flags(dovecot) == {} and len(imap_flags(dovecot, "Archive")) == 1
    finally:
        await stores.close()
