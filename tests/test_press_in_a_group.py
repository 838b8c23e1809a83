"""A button pressed on a card in a group is answered as a decision typed there (review 36).

R262 made a decision *typed* in a group (`/approve <id>`) answer there with the tool and id
alone (`in_the_open`), the call's own words going to the decider's private chat. The button
path (`bot/commands/approvals.py: pressed`) called `decide_approval` without `in_the_open`, so
the same decision made by pressing the card's button in that group posted the whole answer
(an uncertain mail's own words: its Message-ID and Sent folder) to everyone in the group."""

from __future__ import annotations

from pathlib import Path

from harness import OWNER
from mailservers import SmtpRecorder, mail_settings
from test_failures_r198_mail import ANN, takes_then_drops  # noqa: F401
from trust_world import instruction, trust_world

from agent.types import Address, ChatKind, Choice, IncomingMessage, Press


def _group(text: str, *, press: Press | None = None, pid: str | None = None) -> IncomingMessage:
    return IncomingMessage(
        sender=OWNER,
        address=Address("test", "g1"),
        text=text,
        platform_message_id=pid,
        chat_kind=ChatKind.GROUP,
        press=press,
    )


async def test_a_press_in_a_group_names_the_tool_and_id_alone(
    tmp_path: Path,
    takes_then_drops: SmtpRecorder,  # noqa: F811
) -> None:
    async with trust_world(tmp_path, **mail_settings(None, takes_then_drops)) as w:
        await w.h.router.dispatch(_group(instruction("mail_send", ANN), pid="g1:1"))
        [card] = [p for a, p in w.h.channel.approvals if p.tool == "mail_send"]
        [where] = [a for a, p in w.h.channel.approvals if p.tool == "mail_send"]
        assert where.chat_id == "g1"
        await w.h.steward.stores.approvals.set_prompt_message(card.approval_id, "m1")
        before = len(w.h.channel.texts("g1"))
        press = Press(card.approval_id, Choice.APPROVE, "m1")
        await w.h.router.dispatch(_group(press.text, press=press, pid="cb:1"))
        answer = w.h.channel.texts("g1")[before:]
    joined = "\n".join(answer)
    assert "may have run" in joined, answer
    # what R262 keeps out of a group when the same decision is typed there
    assert "It said:" not in joined, answer
