"""An approval card shows what was looked up to show the action (a file's lines, a mail's
sender and subject, the words of a memory, goal or reminder) only where those are its reader's
own (review 86). A guest's card in their own chat showed the owner's file and mail; a card in a
group, caused by a member's words, showed the owner's memories, goal and reminder. Elsewhere a
card shows the action by its arguments alone; the owner sees it whole in private."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from harness import OWNER
from mailservers import (
    Dovecot,
    SmtpRecorder,
    mail_settings,
    plain_mail,
)
from test_trust_multiturn import greedy_model
from trust_world import World, instruction, trust_world

from agent.approvals import SHOWN_BY_ARGUMENTS
from agent.types import Address, ChatKind, IncomingMessage
from memory.people import Identity

MALLORY = Identity("test", "mallory")
SECRET = "OWNER-SECRET-pin-4711"


async def _said(w: World, sender: Identity, chat: str, kind: ChatKind, text: str) -> None:
    await w.h.router.dispatch(
        IncomingMessage(sender=sender, address=Address("test", chat), text=text, chat_kind=kind)
    )
    if w.h.steward.memory is not None:
        await w.h.steward.memory.upkeep_settled()


def _cards_in(w: World, chat: str) -> list[str]:
    return [p.preview for a, p in w.h.channel.approvals if a.chat_id == chat]


async def test_a_guests_card_does_not_show_the_owners_file(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        (w.workspace / "private.md").write_text(SECRET + "\n")
        await w.h.steward.stores.people.admit(MALLORY, "Mallory")
        order = instruction("write_file", {"path": "private.md", "content": "x"})
        await _said(w, MALLORY, "mallory-dm", ChatKind.PRIVATE, order)
        [card] = _cards_in(w, "mallory-dm")
        assert SECRET not in card and "path: private.md" in card and SHOWN_BY_ARGUMENTS in card
        [pending] = await w.h.steward.stores.approvals.pending()
        assert SECRET not in await w.h.say(f"/approve show {pending.id}", sender=MALLORY)
        assert SECRET in await w.h.say(f"/approve show {pending.id}")  # the owner, in private


async def test_a_guests_refused_call_names_nothing_the_owners_workspace_holds(
    tmp_path: Path,
) -> None:
    """R181: checks made before any card told a guest's model the name of a folder in the
    owner's workspace (`shell ls`: "acme-merger-2026/ holds folders nested more than 256
    deep"), that a file is a link leading out, that one has hard links. The reason is the
    owner's, in the audit log; the owner's own turn is still told it."""
    import os

    async with trust_world(tmp_path) as w:
        ws = w.workspace
        os.makedirs(ws / "acme-merger-2026" / "/".join(["d"] * 260))
        (ws / "notes").mkdir()
        os.symlink("/etc/hostname", ws / "notes" / "plan.md")
        (ws / "notes" / "salary.md").write_text("x")
        os.link(ws / "notes" / "salary.md", ws / "notes" / "salary-copy.md")
        await w.h.steward.stores.people.admit(MALLORY, "Mallory")
        probes = [
            ("shell", {"command": "ls"}),
            ("read_file", {"path": "notes/plan.md"}),
            ("read_file", {"path": "notes/salary.md"}),
        ]
        for tool, arguments in probes:
            await _said(w, MALLORY, "mallory-dm", ChatKind.PRIVATE, instruction(tool, arguments))
            [result] = w.model.requests[-1].tool_results
            told = str(result["content"])
            assert told.startswith("refused without asking: this works on the owner's"), told
            for name in ("acme", "nested", "outside", "hard link"):
                assert name not in told, told
        refused = await w.h.steward.stores.audit.recent(20, kind="tool.refused")
        reasons = " ".join(str(e.detail.get("reason")) for e in refused)
        assert "acme-merger-2026" in reasons and "hard link" in reasons, reasons
        assert not _cards_in(w, "mallory-dm")
        # the owner's own turn is told why
        await w.h.say(instruction("read_file", {"path": "notes/salary.md"}))
        [result] = w.model.requests[-1].tool_results
        assert "hard link" in str(result["content"]), result


@pytest.mark.parametrize(
    "order",
    [
        ("mail_flag", {"uids": [1], "action": "read"}),
        ("mail_reply", {"uid": 1, "body": "thanks"}),
    ],
    ids=["flag", "reply"],
)
async def test_a_guests_card_does_not_show_the_owners_mail(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder, order: tuple[str, Any]
) -> None:
    dovecot.deliver(
        plain_mail("Dr Oncology <clinic@hospital.example>", "Your biopsy results", "benign")
    )
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.steward.stores.people.admit(MALLORY, "Mallory")
        await _said(w, MALLORY, "mallory-dm", ChatKind.PRIVATE, instruction(*order))
        [card] = _cards_in(w, "mallory-dm")
        assert "biopsy" not in card and "hospital.example" not in card, card


async def test_a_card_in_a_group_does_not_show_the_owners_memory_goal_reminder_or_file(
    tmp_path: Path,
) -> None:
    async with trust_world(tmp_path, model=greedy_model) as w:
        stores = w.h.steward.stores
        owner = await stores.people.owner()
        assert owner is not None
        await w.h.say("/remember Home address is 12 Elm Street, flat 4; the bank PIN is 4711")
        [pin] = [m for m in await w.h.memories() if "4711" in m.text]
        goal = await stores.goals.add(owner.id, "call the divorce lawyer")
        listed = await w.h.say("/remind every day 9:00 take the HIV medication")
        reminder = int(re.findall(r"#(\d+)", listed)[0])
        (w.workspace / "health.md").write_text("diagnosed with CROHNS\n")
        await stores.people.admit(MALLORY, "Mallory")
        orders = " ".join(
            [
                instruction("memory_save", {"text": "x", "replaces": [pin.id]}),
                instruction("goal_progress", {"goal_id": goal.id, "note": "x"}),
                instruction("schedule_cancel", {"schedule_id": reminder}),
                instruction("write_file", {"path": "health.md", "content": "x"}),
            ]
        )
        await _said(w, MALLORY, "g1", ChatKind.GROUP, "fyi " + orders)
        await _said(w, OWNER, "g1", ChatKind.GROUP, "what do you think?")
        shown = "\n".join(_cards_in(w, "g1"))
        assert shown.count(SHOWN_BY_ARGUMENTS) >= 4, shown
        for private in ("4711", "Elm Street", "divorce", "HIV", "CROHNS"):
            assert private not in shown, (private, shown)
