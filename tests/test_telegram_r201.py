"""R201: the owner's daily use of Telegram, quotes first.

Each case drives the real core and the real Telegram channel against the loopback Bot API fake
and the fake Anthropic server, as `test_telegram_boundary` does, and reads what reached the
model: a quote from another chat comes in as someone else's words (fenced), and a partial quote
of a stored message comes with the message, marked.
"""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import echo_reply, until
from test_telegram_boundary import (
    FRIEND_TG,
    GROUP,
    OWNER_TG,
    STRANGER_TG,
    button,
    cards,
    settle,
    steward,
)
from trust_world import instruction, obedient_model

NEWS = {"id": -1009999999, "type": "channel", "title": "World News", "username": "worldnews"}
_FENCE = re.compile(r'<untrusted id="(\w+)" source="([^"]*)">\n(.*?)\n</untrusted id="\1">', re.S)


def fences(text: str) -> list[tuple[str, str]]:
    """(source, body) of every fence in `text`."""
    return [(html.unescape(m[2]), m[3]) for m in _FENCE.finditer(text)]


def asked(model: FakeAnthropic, words: str) -> list[str]:
    """The last user text of each model request for the owner's message `words`."""
    return [r.last_user_text for r in model.requests if r.last_user_text.endswith(words)]


async def test_a_quote_from_another_chat_reaches_the_model_as_someone_elses_words(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The owner quotes a news channel's post, then a friend's group message, into the private
    chat and asks about it: the quote reaches the model fenced as another's words, and never
    outside the fence (it was dropped: the model got "is this true?" alone)."""
    fake_model.on_request(echo_reply)
    channel_post = "The CEO of Acme resigned this morning"
    friends = "let's move the launch to Q3"
    async with FakeTelegram() as tg, steward(tmp_path, fake_model, tg) as h:
        origin = {"type": "channel", "chat": NEWS, "message_id": 555, "date": 1}
        tg.push_message(
            "is this true?",
            user_id=OWNER_TG,
            extra={
                "external_reply": {"origin": origin, "chat": NEWS, "message_id": 555},
                "quote": {"text": channel_post, "position": 0},
            },
        )
        await until(lambda: [t for t in tg.sent_texts(OWNER_TG) if "true" in t], "answer 1")
        group = {"id": GROUP, "type": "supergroup", "title": "Team"}
        friend = {"id": FRIEND_TG, "is_bot": False, "first_name": "Bo"}
        tg.push_message(
            "what does he mean?",
            user_id=OWNER_TG,
            extra={
                "external_reply": {
                    "origin": {"type": "user", "sender_user": friend, "date": 1},
                    "chat": group,
                    "message_id": 42,
                },
                "quote": {"text": friends, "position": 0},
            },
        )
        await until(lambda: [t for t in tg.sent_texts(OWNER_TG) if "mean" in t], "answer 2")
        await settle(h)
    (first,) = asked(fake_model, "is this true?")
    (second,) = asked(fake_model, "what does he mean?")
    for text, quote in ((first, channel_post), (second, friends)):
        assert "They are replying to a message from another chat" in text, text
        (source, body), *_ = fences(text)
        assert body == quote and "another person's message" in source, text
        assert quote not in _FENCE.sub("", text), text


async def test_a_partial_quote_of_a_stored_message_is_shown_with_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Steward offers three restaurants; the owner quotes one and says "book this one": the
    model gets the whole list (its stored id kept) and the part quoted. A friend's group
    message quoted in part comes whole, fenced, with the part fenced too."""
    fake_model.reply_text(
        "Options for dinner:\n1. Pasta at Luigi's\n2. Sushi at Kaito\n3. Tacos at Rosa's"
    )
    async with FakeTelegram() as tg, steward(tmp_path, fake_model, tg) as h:
        tg.push_message("where should we eat?", user_id=OWNER_TG)
        (sent,) = await tg.wait_for("sendMessage")
        await settle(h)
        fake_model.on_request(echo_reply)
        quote = {"text": "Sushi at Kaito", "position": 40, "is_manual": True}
        tg.push_message(
            "book this one",
            user_id=OWNER_TG,
            reply_to_message_id=sent.result["message_id"],
            extra={"quote": quote},
        )
        await until(lambda: [t for t in tg.sent_texts(OWNER_TG) if "book" in t], "answer 1")
        tg.push_message(
            "@steward_test_bot I vote: pizza monday, tacos tuesday",
            user_id=FRIEND_TG,
            chat_id=GROUP,
            chat_type="supergroup",
        )
        await until(lambda: [t for t in tg.sent_texts(GROUP) if "vote" in t], "friend answered")
        theirs = min(m for c, m in tg.messages if c == GROUP)
        tg.push_message(
            "@steward_test_bot note this part",
            user_id=OWNER_TG,
            chat_id=GROUP,
            chat_type="supergroup",
            reply_to_message_id=theirs,
            extra={"quote": {"text": "pizza monday", "position": 8, "is_manual": True}},
        )
        await until(lambda: [t for t in tg.sent_texts(GROUP) if "note this" in t], "answer 2")
        await settle(h)
    (mine,) = asked(fake_model, "book this one")
    (group,) = asked(fake_model, "note this part")
    assert "They are replying to your message (#" in mine, mine
    assert "3. Tacos at Rosa's\nquoting: «Sushi at Kaito»" in mine, mine
    assert fences(group) == [
        ("an earlier message in this chat (another person's message)", "I vote: pizza monday, "
         "tacos tuesday"),
        ("the part they quote of an earlier message in this chat (another person's message)",
         "pizza monday"),
    ], group  # fmt: skip
    assert "pizza monday" not in _FENCE.sub("", group), group


async def test_a_press_in_a_group_that_decides_nothing_is_answered_to_the_presser_alone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """On the owner's card in a group, a friend, two strangers and then the owner twice press
    Approve: each refusal, and "already executed", is the press's alert to the presser; none is
    posted to the group, and a stranger's press is no "someone new wrote to me" for the owner.
    The owner's first press decides, in the open, as before."""
    fake_model.on_request(obedient_model)
    order = instruction("shell", {"command": "mkdir g"})
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
        for user in (FRIEND_TG, STRANGER_TG, STRANGER_TG + 1):
            tg.push_callback(button(card, 0), user_id=user, chat_id=chat, message_id=message)
        await until(lambda: len(alerts(tg)) >= 3, "three alerts")
        tg.push_callback(button(card, 0), user_id=OWNER_TG, chat_id=chat, message_id=message)
        tg.push_callback(button(card, 0), user_id=OWNER_TG, chat_id=chat, message_id=message)
        await until(lambda: len(alerts(tg)) >= 4, "the second press answered")
        await until(lambda: len(tg.calls_to("answerCallbackQuery")) >= 5, "every press answered")
        await settle(h)
        in_group = tg.sent_texts(GROUP)
        to_owner = tg.sent_texts(OWNER_TG)
    said = alerts(tg)  # a stranger's press waits for nothing: its answer may come first
    assert len(said) == 4 and "already" in said[-1], said
    assert "Only the owner can decide approval requests." in said, said
    for stranger in (STRANGER_TG, STRANGER_TG + 1):
        assert [t for t in said if f"/allow telegram:{stranger}" in t], said
    assert not [t for t in in_group if "Only the owner" in t or "/allow" in t or "already" in t]
    assert [t for t in in_group if t.startswith("Approved ")], in_group  # the decision, for all
    assert not [t for t in to_owner if "Someone new" in t], to_owner
    assert len(tg.calls_to("answerCallbackQuery")) == 5  # each press answered once


def alerts(tg: FakeTelegram) -> list[str]:
    """The texts of the press answers shown as alerts, in order."""
    return [
        str(c.params["text"])
        for c in tg.calls_to("answerCallbackQuery")
        if c.params.get("show_alert") and c.params.get("text")
    ]


async def test_a_reply_held_back_by_flood_control_waits_as_asked_and_says_what_it_answers(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The answer to "first" meets a 429 asking for a longer wait than a send waits; the answer
    to "second" goes. Redelivery waits as long as Telegram asked (it tried again after a
    second), and the late answer says which message it answers (it read as the answer to
    "second")."""
    fake_model.on_request(echo_reply)
    async with (
        FakeTelegram() as tg,
        steward(tmp_path, fake_model, tg, max_retry_after=0.5) as h,
    ):
        tg.fail_next("sendMessage", status=429, retry_after=3)
        tg.push_message("first", user_id=OWNER_TG)
        (refused,) = await tg.wait_for("sendMessage")
        tg.push_message("second", user_id=OWNER_TG)
        await until(lambda: tg.sent_texts(OWNER_TG), "the second answer")
        redelivery = asyncio.create_task(h.steward.courier.keep_redelivering(every=0.2))
        try:
            await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 2, "the first answer", 30)
        finally:
            redelivery.cancel()
        await settle(h)
    late = [c for c in tg.calls_to("sendMessage") if c.status == 200][-1]
    assert tg.sent_texts(OWNER_TG) == [
        "re: second",
        "(my answer to «first», held back until now)\n\nre: first",
    ]
    assert late.at - refused.at >= 3, late.at - refused.at
