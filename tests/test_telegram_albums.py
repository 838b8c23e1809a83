"""Telegram albums (photos sent together) are one message: one turn with every photo and the
caption, in a private chat and in a group (where only one part carries the mention), and a
stop while an album is being gathered loses none of it (its parts are taken up at the next
start), through the Telegram and Anthropic fakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import OWNER, echo_reply, running_steward, telegram_channel, until
from test_media_in import OWNER_TG, jpeg, photo_sizes, telegram_steward

from bot.channels.telegram_albums import STATE_KEY

GROUP = -1002222222222


def album(tg: FakeTelegram, group_id: str, captions: list[str], **where: Any) -> None:
    for n, caption in enumerate(captions):
        sizes = photo_sizes(tg, jpeg(300 + n * 10, 200), 300 + n * 10, 200)
        extra: dict[str, Any] = {"photo": sizes, "media_group_id": group_id}
        if caption:
            extra["caption"] = caption
        tg.push_message("", extra=extra, **where)


async def test_an_album_is_one_turn_with_every_photo_and_the_caption(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        album(tg, "A1", ["which one is better?", "", ""], user_id=OWNER_TG)
        await until(lambda: tg.sent_texts(OWNER_TG), "the answer")
        await asyncio.sleep(1.5)  # nothing more comes
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
        chats = [t for t in await h.turns() if t.kind == "chat"]
    (request,) = [r for r in fake_model.requests if r.images]
    assert len(request.images) == 3 and "which one is better?" in request.last_user_text
    assert len(chats) == 1 and len(tg.sent_texts(OWNER_TG)) == 1
    (text,) = stored
    assert text.count("[photo saved as inbox/") == 3 and text.endswith("which one is better?")


async def test_an_album_in_a_group_is_addressed_by_its_captioned_part(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        where = {"user_id": OWNER_TG, "chat_id": GROUP, "chat_type": "supergroup"}
        album(tg, "G1", ["", "@steward_test_bot compare these"], **where)
        await until(lambda: tg.sent_texts(GROUP), "the answer in the group")
    (request,) = [r for r in fake_model.requests if r.images]
    assert len(request.images) == 2
    assert "</context>\ncompare these\n" in request.last_user_text  # the mention taken out


async def test_an_album_gathered_when_steward_stops_is_answered_after_the_start(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
        ) as h,
    ):
        state = h.steward.stores.state
        async with telegram_channel(h, tg, album_wait=60.0):
            album(tg, "R1", ["both of these, please", ""], user_id=OWNER_TG)

            async def held() -> int:
                return len(json.loads(await state.get(STATE_KEY) or "[]"))

            async with asyncio.timeout(10):
                while await held() < 2 or tg.pending_updates:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # persisted, and Telegram told they were taken
        assert fake_model.requests == []  # stopped while the album was gathered
        async with telegram_channel(h, tg, album_wait=0.2):
            await until(lambda: tg.sent_texts(OWNER_TG), "the answer after the start")
            await asyncio.sleep(0.5)
        assert await held() == 0
    (request,) = [r for r in fake_model.requests if r.images]
    assert len(request.images) == 2 and "both of these, please" in request.last_user_text
    assert len(tg.sent_texts(OWNER_TG)) == 1


async def test_every_caption_is_read_and_a_mention_in_any_part_addresses_the_album(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The album was the first captioned part's: a later part's mention in a group dropped
    the whole album, and a private album's later captions never reached the model."""
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        where = {"user_id": OWNER_TG, "chat_id": GROUP, "chat_type": "supergroup"}
        album(tg, "G2", ["invoice march", "@steward_test_bot which is higher?"], **where)
        await until(lambda: tg.sent_texts(GROUP), "the answer in the group")
    (request,) = [r for r in fake_model.requests if r.images]
    assert len(request.images) == 2
    assert "</context>\ninvoice march\nwhich is higher?\n" in request.last_user_text


async def test_a_message_right_after_an_album_is_answered_after_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Photos, then "which one is better?" typed at once: the text went ahead of the album
    (answered with no photos), the album after it."""
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        album(tg, "A3", ["", ""], user_id=OWNER_TG)
        video = {"video": {"file_id": "V1", "file_unique_id": "UV1", "duration": 3}}
        tg.push_message("", user_id=OWNER_TG, extra=video | {"media_group_id": "A3"})
        tg.push_message("which one is better?", user_id=OWNER_TG)
        await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 2, "both answers")
        chats = [r for r in fake_model.requests if "</context>" in r.last_user_text]
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
    assert len(chats[0].images) == 2 and "[a video, which I cannot open]" in stored[0]
    assert chats[1].last_user_text.rstrip().endswith("which one is better?")
