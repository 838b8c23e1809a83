"""A text over 4,096 characters comes from Telegram's apps as several messages: Steward answers
the paste once, whole, in the order typed (each part answered alone answered half of it),
also across a stop while it is gathered; what is not a part (a command, a short text typed
alone) is answered as before. Through the Telegram and Anthropic fakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import OWNER, echo_reply, running_steward, telegram_channel, until
from test_media_in import OWNER_TG, telegram_steward

from bot.channels.telegram_albums import STATE_KEY


def paste(n: int, marker: str) -> str:
    """About `n` characters of words, starting with `marker` (the apps cut at a word break)."""
    words = f"{marker} " + " ".join(f"w{i}" for i in range(n))
    return words[: words.rfind(" ", 0, n)]


async def test_a_paste_split_by_the_app_is_one_turn_with_every_part_in_order(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    parts = [paste(4090, "ONE"), paste(4060, "TWO"), "PART-THREE: what do you make of it?"]
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        for part in parts:
            tg.push_message(part, user_id=OWNER_TG)
            await asyncio.sleep(0.3)  # the app sends them one after another
        await until(lambda: tg.sent_texts(OWNER_TG), "the answer")
        await asyncio.sleep(1.0)  # nothing more is answered
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
        chats = [t for t in await h.turns() if t.kind == "chat"]
    assert len(chats) == 1 and len(fake_model.requests) == 1
    (text,) = stored
    assert text == "\n".join(parts)
    assert "\n".join(parts) in fake_model.requests[0].last_user_text


async def test_a_long_text_alone_is_answered_whole_once_and_a_short_one_at_once(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    long = paste(3800, "LONG")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        tg.push_message(long, user_id=OWNER_TG)
        await until(lambda: tg.sent_texts(OWNER_TG), "the answer to the long text")
        await asyncio.sleep(0.5)
        tg.push_message("and a short one", user_id=OWNER_TG)
        await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 2, "the short one answered")
    first, second = fake_model.requests
    assert long in first.last_user_text and "and a short one" not in first.last_user_text
    assert second.last_user_text.rstrip().endswith("and a short one")


async def test_a_command_after_a_long_text_is_not_a_part_of_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    long = paste(4000, "LONG")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        tg.push_message(long, user_id=OWNER_TG)
        tg.push_message("/status", user_id=OWNER_TG)
        await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 2, "both answered")
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
    assert stored[0] == long and stored[1] == "/status"  # in the order typed
    (request,) = fake_model.requests
    assert "/status" not in request.last_user_text


async def test_a_paste_gathered_when_steward_stops_is_answered_whole_after_the_start(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    parts = [paste(4080, "FIRST"), "SECOND and last"]
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}"
        ) as h,
    ):
        state = h.steward.stores.state

        async def held() -> int:
            return len(json.loads(await state.get(STATE_KEY) or "[]"))

        async with telegram_channel(h, tg, album_wait=60.0):
            tg.push_message(parts[0], user_id=OWNER_TG)
            async with asyncio.timeout(10):
                while await held() < 1 or tg.pending_updates:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        assert fake_model.requests == []  # stopped while the paste was gathered
        async with telegram_channel(h, tg, album_wait=5.0):
            await asyncio.sleep(0.3)
            tg.push_message(parts[1], user_id=OWNER_TG)  # the rest, after the start
            await until(lambda: tg.sent_texts(OWNER_TG), "the answer after the start")
            await asyncio.sleep(0.5)
        assert await held() == 0
    (request,) = fake_model.requests
    assert "\n".join(parts) in request.last_user_text
    assert len(tg.sent_texts(OWNER_TG)) == 1


class _SlowState:
    """A state store whose next write of a part takes `slow` seconds (a busy disk)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.slow = 0.0

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def set(self, key: str, value: str) -> None:
        await asyncio.sleep(self.slow)
        self.values[key] = value


def _text(update_id: int, text: str, **more: object) -> dict[str, object]:
    chat = {"id": OWNER_TG, "type": "private", "first_name": "O"}
    sender = {"id": OWNER_TG, "is_bot": False, "first_name": "O"}
    message = {"message_id": update_id + 100, "date": 1, "chat": chat, "from": sender}
    return {"update_id": update_id, "message": message | {"text": text} | more}


