"""R205: an owner who decides, in each of two chats, the card the other chat asked for. Each
`/approve` held its own chat's place while its resumed turn waited for the other chat's, so
both waited on each other: the actions ran, neither turn went on, and every later message in
either chat was stored and never answered until a restart.

R206: a turn that asked for approval never had its memory upkeep (facts kept, chat compacted)
once it was resumed and completed.

The real core, router and policy against the fake Anthropic server (tests/fakes/anthropic.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import running_steward, said_last

from agent.memory_upkeep import EXTRACTION_SYSTEM
from memory.turns import TurnStatus

ASK_GOAL_ADD = """
[[rules]]
tool = "goal_add"
decision = "ask"
"""


def _model(request: RecordedRequest) -> Reply:
    said = said_last(request)
    if request.system_text.startswith(EXTRACTION_SYSTEM[:40]):
        return Reply.text('{"memories": []}')
    if request.tool_results:
        return Reply.text("done:")
    if said.startswith("track "):
        return Reply.tool_use("goal_add", {"title": said[6:]})
    return Reply.text("re: " + said)


async def test_two_chats_deciding_each_others_cards_both_go_on(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    (tmp_path / "policy.toml").write_text(ASK_GOAL_ADD)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("track the garden", chat="c1")
        await h.say("track the taxes", chat="c2")
        cards = {address.chat_id: card.approval_id for address, card in h.channel.approvals}
        assert set(cards) == {"c1", "c2"}
        fake_model.latency = 1.0  # c2 is busy answering something slow
        dispatch, message = h.router.dispatch, h.message
        slow = asyncio.create_task(dispatch(message("summarise my week", chat="c2")))
        await asyncio.sleep(0.3)
        fake_model.latency = 0.0
        # typed in c2 (waits behind the slow answer), then in c1
        in_c2 = asyncio.create_task(dispatch(message(f"/approve {cards['c1']}", chat="c2")))
        await asyncio.sleep(0.1)
        in_c1 = asyncio.create_task(dispatch(message(f"/approve {cards['c2']}", chat="c1")))
        await asyncio.wait_for(asyncio.gather(slow, in_c1, in_c2), 20)
        await asyncio.wait_for(h.say("are you there?", chat="c1"), 20)
        await asyncio.wait_for(h.say("are you there?", chat="c2"), 20)
        statuses = [(await h.steward.stores.turns.stored(n)) for n in (1, 2)]
        c1, c2 = h.channel.texts("c1"), h.channel.texts("c2")
    assert [s.status for s in statuses if s] == [TurnStatus.COMPLETED] * 2
    assert c1[-1] == c2[-1] == "re: are you there?"
    assert "done:" in c1 and "done:" in c2  # each resumed turn's answer, in its own chat


async def test_a_turn_resumed_after_approval_gets_its_facts_kept(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    (tmp_path / "policy.toml").write_text(ASK_GOAL_ADD)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("track my car's licence plate is KX-4417, renew the insurance in May")
        [(_, card)] = h.channel.approvals
        await h.say(f"/approve {card.approval_id}")
    extractions = [
        r for r in fake_model.requests if r.system_text.startswith(EXTRACTION_SYSTEM[:40])
    ]
    assert len(extractions) == 1, "the message's facts were never looked for"
    assert "KX-4417" in said_last(extractions[0])
