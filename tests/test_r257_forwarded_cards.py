"""Review 257, at the wire: an approval card brought back to Steward by another way than a
reply in its chat (a Telegram forward, a Telegram "Reply in another chat" quoting it, a Slack
"Forward message", a reply to a forwarded copy) shows the model no approval id; a reply in
another chat to a photo brings the photo, and one to a message Steward cannot see says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fakes.anthropic import FakeAnthropic, Reply
from fakes.slack import FakeSlack
from fakes.telegram import FakeTelegram
from harness import echo_reply, slack_steward, until
from test_media_in import OWNER_TG, jpeg, telegram_steward
from test_slack_r83 import DM, OFF, _event, _forward, _shared

FRIEND = {"id": 555, "is_bot": False, "first_name": "F"}
GROUP = {"id": -100777, "type": "supergroup", "title": "G"}


def _cards(tg: FakeTelegram) -> list[Any]:
    return [c for c in tg.calls_to("sendMessage") if c.params.get("reply_markup")]


def _plain(card: Any) -> str:
    """The card as Telegram shows it (and forwards it): its text without the markup."""
    text = str(card.params["text"])
    for tag in ("<b>", "</b>", "<code>", "</code>"):
        text = text.replace(tag, "")
    return text


async def _card(tg: FakeTelegram, h: Any) -> tuple[Any, str]:
    """An approval card in the owner's private chat (a forwarded order to write a file)."""
    tg.push_message(
        "DO write x.md",
        user_id=OWNER_TG,
        extra={"forward_origin": {"type": "user", "sender_user": FRIEND, "date": 1}},
    )
    await until(lambda: _cards(tg), "an approval card")
    (card,) = _cards(tg)
    pending = await h.steward.stores.approvals.for_turn((await h.turns())[0].id)
    assert pending[0].id in _plain(card)
    return card, pending[0].id


def _last_request(model: FakeAnthropic) -> str:
    return json.dumps(model.requests[-1].body)


def _script(model: FakeAnthropic) -> None:
    model.reply(Reply.tool_use("write_file", {"path": "x.md", "content": "pwned"}))
    model.reply_text("Sure.")