async def test_a_part_written_while_the_wait_ends_is_never_lost() -> None:
    """R144: the wait ran out while the next part was being written; the gathering went on
    without it, and the part was added to what had already gone: never answered."""
    from bot.channels.telegram_albums import AlbumCollector
    from bot.channels.telegram_types import Update

    state = _SlowState()
    handed: list[list[int]] = []
    collector = AlbumCollector(state, lambda a: handed.append(list(a.update_ids)), wait=0.1)  # type: ignore[arg-type]
    first, second = _text(1, paste(3700, "PART1")), _text(2, "PART2 and the end")
    await collector.hold(Update.from_raw(first), first)
    state.slow = 0.5  # longer than the 0.2 s the paste waits
    await collector.hold(Update.from_raw(second), second)
    await asyncio.sleep(0.5)
    await collector.close()
    assert sorted(i for album in handed for i in album) == [1, 2], handed


async def test_a_long_reply_or_another_topics_text_is_not_a_part_of_a_paste(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R144: a long reply joined the paste before it (and lost what it replied to); in a
    private chat with topics, another topic's question joined a paste and was answered in
    the paste's topic."""
    from test_reply_to_someone import newest_id

    fake_model.on_request(echo_reply)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        tg.push_message("ORIGINAL: the landlord says rent goes up", user_id=OWNER_TG)
        earlier = newest_id(tg, OWNER_TG)
        await until(lambda: tg.sent_texts(OWNER_TG), "the first answer")
        tg.push_message(paste(3700, "DOC-A"), user_id=OWNER_TG)
        tg.push_message(paste(3700, "REPLY-B"), user_id=OWNER_TG, reply_to_message_id=earlier)
        await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 3, "both answered")
        for text, topic in ((paste(3700, "TOPIC-A"), 11), ("TOPIC-B: and Tokyo?", 22)):
            extra = {"is_topic_message": True, "message_thread_id": topic}
            tg.push_message(text, user_id=OWNER_TG, extra=extra)
        await until(lambda: len(tg.sent_texts(OWNER_TG)) >= 5, "both topics answered")
    doc, reply, topic_a, topic_b = (r.last_user_text for r in fake_model.requests[1:])
    assert "DOC-A" in doc and "REPLY-B" not in doc
    assert "REPLY-B" in reply and "ORIGINAL" in reply and "DOC-A" not in reply
    assert "TOPIC-A" in topic_a and "TOPIC-B" not in topic_a and "TOPIC-B" in topic_b


async def test_an_inline_bots_text_after_a_paste_is_not_the_owners(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R153: after a long paste, a text the owner sent through an inline bot (`@bot query`:
    the bot's words) joined the paste as its next part, and the whole became the owner's own
    words: its order wrote a file with no card. It is the bot's, fenced, and asks first."""
    from test_telegram_boundary import cards, fenced, settle, unfenced, written
    from trust_world import instruction, obedient_model

    fake_model.on_request(obedient_model)
    order = instruction("write_file", {"path": "inline.txt", "content": "pwned"})
    bot = {"id": 555, "is_bot": True, "first_name": "Gifs", "username": "gifsbot"}
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        tg.push_message(paste(3800, "LONG"), user_id=OWNER_TG)
        tg.push_message(f"Funny cat. {order}", user_id=OWNER_TG, extra={"via_bot": bot})
        await until(lambda: cards(tg), "an approval card to the owner")
        await settle(h)
    assert not written(tmp_path, "inline.txt")
    assert fenced(fake_model, "Funny cat.") and not unfenced(fake_model, "Funny cat.")


def test_parts_of_differing_authors_are_never_the_first_parts_own() -> None:
    """However parts come to be gathered, one written by someone else (a forward, an inline
    bot's) makes the whole someone else's words, not the owner's."""
    from bot.channels.telegram_types import Message
    from bot.channels.telegram_updates import album_in

    chat = {"id": OWNER_TG, "type": "private", "first_name": "O"}
    owner = {"id": OWNER_TG, "is_bot": False, "first_name": "O"}
    bot = {"id": 555, "is_bot": True, "first_name": "Gifs", "username": "gifsbot"}
    own = {"message_id": 1, "date": 1, "chat": chat, "from": owner, "text": "mine"}
    inline = own | {"message_id": 2, "text": "the bot's", "via_bot": bot}
    forward = own | {"message_id": 3, "text": "Eve's"}
    forward["forward_origin"] = {"type": "hidden_user", "sender_user_name": "Eve", "date": 1}
    for parts in ([own, inline], [own, forward]):
        incoming = album_in([Message.from_raw(p) for p in parts], "stewardbot", 123456)
        assert incoming is not None and incoming.forwarded_from, parts
    alone = album_in([Message.from_raw(own)], "stewardbot", 123456)
    assert alone is not None and alone.forwarded_from is None
