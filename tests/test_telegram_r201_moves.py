"""R201: a Telegram group upgraded to a supergroup keeps its conversation.

The real core and the real Telegram channel run against the loopback Bot API fake, whose basic
group -4000 becomes the supergroup -1004000: Telegram's two service messages say so, and a
send to the old id is answered 400 with `migrate_to_chat_id`. The channel's hook is wired as
bot/channel_start.py wires it (`wire_channel`, `chat_moved`).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram, TelegramError
from harness import Harness, echo_reply, running_steward, telegram_channel, until
from test_telegram_boundary import OWNER, OWNER_TG, settle

from bot.channel_start import wire_channel

OLD, NEW = -4000, -1004000
TEAM = {"id": OLD, "type": "group", "title": "Team"}


class _Moved(TelegramError):
    def payload(self) -> dict[str, Any]:
        body = super().payload()
        body["parameters"] = {"migrate_to_chat_id": NEW}
        return body


class MigratingTelegram(FakeTelegram):
    """Once `migrated`, a send to the old basic group is answered 400 with its new id."""

    migrated = False

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.migrated and str(params.get("chat_id")) == str(OLD):
            raise _Moved(400, "Bad Request: group chat was upgraded to a supergroup chat")
        return super()._m_sendMessage(params)

    def migrate(self, *, say: bool = True) -> None:
        """The upgrade; `say`: with Telegram's service messages in both chats."""
        self.migrated = True
        self.chats[NEW] = {"id": NEW, "type": "supergroup", "title": "Team"}
        if not say:
            return
        owner = {"id": OWNER_TG, "is_bot": False, "first_name": "Ann"}
        said = [(TEAM, "migrate_to_chat_id", NEW), (self.chats[NEW], "migrate_from_chat_id", OLD)]
        for chat, field, other in said:
            message = self._new_message(chat, owner, "")
            message.pop("text")
            message[field] = other
            self.push_update({"message": message})


@asynccontextmanager
async def team(tmp_path: Path, model: FakeAnthropic, tg: FakeTelegram) -> AsyncIterator[Harness]:
    """The core and the channel on the fake, its hook wired as bot/channel_start.py wires it."""
    owner = f"{OWNER},telegram:{OWNER_TG}"
    async with (
        running_steward(tmp_path, model.base_url, STEWARD_OWNER=owner) as h,
        telegram_channel(h, tg) as channel,
    ):
        wire_channel(h.steward, channel)
        tg.chats[OLD] = TEAM
        yield h


def rows(h: Harness, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(h.settings.database_path)) as db:
        return db.execute(sql).fetchall()


def say(tg: FakeTelegram, text: str, chat: int, **extra: Any) -> None:
    kind = "group" if chat == OLD else "supergroup"
    tg.push_message(text, user_id=OWNER_TG, chat_id=chat, chat_type=kind, **extra)


async def test_a_group_upgraded_to_a_supergroup_keeps_its_history_and_reminders(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The owner tells the group its code word and sets a reminder; the group is upgraded.
    In the supergroup the model sees the earlier words, the reminder goes straight to the new
    id, and a reply to it is a reply to Steward's own message (not outside content)."""
    fake_model.on_request(echo_reply)
    async with MigratingTelegram() as tg, team(tmp_path, fake_model, tg) as h:
        say(tg, "@steward_test_bot our standup code word is WOMBAT", OLD)
        await until(lambda: tg.sent_texts(OLD), "the answer in the old group")
        say(tg, "/remind 3s standup WOMBAT", OLD)
        await until(lambda: len(tg.sent_texts(OLD)) >= 2, "the reminder set")
        tg.migrate()
        await until(
            lambda: rows(h, "SELECT 1 FROM audit_events WHERE kind = 'chat.moved'"), "moved"
        )
        say(tg, "@steward_test_bot what is our standup code word?", NEW)
        await until(lambda: [t for t in tg.sent_texts(NEW) if "code word?" in t], "answered")
        await asyncio.sleep(3)
        await h.steward.scheduler.run_due()
        reminder = (await until(lambda: reminders(tg), "the reminder"))[0]
        await settle(h)
        say(tg, "thanks", NEW, reply_to_message_id=reminder.result["message_id"])
        await until(lambda: [t for t in tg.sent_texts(NEW) if "thanks" in t], "the reply")
        await settle(h)
        last = (await h.turns())[-1]
    asked = fake_model.requests[-1].messages
    (code_word,) = [r for r in fake_model.requests if "code word?" in r.last_user_text]
    assert "our standup code word is WOMBAT" in str(code_word.messages)
    assert [c.params["chat_id"] for c in reminders(tg)] == [str(NEW)], "no try at the old id"
    assert not last.tainted and "Reminder: standup WOMBAT" in str(asked)
    assert rows(h, "SELECT platform_chat_id FROM chats WHERE kind = 'group'") == [(str(NEW),)]


async def test_a_send_told_the_group_moved_moves_the_chat(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """No service message came (the upgrade while Steward was down and its updates were
    older than a day): the first send learns the new id from Telegram's 400; the chat follows,
    and the next send goes to the new id at once."""
    fake_model.on_request(echo_reply)
    async with MigratingTelegram() as tg, team(tmp_path, fake_model, tg) as h:
        say(tg, "@steward_test_bot first", OLD)
        await until(lambda: tg.sent_texts(OLD), "the first answer")
        await settle(h)
        tg.migrate(say=False)
        say(tg, "@steward_test_bot second", OLD)  # sent before the upgrade, read after it
        await until(lambda: tg.sent_texts(NEW), "the answer, in the supergroup")
        await settle(h)
        say(tg, "@steward_test_bot third", NEW)
        await until(lambda: len(tg.sent_texts(NEW)) >= 2, "the next answer")
        await settle(h)
    refused = [c for c in tg.calls_to("sendMessage") if c.status == 400]
    assert len(refused) == 1, [(c.params["chat_id"], c.params["text"]) for c in refused]
    assert rows(h, "SELECT platform_chat_id FROM chats WHERE kind = 'group'") == [(str(NEW),)]
    (third,) = [r for r in fake_model.requests if r.last_user_text.endswith("third")]
    assert "first" in str(third.messages) and "re: second" in str(third.messages)


def reminders(tg: FakeTelegram) -> list[Any]:
    return [
        c
        for c in tg.calls_to("sendMessage")
        if c.status == 200 and str(c.params.get("text")).startswith("Reminder:")
    ]
