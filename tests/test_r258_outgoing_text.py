"""R258: what Steward's text carries out to the chat platforms.

1. A direction override in a link's label went out right before the URL shown, so the rest of
   the line showed reversed and the URL read as another site: reordering controls now go out as
   visible escapes, on Slack (post and stream) and Telegram.
2. A part of a long Telegram reply that Telegram counts as empty (U+2800 alone) was refused,
   "message text is empty", and the reply retried for a week: such a part is left out, and that
   refusal is final. The real Bot API client against the loopback fake, which follows TDLib.
3. A long run without spaces was cut through a flag (a regional-indicator pair, England's tags).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import OWNER, running_steward, telegram_channel

from agent.errors import DeliveryError
from agent.types import Address
from bot.channels.formatting import slack_chunks, telegram_chunks, telegram_visible_text
from bot.channels.slack_stream import stream_markdown
from bot.channels.telegram_api import TelegramApi, TelegramBadRequest
from bot.channels.telegram_send import TelegramSender

OWNER_TG = 1001
REORDERING = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


# ------------------------------------------------------------------------- 1: bidi controls


@pytest.mark.parametrize("control", list(REORDERING))
def test_a_reordering_control_goes_out_visible(control: str) -> None:
    reply = f"Your invoice: [open it {control}](https://evil.com?nigol/moc.knab//:sptth) now"
    chunk = telegram_chunks(reply)[0]
    shown = [slack_chunks(reply)[0].markup, stream_markdown(reply), chunk.markup]
    for text in shown:
        assert f"open it \\u{ord(control):04x} (" in telegram_visible_text(text), repr(text)
    for text in [*shown, chunk.source]:  # the source: the plain-text fallback's
        assert not set(text) & set(REORDERING), repr(text)


def test_marks_stay_for_right_to_left_text() -> None:
    reply = "שלום\u200f, hello\u200e!"
    assert slack_chunks(reply)[0].markup == reply
    assert telegram_chunks(reply)[0].markup == reply


# ------------------------------------------------------------------------- 2: empty parts


async def test_a_part_telegram_counts_empty_is_not_sent(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    words = ("word " * 818).strip()
    fake_model.reply_text(words + "\n\n" + "\u2800" * 12)
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path,
            fake_model.base_url,
            STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}",
            STEWARD_STREAMING="off",
        ) as h,
        telegram_channel(h, tg),
    ):
        tg.push_message("a long answer, please", user_id=OWNER_TG)
        for _ in range(400):
            outs = await h.steward.stores.messages.all(direction="out")
            if outs and outs[-1].status != "pending":
                break
            await asyncio.sleep(0.05)
        assert outs and outs[-1].status == "sent", outs
    sends = tg.calls_to("sendMessage")
    assert [call.status for call in sends] == [200], [(c.status, c.result) for c in sends]
    assert tg.sent_texts(OWNER_TG) == [words]


async def test_message_text_is_empty_is_final() -> None:
    async with FakeTelegram() as tg:
        api = TelegramApi(tg.token, tg.base_url)
        try:
            sender = TelegramSender(lambda: api, attempts=3, backoff=0.05, max_retry_after=5)
            tg.fail_next(
                "sendMessage", status=400, description="Bad Request: message text is empty"
            )
            with pytest.raises(DeliveryError) as refused:
                await sender.send_text(Address("telegram", str(OWNER_TG)), "hello")
        finally:
            await api.close()
    assert refused.value.permanent, "not retried for a week"
    assert [call.status for call in tg.calls_to("sendMessage")] == [400]


async def test_the_fake_counts_empty_as_telegram_does() -> None:
    async with FakeTelegram() as tg:
        api = TelegramApi(tg.token, tg.base_url)
        try:
            for text in ("\u2800\u200b", "\ufeff \u3000", "\U000e0067\u00a0"):
                with pytest.raises(TelegramBadRequest, match="message text is empty"):
                    await api.call("sendMessage", chat_id=OWNER_TG, text=text)
        finally:
            await api.close()


# ------------------------------------------------------------------------- 3: flags


@pytest.mark.parametrize("head", ["", "x"])
def test_a_run_of_flags_is_cut_between_flags(head: str) -> None:
    parts = [telegram_visible_text(c.markup) for c in telegram_chunks(head + "🇺🇸" * 1100)]
    assert len(parts) > 1
    assert "".join(parts) == head + "🇺🇸" * 1100
    for part in parts[1:]:
        assert part.startswith("🇺🇸") and len(part) % 2 == 0, hex(ord(part[0]))
    posts = [c.markup for c in slack_chunks(head + "🇺🇸" * 2000)]
    assert len(posts) > 1 and all(len(post.removeprefix(head)) % 2 == 0 for post in posts)


def test_a_run_of_tag_flags_is_cut_between_flags() -> None:
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    parts = [telegram_visible_text(c.markup) for c in telegram_chunks("x" + england * 600)]
    assert len(parts) > 1
    for part in parts[1:]:
        assert part.startswith("\U0001f3f4") and len(part) % len(england) == 0, len(part)
