"""R207: a request left pending across an upgrade that bound requests to their actions in
another way was refused when approved, as "its arguments or the files it depends on changed",
though nothing had. Now a start under a new ACTION_FORMAT withdraws what was asked under the
old one, and the chat is told it was an upgrade.

The real core and recovery on an SQLite database an older Steward left (its state without the
format, as every Steward before R207 wrote it), the fake Anthropic server as the model."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import running_steward
from test_cross_chat_approvals import ASK_GOAL_ADD, _model

from agent.approvals import ACTION_FORMAT_KEY
from bot.recovery import recover_interrupted
from memory.approvals import ApprovalStatus


async def test_a_request_asked_before_an_upgrade_is_withdrawn_saying_so(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    (tmp_path / "policy.toml").write_text(ASK_GOAL_ADD)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("track the garden")
        [(_, card)] = h.channel.approvals
        h.edit_database("DELETE FROM state WHERE key = ?", (ACTION_FORMAT_KEY,))  # older
    async with running_steward(tmp_path, fake_model.base_url) as h:  # recovery ran at start
        approval = await h.steward.stores.approvals.get(card.approval_id)
        answer = await h.say(f"/approve {card.approval_id}")
        events = [e.kind async for e in h.steward.stores.audit.all()]
        assert approval is not None
        goals = await h.steward.stores.goals.active(approval.user_id)
        again = await recover_interrupted(h.steward)  # a second start: nothing more
    assert approval.status is ApprovalStatus.DENIED, approval
    assert "Steward was upgraded" in (approval.result or ""), approval.result
    assert "approval.withdrawn" in events
    assert "changed" not in answer and not goals, answer
    assert again == []
