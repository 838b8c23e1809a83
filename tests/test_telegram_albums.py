"""Telegram albums (photos sent together) are one message: one turn with every photo and the
caption, in a private chat and in a group (where only one part carries the mention), and a
stop while an album is being gathered loses none of it (its parts are taken up at the next
start), through the Telegram and Anthropic fakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import OWNER, echo_reply, running_steward, telegram_channel, until
from test_media_in import OWNER_TG, jpeg, photo_sizes, telegram_steward

from bot.channels.telegram_albums import STATE_KEY
from memory.people import Identity

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


@pytest.mark.parametrize(
    ("captions", "said"),
    [
        (["", "@steward_test_bot compare these"], "compare these\n"),
        # a later part's mention dropped the whole album, and later captions were never read
        (
            ["invoice march", "@steward_test_bot which is higher?"],
            "invoice march\nwhich is higher?\n",
        ),
    ],
)
async def test_a_group_album_is_addressed_by_any_part_and_every_caption_read(
    tmp_path: Path, fake_model: FakeAnthropic, captions: list[str], said: str
) -> None:
    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        where = {"user_id": OWNER_TG, "chat_id": GROUP, "chat_type": "supergroup"}
        album(tg, "G1", captions, **where)
        await until(lambda: tg.sent_texts(GROUP), "the answer in the group")
    (request,) = [r for r in fake_model.requests if r.images]
    assert len(request.images) == 2
    assert "</context>\n" + said in request.last_user_text  # the mention taken out


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


def _part(update_id: int, group: str, chat: int = OWNER_TG, caption: str = "") -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id + 100,
        "date": 1,
        "chat": {"id": chat, "type": "private"},
        "from": {"id": chat, "is_bot": False, "first_name": "O"},
        "photo": [{"file_id": f"f{update_id}", "file_unique_id": f"u{update_id}",
                   "width": 10, "height": 10}],
        "media_group_id": group,
    }  # fmt: skip
    if caption:
        message["caption"] = caption
    return {"update_id": update_id, "message": message}


async def _collect(state: Any, raws: list[dict[str, Any]], wait: float) -> list[list[int]]:
    """Albums as a collector hands them on (not marked delivered: still in their turn)."""
    from bot.channels.telegram_albums import AlbumCollector
    from bot.channels.telegram_types import Update

    handed: list[list[int]] = []
    collector = AlbumCollector(state, lambda album: handed.append(album.update_ids), wait=wait)
    for raw in raws:
        await collector.hold(Update.from_raw(raw), raw)
    await asyncio.sleep(wait + 0.2)
    await collector.close()
    return handed


async def test_albums_of_a_chat_go_in_the_order_they_came(tmp_path: Path) -> None:
    """Two photos, then ten: the full album (handed on at once) overtook the first."""
    async with running_steward(tmp_path, None) as h:
        raws = [_part(1, "A"), _part(2, "A")] + [_part(3 + n, "B") for n in range(10)]
        handed = await _collect(h.steward.stores.state, raws, wait=0.3)
    assert handed == [[1, 2], list(range(3, 13))]


async def test_a_late_part_stays_an_album_of_its_own_across_a_restart(tmp_path: Path) -> None:
    """A part that came while its album's turn ran was restored into that album, and the
    album, seen before by its first part's id, was dropped with it."""
    from bot.channels.telegram_albums import AlbumCollector
    from bot.channels.telegram_types import Update

    async with running_steward(tmp_path, None) as h:
        state = h.steward.stores.state
        handed: list[list[int]] = []
        first = AlbumCollector(state, lambda album: handed.append(album.update_ids), wait=0.05)
        for raw in (_part(1, "L"), _part(2, "L")):
            await first.hold(Update.from_raw(raw), raw)
        await asyncio.sleep(0.2)  # handed on; its turn runs (not yet delivered)
        late = _part(3, "L", caption="and this one")
        await first.hold(Update.from_raw(late), late)
        await first.close()  # Steward stops before either is done
        again: list[list[int]] = []
        second = AlbumCollector(state, lambda album: again.append(album.update_ids), wait=0.05)
        assert sorted(await second.restore()) == [1, 2, 3]
        await asyncio.sleep(0.2)
        await second.close()
    assert handed == [[1, 2]] and again == [[1, 2], [3]]


