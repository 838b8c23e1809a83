"""R235: a card shown by its arguments alone (in a group, or for another person's request)
folded a value's line breaks into spaces, so a write whose `rm -rf notes` is a line of its own
read exactly as one where it is a comment; approving the first look wrote the second."""

from __future__ import annotations

from pathlib import Path

from harness import OWNER
from trust_world import World, instruction, trust_world

from agent.approvals import LINE_BREAK
from agent.types import Address, ChatKind, IncomingMessage


async def _group_card(w: World, order: str, page: str) -> tuple[str, str]:
    """The owner, in a group, asks to read a page ordering a write: the write's card."""
    w.web.pages[page] = "<p>Tips.</p>" + order
    seen = len(w.h.channel.approvals)
    text = "read this " + instruction("web_fetch", {"url": w.web.base_url + page})
    await w.h.router.dispatch(
        IncomingMessage(
            sender=OWNER, address=Address("test", "g1"), text=text, chat_kind=ChatKind.GROUP
        )
    )
    for _ in range(3):
        new = [p for _, p in w.h.channel.approvals[seen:]]
        if writes := [p for p in new if p.tool == "write_file"]:
            return writes[-1].approval_id, writes[-1].preview
        fetches = [p for p in new if p.tool == "web_fetch"]
        assert fetches, [p.tool for _, p in w.h.channel.approvals]
        seen = len(w.h.channel.approvals)
        await w.h.say(f"/approve {fetches[-1].approval_id}")
    raise AssertionError("no write card")


async def test_a_group_card_shows_a_values_line_breaks(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        comment = "echo tidy # rm -rf notes\n"
        command = "echo tidy #\nrm -rf notes\n"
        _, first = await _group_card(
            w, instruction("write_file", {"path": "a.sh", "content": comment}), "/a"
        )
        _, second = await _group_card(
            w, instruction("write_file", {"path": "a.sh", "content": command}), "/b"
        )
    assert first.replace("a.sh", "") != second.replace("a.sh", ""), first
    assert f"content: echo tidy # {LINE_BREAK} rm -rf notes" in second, second
    assert f"content: echo tidy # rm -rf notes {LINE_BREAK}\n" in first, first  # its last break
