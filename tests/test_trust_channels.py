"""Trust cases at the chat platforms' edge: replayed button presses run the action once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, block_actions_payload, message_event, post_signed
from fakes.telegram import FakeTelegram
from test_slack import DM, OWNER_SLACK, _event, slack_steward
from test_telegram import OWNER_TG, telegram
from trust_world import instruction, obedient_model

pytestmark = pytest.mark.trust


async def _shell_runs(h) -> int:  # type: ignore[no-untyped-def]
    events = await h.steward.stores.audit.recent(1000, kind="tool.ran")
    return len([e for e in events if e.subject == "shell"])


async def test_10_a_replayed_slack_approval_payload_runs_the_action_once(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(obedient_model)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        order = instruction("shell", {"command": "mkdir replayed"})
        assert await _event(url, slack, message_event(order, user=OWNER_SLACK, channel=DM)) == 200
        (prompt,) = await slack.wait_for("chat.postMessage", timeout=10)
        actions = next(b for b in prompt.params["blocks"] if b["type"] == "actions")
        approval_id = actions["elements"][0]["value"]
        payload = block_actions_payload(
            "approval_approve",
            approval_id,
            user_id=OWNER_SLACK,
            channel_id=DM,
            message_ts=prompt.result["ts"] if prompt.result else "",
        )
        form = {"payload": json.dumps(payload)}
        for _ in range(3):  # the same signed payload, delivered three times
            assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        await slack.wait_for("chat.update", timeout=10)
        assert await _shell_runs(h) == 1
        approval = await h.steward.stores.approvals.get(approval_id)
        assert approval is not None and approval.status == "executed"
        presses = await h.steward.stores.messages.find_text("/approve", at_start=True)
        assert len(presses) == 1


async def test_10_a_replayed_telegram_update_runs_the_action_once(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(obedient_model)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as (h, _):
        tg.push_message(instruction("shell", {"command": "mkdir replayed"}), user_id=OWNER_TG)
        (prompt,) = await tg.wait_for("sendMessage", timeout=10)
        data = prompt.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        message_id = prompt.result["message_id"]
        update_id = tg.push_callback(
            data, user_id=OWNER_TG, chat_id=OWNER_TG, message_id=message_id
        )
        await tg.wait_for("editMessageText", timeout=10)
        # the same update again, and a second press of the same button
        tg.push_callback(
            data, user_id=OWNER_TG, chat_id=OWNER_TG, message_id=message_id, update_id=update_id
        )
        tg.push_callback(data, user_id=OWNER_TG, chat_id=OWNER_TG, message_id=message_id)
        await tg.wait_for("answerCallbackQuery", 2, timeout=10)
        assert await _shell_runs(h) == 1