def test_a_group_album_led_by_another_bots_command_is_still_steward_s_when_mentioned() -> None:
    """ "/sticker@other_bot" on the first part, "@steward_test_bot which?" on the second: the
    album was dropped as a command for another bot. A caption like "/r/pics" is no command,
    and a mention leaves the lines below it (code) as they were."""
    from bot.channels.telegram_types import Message
    from bot.channels.telegram_updates import album_in, message_in

    def part(n: int, caption: str) -> Message:
        raw = _part(n, "G", chat=GROUP, caption=caption)["message"]
        raw["chat"] = {"id": GROUP, "type": "supergroup"}
        raw["from"] = {"id": OWNER_TG, "is_bot": False, "first_name": "O"}
        return Message.from_raw(raw)

    bot = ("steward_test_bot", 42)
    album_msg = album_in([part(1, "/sticker@other_bot"), part(2, "@steward_test_bot which?")], *bot)
    assert album_msg is not None and album_msg.text == "which?\n/sticker@other_bot"
    assert album_msg.platform_message_id == f"{GROUP}:101" and len(album_msg.media) == 2
    assert album_in([part(1, "/r/pics best of the week")], *bot) is None
    code = part(3, "@steward_test_bot why does this fail?\ndef f():\n    return 1")
    said = message_in(code, *bot)
    assert said is not None and said.text == "why does this fail?\ndef f():\n    return 1"


async def test_two_members_albums_sent_at_once_stay_whole(tmp_path: Path) -> None:
    """Interleaved parts of two members' albums (A1 B1 A2 B2) handed each other on: every
    album one photo long, the uncaptioned ones dropped in a group."""
    async with running_steward(tmp_path, None) as h:
        raws = [_part(1, "A"), _part(2, "B", chat=OWNER_TG)]
        raws[1]["message"]["from"] = {"id": 5005, "is_bot": False, "first_name": "B"}
        more = [_part(3, "A"), _part(4, "B")]
        more[1]["message"]["from"] = raws[1]["message"]["from"]
        handed = await _collect(h.steward.stores.state, [*raws, *more], wait=0.3)
    assert sorted(handed) == [[1, 3], [2, 4]]


async def test_parts_held_by_the_version_before_batches_are_taken_up(tmp_path: Path) -> None:
    """The persisted form gained batches: parts held in the older form (a list of raw
    updates) were skipped without a word at the upgrade, and Telegram had moved past them."""
    import json

    from bot.channels.telegram_albums import STATE_KEY, AlbumCollector

    async with running_steward(tmp_path, None) as h:
        state = h.steward.stores.state
        await state.set(STATE_KEY, json.dumps([_part(7, "U"), _part(8, "U"), _part(9, "V")]))
        handed: list[list[int]] = []
        collector = AlbumCollector(state, lambda album: handed.append(album.update_ids), wait=0.05)
        assert sorted(await collector.restore()) == [7, 8, 9]
        await asyncio.sleep(0.2)
        await collector.close()
    assert sorted(handed) == [[7, 8], [9]]


async def test_another_members_reply_to_an_album_comes_after_the_album(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Ann's album, then Bob's "@steward_test_bot and what do you think?" replying to it: only
    Ann's own messages completed her album, so Bob's was answered before it was seen."""
    fake_model.on_request(echo_reply)
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
        ) as h,
    ):
        await h.steward.stores.people.admit(Identity("telegram", "5005"), "Bob")
        where = {"chat_id": GROUP, "chat_type": "supergroup"}
        album(tg, "G9", ["@steward_test_bot which is sharper?", ""], user_id=OWNER_TG, **where)
        first = max(m for c, m in tg.messages if c == GROUP) - 1
        tg.push_message(
            "@steward_test_bot and what do you think?",
            user_id=5005,
            reply_to_message_id=first,
            **where,
        )
        async with telegram_channel(h, tg, album_wait=5.0):
            await until(lambda: len(tg.sent_texts(GROUP)) >= 2, "both answers")
    asked = [r for r in fake_model.requests if "</context>" in r.last_user_text]
    assert len(asked[0].images) == 2 and "what do you think" in asked[1].last_user_text


async def test_a_strangers_part_under_the_owners_album_id_is_not_the_owners(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Parts were gathered by chat and album id alone and the album read as its first part's
    sender's: a stranger's part carrying the owner's id ran its caption as the owner's command."""
    fake_model.on_request(echo_reply)
    stranger = 6666
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        where = {"chat_id": GROUP, "chat_type": "supergroup"}
        album(tg, "G7", ["@steward_test_bot which is sharper?"], user_id=OWNER_TG, **where)
        command = f"/allow@steward_test_bot telegram:{stranger}"
        sizes = photo_sizes(tg, jpeg(310, 200), 310, 200)
        extra = {"photo": sizes, "media_group_id": "G7", "caption": command}
        extra["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": 23}]
        tg.push_message("", user_id=stranger, extra=extra, **where)
        await until(lambda: tg.sent_texts(GROUP), "the answer in the group")
        await asyncio.sleep(1.5)  # the stranger's part, had it been held, is handed on by now
        admitted = await h.steward.stores.people.resolve(Identity("telegram", str(stranger)))
    assert admitted is None
    (request,) = [r for r in fake_model.requests if r.images]
    assert len(request.images) == 1 and "/allow" not in request.last_user_text
