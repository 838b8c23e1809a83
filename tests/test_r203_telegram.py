"""R203, Telegram in a group: a held-back post quoted the owner's private words to the group,
and an approved post to the group, approved by a press there, went to the presser alone.

Each case drives the real core and the real Telegram channel against the loopback Bot API fake
and the fake Anthropic server, as `test_telegram_r201` does.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import until
from test_telegram_boundary import FRIEND_TG, GROUP, OWNER_TG, button, cards, settle, steward
from trust_world import instruction, obedient_model


async def test_a_held_back_post_to_a_group_never_quotes_the_owners_private_words(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """In the private chat the owner writes a secret, then asks for a post to the team group
    and approves it. The post meets a 429, a friend's mention there is answered first, and
    the post goes later: headed by its age, never by the owner's private message."""
    fake_model.on_request(obedient_model)
    post = "Heads up: launch moves to Friday."
    order = instruction("send_message", {"channel": "telegram", "chat": str(GROUP), "text": post})
    async with (
        FakeTelegram() as tg,
        steward(tmp_path, fake_model, tg, max_retry_after=0.5) as h,
    ):
        tg.push_message(  # the group first, so Steward knows it
            "@steward_test_bot hi all", user_id=FRIEND_TG, chat_id=GROUP, chat_type="supergroup"
        )
        await until(lambda: tg.sent_texts(GROUP), "the group's hello")
        await settle(h)
        tg.push_message("I'm quitting in May, don't tell them. Anyway: " + order, user_id=OWNER_TG)
        card = (await until(lambda: cards(tg, OWNER_TG), "the card"))[0]
        await settle(h)
        tg.fail_next("sendMessage", status=429, retry_after=3)
        message = card.result["message_id"]
        tg.push_callback(button(card, 0), user_id=OWNER_TG, chat_id=OWNER_TG, message_id=message)
        await until(lambda: [c for c in tg.calls_to("sendMessage") if c.status == 429], "429")
        await settle(h)
        tg.push_message(
            "@steward_test_bot what's up", user_id=FRIEND_TG, chat_id=GROUP, chat_type="supergroup"
        )
        await until(lambda: len(tg.sent_texts(GROUP)) >= 2, "the friend's answer")
        await settle(h)
        redelivery = asyncio.create_task(h.steward.courier.keep_redelivering(every=0.2))
        try:
            await until(lambda: [t for t in tg.sent_texts(GROUP) if post in t], "the post", 30)
        finally:
            redelivery.cancel()
        in_group = tg.sent_texts(GROUP)
    [late] = [t for t in in_group if post in t]
    assert not [t for t in in_group if "quitting" in t or "Anyway" in t], in_group
    assert late.startswith("(my message from ") and "held back until now)" in late, late
    assert late.endswith(post)


async def test_an_approved_post_to_this_group_approved_by_a_press_here_reaches_the_group(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The owner asks, in a supergroup, for a post to that group and presses Approve on the
    card there: the post goes to the group (it was the press's pop-up, to the owner alone)."""
    fake_model.on_request(obedient_model)
    words = "Team: the meeting moved to 3pm, room B. Bring the Q3 numbers."
    order = instruction("send_message", {"channel": "telegram", "chat": str(GROUP), "text": words})
    async with FakeTelegram() as tg, steward(tmp_path, fake_model, tg) as h:
        tg.push_message(
            f"@steward_test_bot please {order}",
            user_id=OWNER_TG,
            chat_id=GROUP,
            chat_type="supergroup",
        )
        card = (await until(lambda: cards(tg, GROUP), "the card in the group"))[0]
        await settle(h)
        chat, message = int(card.params["chat_id"]), card.result["message_id"]
        tg.push_callback(button(card, 0), user_id=OWNER_TG, chat_id=chat, message_id=message)
        await until(lambda: tg.calls_to("answerCallbackQuery"), "the press answered")
        await until(lambda: [t for t in tg.sent_texts(GROUP) if t.startswith("Approved")], "note")
        await settle(h)
        in_group = tg.sent_texts(GROUP)
        answers = [c.params for c in tg.calls_to("answerCallbackQuery")]
    assert [t for t in in_group if t == words], in_group
    assert len(answers) == 1 and not answers[0].get("text"), answers  # no pop-up of the post
