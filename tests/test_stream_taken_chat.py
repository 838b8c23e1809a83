"""A reply streamed live stops showing, and is taken down, when its chat is taken from the
person it answers mid-turn (an account unlinked)."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import running_steward, telegram_channel

from memory.people import Identity

PHONE = Identity("telegram", "1001")
SECRET = "OWNER-safe-code-4711"
ANSWER = (
    "Sure. "
    + "Here is what you asked for, word by word. " * 3
    + f"Your safe code is {SECRET}. "
    + "And more words follow here to the end. " * 12
)


async def test_a_streamed_answer_stops_showing_when_its_account_is_unlinked(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Only the final reply was held back: the live preview went on to the unlinked phone, the
    owner's safe code in it (R136)."""
    async with (
        FakeTelegram() as tg,
        running_steward(tmp_path, fake_model.base_url) as h,
        telegram_channel(h, tg),
    ):
        await h.steward.stores.people.admit(PHONE, "")
        found = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", await h.say("/link"))
        assert found is not None
        code = found[0]
        tg.push_message(f"/link {code}", user_id=1001)
        await tg.wait_for("sendMessage", 1, timeout=10)
        for _ in range(50):
            linked = await h.steward.stores.people.resolve(PHONE)
            if linked is not None and linked.is_owner:
                break
            await asyncio.sleep(0.1)
        assert (await h.steward.stores.people.resolve(PHONE)).is_owner
        fake_model.stream_delay = 0.1
        fake_model.reply_text(ANSWER)
        tg.push_message("what is my safe code?", user_id=1001)
        await tg.wait_for("sendMessageDraft", 1, timeout=15)
        assert "no longer one of the owner's accounts" in await h.say(f"/revoke {PHONE}")
        revoked_at = time.perf_counter()
        await asyncio.sleep(6)
        after = [c for c in tg.calls_to("sendMessageDraft") if c.at > revoked_at]
        finals = [c.params.get("text") for c in tg.calls_to("sendMessage")]
        assert not any(SECRET in str(c.params.get("text")) for c in after)
        assert not any(SECRET in str(text) for text in finals)
