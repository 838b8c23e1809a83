"""R236: a press on a card in a group that decides nothing is never posted to the group, even
when it waits behind a turn running in that group for longer than the press's answer waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import Harness, until
from test_telegram_boundary import (
    FRIEND_TG,
    GROUP,
    OWNER_TG,
    button,
    cards,
    settle,
    steward,
    tool_runs,
)
from test_telegram_r201 import alerts
from trust_world import instruction, obedient_model

import bot.channels.telegram as telegram_module

IN_GROUP = {"chat_id": GROUP, "chat_type": "supergroup"}


async def _group_card(tg: FakeTelegram, model: FakeAnthropic, h: Harness) -> tuple[int, int, str]:
    """The owner asks for a shell command in the group: its card's chat, message and data."""
    model.on_request(obedient_model)
    order = instruction("shell", {"command": "mkdir g"})
    tg.push_message(f"@steward_test_bot please {order}", user_id=OWNER_TG, **IN_GROUP)
    card = (await until(lambda: cards(tg, GROUP), "the card in the group"))[0]
    await settle(h)
    return int(card.params["chat_id"]), card.result["message_id"], button(card, 0)


async def test_a_friends_press_during_a_busy_group_turn_is_still_not_posted_to_the_group(
    tmp_path: Path, fake_model: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A friend (not an approver) presses the owner's card while a slow turn runs in that
    group: the refusal pops up for them at once, and is not posted to the group (it waited
    behind the turn past PRESS_WAIT, and "Only the owner …" went to everyone)."""
    monkeypatch.setattr(telegram_module, "PRESS_WAIT", 0.5)  # 10 s in production
    async with FakeTelegram() as tg, steward(tmp_path, fake_model, tg) as h:
        chat, message, approve = await _group_card(tg, fake_model, h)
        fake_model.latency = 2.0  # a slow answer to the next question in the group
        tg.push_message("@steward_test_bot what is on today?", user_id=FRIEND_TG, **IN_GROUP)
        await asyncio.sleep(0.3)  # that turn is running
        tg.push_callback(approve, user_id=FRIEND_TG, chat_id=chat, message_id=message)
        await until(lambda: tg.calls_to("answerCallbackQuery"), "the press answered")
        shown = alerts(tg)
        await asyncio.sleep(2.5)
        await settle(h)
        approval = (await h.steward.stores.approvals.pending())[0]
    in_group = tg.sent_texts(GROUP)
    assert not [t for t in in_group if "Only the owner" in t], in_group
    assert shown == ["Only the owner can decide approval requests."]
    assert approval.status.value == "pending"


async def test_the_owners_second_tap_while_the_first_runs_is_not_posted_to_the_group(
    tmp_path: Path, fake_model: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner taps Approve twice in the group; the second waits behind the first, whose
    approved call and resumed turn outlast PRESS_WAIT: "… was already decided." is not posted
    to the group (the card shows the decision), and the approved call ran once."""
    monkeypatch.setattr(telegram_module, "PRESS_WAIT", 0.5)
    async with FakeTelegram() as tg, steward(tmp_path, fake_model, tg) as h:
        chat, message, approve = await _group_card(tg, fake_model, h)
        fake_model.latency = 2.0  # the resumed turn's answer is slow
        tg.push_callback(approve, user_id=OWNER_TG, chat_id=chat, message_id=message)
        await until(lambda: tg.calls_to("editMessageText"), "the card marked decided")
        tg.push_callback(approve, user_id=OWNER_TG, chat_id=chat, message_id=message)
        await tg.wait_for("answerCallbackQuery", 2, timeout=10)
        await asyncio.sleep(2.5)
        await settle(h)
        runs = await tool_runs(h, "shell")
    in_group = tg.sent_texts(GROUP)
    assert not [t for t in in_group if "already" in t], in_group
    assert runs == 1