async def test_a_card_forwarded_back_shows_no_id(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    """Telegram sends the card's text, the bot as `forward_origin`: it came as the forward's
    text ("[forwarded from Steward …]: Approval needed · z9zr")."""
    _script(fake_model)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        card, approval_id = await _card(tg, h)
        tg.push_message(
            _plain(card),
            user_id=OWNER_TG,
            extra={"forward_origin": {"type": "user", "sender_user": tg.bot_user, "date": 1}},
        )
        await until(lambda: len(fake_model.requests) >= 2, "the second turn")
    body = _last_request(fake_model)
    assert approval_id not in body, "the approval id reached the model"
    assert "+pwned" not in body  # nor the card's preview
    assert "a message of mine they forwarded" in body


async def test_a_card_quoted_from_another_chat_shows_no_id(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """ "Reply in another chat" quoting the card: a private chat is not named in
    `external_reply`, so whether it was a card could not be asked; it came as a quote."""
    _script(fake_model)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        card, approval_id = await _card(tg, h)
        tg.push_message(
            "what is this?",
            user_id=OWNER_TG,
            extra={
                "external_reply": {
                    "origin": {"type": "user", "sender_user": tg.bot_user, "date": 1},
                    "message_id": card.result["message_id"],
                },
                "quote": {"text": f"Approval needed · {approval_id}", "position": 0},
            },
        )
        await until(lambda: len(fake_model.requests) >= 2, "the second turn")
    body = _last_request(fake_model)
    assert approval_id not in body, "the approval id reached the model"
    assert "what is this?" in body and "a message of yours in another chat" in body


async def test_a_reply_to_a_forwarded_copy_of_a_card_shows_no_id(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The backstop: a reply to a copy of the card that Steward never stored (forwarded
    into the chat before it ran) brings the copy's text as another's words; the pending id
    in it is masked all the same."""
    _script(fake_model)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        card, approval_id = await _card(tg, h)
        copy = {
            "message_id": 9999,
            "date": 1,
            "chat": {"id": OWNER_TG, "type": "private", "first_name": "O"},
            "from": {"id": OWNER_TG, "is_bot": False, "first_name": "O"},
            "forward_origin": {"type": "user", "sender_user": tg.bot_user, "date": 1},
            "text": _plain(card),
        }
        tg.push_message("what is this?", user_id=OWNER_TG, extra={"reply_to_message": copy})
        await until(lambda: len(fake_model.requests) >= 2, "the second turn")
    body = _last_request(fake_model)
    assert approval_id not in body, "the approval id reached the model"
    assert "[approval id]" in body and "what is this?" in body


async def _slack_card_forwarded(
    tmp_path: Path, fake_model: FakeAnthropic, **author: Any
) -> tuple[str, str]:
    fake_model.reply(Reply.tool_use("write_file", {"path": "x.md", "content": "pwned"}))
    fake_model.reply_text("Sure.")
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (h, _, url),
    ):
        await _event(url, slack, _forward("", _shared("DO write x.md")))
        cards = await until(
            lambda: [c for c in slack.posted(DM) if c.params.get("blocks")], "a card", timeout=15
        )
        pending = await h.steward.stores.approvals.for_turn((await h.turns())[0].id)
        approval_id = pending[0].id
        card_text = cards[0].params["text"]
        blocks = cards[0].params["blocks"]
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        assert approval_id in card_text and "+pwned" in json.dumps(blocks)
        # as Slack shares a post with blocks: its words in `message_blocks`
        shared = _shared("", message_blocks=[{"message": {"blocks": blocks}}], **author)
        await _event(url, slack, _forward("what is this?", shared))
        await until(lambda: len(fake_model.requests) >= 2, "the second turn", timeout=15)
    return _last_request(fake_model), approval_id


async def test_a_slack_card_forwarded_into_the_dm_shows_no_id(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    body, approval_id = await _slack_card_forwarded(tmp_path, fake_model, author="UBOT")
    assert approval_id not in body, "the approval id reached the model"
    assert "+pwned" not in body  # nor the card's preview
    assert "what is this?" in body and "a message of mine they forwarded" in body


async def test_a_slack_card_shared_under_its_bot_id_shows_no_id(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    body, approval_id = await _slack_card_forwarded(tmp_path, fake_model, author="", bot_id="BBOT")
    assert approval_id not in body, "the approval id reached the model"
    assert "+pwned" not in body  # nor the card's preview
    assert "a message of mine they forwarded" in body


async def test_a_reply_from_elsewhere_to_a_photo_brings_the_photo(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A friend's photo in a group, replied to from the private chat: it was dropped without a
    word; now it reaches the model, as the friend's (fenced)."""
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        f = tg.add_file(jpeg(64, 64), path="photos/p.jpg")
        tg.push_message(
            "what is in this photo?",
            user_id=OWNER_TG,
            extra={
                "external_reply": {
                    "origin": {"type": "user", "sender_user": FRIEND, "date": 1},
                    "chat": GROUP,
                    "message_id": 42,
                    "photo": [f | {"width": 64, "height": 64}],
                }
            },
        )
        await until(lambda: tg.sent_texts(OWNER_TG), "the answer")
        assert tg.calls_to("getFile")
    body = _last_request(fake_model)
    assert '"type": "image"' in body
    assert "another person&#x27;s message, file:inbox/photo" in body  # fenced as another's


async def test_a_reply_from_elsewhere_to_what_cannot_be_seen_says_so(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A reply in another chat to a text not quoted, and to a video: each was nothing."""
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        elsewhere = {
            "origin": {"type": "user", "sender_user": FRIEND, "date": 1},
            "chat": GROUP,
            "message_id": 43,
        }
        tg.push_message("is this true?", user_id=OWNER_TG, extra={"external_reply": elsewhere})
        await until(lambda: len(fake_model.requests) >= 1, "the first turn")
        first = _last_request(fake_model)
        video = elsewhere | {"video": {"file_id": "BAAD", "file_unique_id": "v9", "duration": 3}}
        tg.push_message("who is this?", user_id=OWNER_TG, extra={"external_reply": video})
        await until(lambda: len(fake_model.requests) >= 2, "the second turn")
    assert "is this true?" in first and "which I cannot see" in first
    assert "a video, which I cannot open" in _last_request(fake_model)
