"""Telegram's streamed replies in a group when Telegram is slow or throttles (R228), through
the real channel against FakeTelegram: a preview kept up by long flood control comes down later,
and a preview edit carried out late never overwrites the final reply."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import OWNER, running_steward, telegram_channel, until
from slow_hop import slow_hop

OWNER_TG = 1001
GROUP = -1001234567890
ANSWER = "It is **late**: " + "time to rest, the day is done. " * 6


async def test_a_group_preview_flood_control_kept_up_past_a_call_s_wait_comes_down_later(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R228: Telegram's flood control asked for longer than a call waits (`max_retry_after`):
    the final edit was refused, the delete gave up, and the cut-off preview stayed above the
    reply for good. It is taken down once the wait is over."""
    fake_model.stream_delay = 0.08
    fake_model.reply_text(ANSWER)
    owner = f"{OWNER},telegram:{OWNER_TG}"
    async with (
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h,
        FakeTelegram() as tg,
        telegram_channel(h, tg, max_retry_after=1.0),
    ):
        tg.fail_next("editMessageText", status=429, retry_after=2, times=50)
        tg.fail_next("deleteMessage", status=429, retry_after=2)
        tg.push_message(
            "@steward_test_bot is it late?", chat_type="supergroup", chat_id=GROUP, user_id=OWNER_TG
        )
        preview, final = await tg.wait_for("sendMessage", 2, timeout=20)
        assert final.status == 200
        key = (GROUP, preview.result["message_id"])
        await until(lambda: key not in tg.messages, "the preview taken down", timeout=10)
        assert (GROUP, final.result["message_id"]) in tg.messages
        out = [m.text for m in await h.steward.stores.messages.all(direction="out")]
    assert len(out) == 1


async def test_a_preview_edit_carried_out_late_never_overwrites_the_final_reply(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R228: the stream's halt gave up on a preview edit Telegram carried out 10 s late, after
    the final reply had been edited into the same message: it read cut short for good."""
    answer = "It is late: " + "time to rest, the day is done. " * 6
    fake_model.stream_delay = 0.15
    fake_model.reply_text(answer)
    owner = f"{OWNER},telegram:{OWNER_TG}"
    async with (
        FakeTelegram() as tg,
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h,
        slow_hop(tg, "editMessageText", 10.0, late="request"),
        telegram_channel(h, tg),
    ):
        tg.push_message(
            "@steward_test_bot is it late?", chat_type="supergroup", chat_id=GROUP, user_id=OWNER_TG
        )
        [late, *_] = await tg.wait_for("editMessageText", 1, timeout=30)  # when it lands
        await until(
            lambda: [c for c in tg.calls_to("sendMessage") if c.status == 200][1:],
            "the final reply sent anew",
            timeout=15,
        )
        in_chat = [m["text"] for (chat, _), m in tg.messages.items() if chat == GROUP]
        [stored] = await h.steward.stores.messages.all(direction="out")
    assert late.params["text"] != answer.strip()  # a preview's text, cut short
    assert stored.status == "sent"
    assert in_chat[-1] == answer.strip(), in_chat
    assert not [text for text in in_chat[:-1] if text.startswith("It is late")], in_chat
