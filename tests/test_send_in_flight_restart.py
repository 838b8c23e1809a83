"""A reply whose platform send was under way when `steward run` was SIGKILLed: Telegram took the
sendMessage, the process died before the answer, and the message was left unmarked. The next
start sends it once more under a note that it may be a repeat, never a second plain copy; a
message stored but never tried goes out once, plainly (agent/delivery.py `RESENT`). The note
stays with the message through a failed retry, and a long one cut short after its first part
gets the note before the rest only."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import (
    RecordingChannel,
    run_env,
    running_steward,
    steward_process,
    telegram_channel,
    until,
)

from agent.errors import DeliveryError
from agent.types import Address
from memory.labels import TRUSTED

OWNER_TG = 1001
REMINDER = "Reminder: tea-x"
NEVER_TRIED = "Never tried: the boiler note"
NOTE = "resent after a restart"


class AnswerHeldTelegram(FakeTelegram):
    """Carries out a sendMessage containing `hold` at once (the chat has it) but never answers
    it while `hold` is set: the process dies waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: str | None = REMINDER
        self.holding = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        response = await super()._handle(request)
        last = self.calls[-1] if self.calls else None
        if (
            self.hold is not None
            and last is not None
            and last.method == "sendMessage"
            and self.hold in str(last.params.get("text"))
        ):
            self.holding.set()
            await asyncio.sleep(3600)  # until the fake stops
        return response


def _stored_out(db: Path) -> list[tuple[int, int, str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT id, chat_id, text, status FROM messages WHERE direction = 'out' ORDER BY id"
        ).fetchall()
    conn.close()
    return rows


def _store_never_tried(db: Path, chat_id: int) -> None:
    """What a crash between storing a message and its first send leaves: `pending`, untried."""
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO messages (chat_id, direction, text, status, created_at, updated_at)"
            " VALUES (?, 'out', ?, 'pending', strftime('%Y-%m-%dT%H:%M:%fZ'),"
            " strftime('%Y-%m-%dT%H:%M:%fZ'))",
            (chat_id, NEVER_TRIED),
        )
    conn.close()


async def test_a_send_cut_short_by_sigkill_is_sent_again_once_marked_and_an_untried_one_plainly(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    db = tmp_path / "data" / "steward.db"
    async with AnswerHeldTelegram() as tg:
        env = run_env(tmp_path, fake_model, tg, OWNER_TG, STEWARD_EMBEDDER="none")
        async with steward_process(env, tmp_path / "first.log") as process:
            await tg.wait_for("getUpdates", timeout=60)
            tg.push_message("/remind 2s tea-x", user_id=OWNER_TG)
            await asyncio.wait_for(tg.holding.wait(), 30)
            await asyncio.sleep(0.3)  # the courier is awaiting the answer
            process.send_signal(signal.SIGKILL)
            await process.wait()
        tg.hold = None
        [(_, chat_id, _, status)] = [r for r in _stored_out(db) if r[2] == REMINDER]
        assert status == "pending", "the kill came after the send was recorded"
        _store_never_tried(db, chat_id)

        polls = len(tg.calls_to("getUpdates"))
        async with steward_process(env, tmp_path / "second.log"):
            await tg.wait_for("getUpdates", count=polls + 1, timeout=60)
            await until(lambda: NEVER_TRIED in "".join(tg.sent_texts(OWNER_TG)), "the untried")
            await until(lambda: len(_copies(tg, REMINDER)) >= 2, "the reminder again", 10)
            await asyncio.sleep(1.0)  # anything more would come now

            reminders = _copies(tg, REMINDER)
            plain = [t for t in reminders if t == REMINDER]
            marked = [t for t in reminders if t != REMINDER]
            assert len(plain) == 1, f"plain copies: {reminders}"
            assert len(marked) == 1 and NOTE in marked[0], f"copies: {reminders}"
            assert marked[0].index(NOTE) < marked[0].index(REMINDER), "the note heads the copy"
            assert _copies(tg, NEVER_TRIED) == [NEVER_TRIED], "untried: once, without the note"
            statuses = {text: status for _, _, text, status in _stored_out(db)}
            assert statuses[REMINDER] == statuses[NEVER_TRIED] == "sent"


def _copies(tg: FakeTelegram, text: str) -> list[str]:
    return [t for t in tg.sent_texts(OWNER_TG) if text in t]


class HangingChannel(RecordingChannel):
    """The platform has the message; its answer never comes (the process dies waiting)."""

    async def send_text(self, address: Address, text: str) -> str | None:
        await super().send_text(address, text)
        await asyncio.Event().wait()
        return None


class DownOnceChannel(RecordingChannel):
    async def send_text(self, address: Address, text: str) -> str | None:
        if not self.sent:
            self.sent.append((address, "(refused)"))
            raise DeliveryError("the platform is down")
        return await super().send_text(address, text)


async def test_the_note_stays_with_a_message_cut_short_through_a_failed_retry(
    tmp_path: Path,
) -> None:
    from agent.delivery import RESENT  # here: the first test runs on the code before it too

    async with running_steward(tmp_path, None) as h:
        await h.say("/help")  # the chat
        chat = await h.steward.stores.people.chat("test", "c1")
        hanging = HangingChannel()
        h.steward.switchboard.register("test", hanging)
        send = asyncio.create_task(
            h.steward.courier.send(Address("test", "c1"), chat.id, "Reminder: tea", label=TRUSTED)
        )
        await until(lambda: hanging.sent, "the send under way")
        send.cancel()  # the crash
        await asyncio.gather(send, return_exceptions=True)
    async with running_steward(tmp_path, None) as h:
        down = DownOnceChannel()
        h.steward.switchboard.register("test", down)
        assert await h.steward.courier.redeliver() == 0  # the platform is down at start-up
        assert await h.steward.courier.redeliver() == 1  # later
        assert down.texts("c1") == ["(refused)", f"{RESENT}\n\nReminder: tea"]


async def test_a_long_message_cut_short_after_its_first_part_gets_the_note_before_the_rest(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    from agent.delivery import RESENT

    first, second = "alpha " * 600, "omega " * 600  # two Telegram messages
    env = {"STEWARD_OWNER": f"test:owner,telegram:{OWNER_TG}", "STEWARD_STREAMING": "off"}
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    async with FakeTelegram() as tg:
        async with running_steward(tmp_path, fake_model.base_url, **env) as h:
            chat = await h.steward.stores.people.chat("telegram", str(OWNER_TG))
            # what a crash while the second part was on its way leaves
            h.edit_database(
                "INSERT INTO messages (chat_id, direction, text, status, created_at, updated_at,"
                " parts_sent, sending_since) VALUES (?, 'out', ?, 'pending', ?, ?, 1, ?)",
                (chat.id, f"{first.strip()}\n\n{second.strip()}", *[an_hour_ago] * 3),
            )
        async with (
            running_steward(tmp_path, fake_model.base_url, **env) as h,
            telegram_channel(h, tg),
        ):
            assert await h.steward.courier.redeliver() == 1
        sent = tg.sent_texts(OWNER_TG)
    assert [t[:5] for t in sent] == [RESENT[:5], "omega"], "the note, then the part not seen"
    assert sent[0] == RESENT


class _RestFails(RecordingChannel):
    """The note goes through; the rest of the message fails (for now) `failures` times."""

    failures = 3

    async def send_text(self, address: Address, text: str) -> str | None:
        from agent.delivery import RESENT

        if text != RESENT and self.failures > 0:
            self.failures -= 1
            raise DeliveryError("timed out")  # passing: tried again later
        return await super().send_text(address, text)


async def test_a_long_message_that_keeps_failing_gets_one_note_not_one_per_try(
    tmp_path: Path,
) -> None:
    """Review 87: each retry of the rest after a restart posted the note again: an outage of
    a day would have filled the chat with them."""
    from agent.delivery import RESENT

    async with running_steward(tmp_path, None) as h:
        await h.say("/help")
        chat = await h.steward.stores.people.chat("test", "c1")
        h.edit_database(
            "INSERT INTO messages (chat_id, direction, text, status, created_at, updated_at,"
            " parts_sent, sending_since) VALUES (?, 'out', ?, 'pending', ?, ?, 1, ?)",
            (chat.id, "alpha part\n\nomega part", *[datetime.now(UTC).isoformat()] * 3),
        )
    async with running_steward(tmp_path, None) as h:
        channel = _RestFails()
        h.steward.switchboard.register("test", channel)
        tries = [await h.steward.courier.redeliver() for _ in range(4)]
        assert tries[-1] == 1  # delivered at last
        texts = channel.texts("c1")
        assert texts.count(RESENT) == 1, texts
        assert sum("omega part" in text for text in texts) == 1  # the rest, once


async def test_a_reply_waiting_for_over_a_week_is_not_sent_at_the_next_start(
    tmp_path: Path,
) -> None:
    """Reviews 89 and 92: "retried for up to a week" held while Steward ran; stopped for a
    month, the next start sent month-old replies all the same: failed, never tried, or cut
    short mid-send (that one even without its age)."""
    month = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")
    async with running_steward(tmp_path, None) as h:
        await h.say("/help")
        chat = await h.steward.stores.people.chat("test", "c1")
        for text, status, sending in (
            ("failed a month ago", "failed", None),
            ("written a month ago", "pending", None),
            ("cut short a month ago", "pending", month[1]),
        ):
            h.edit_database(
                "INSERT INTO messages (chat_id, direction, text, status, created_at, updated_at,"
                " sending_since) VALUES (?, 'out', ?, ?, ?, ?, ?)",
                (chat.id, text, status, *month, sending),
            )
    async with running_steward(tmp_path, None) as h:
        channel = RecordingChannel()
        h.steward.switchboard.register("test", channel)
        assert await h.steward.courier.redeliver() == 0
        old = [m for m in await h.steward.stores.messages.all() if "a month ago" in m.text]
        assert len(old) == 3 and {m.status for m in old} == {"undeliverable"}
        # the owner is told once, in their own chat, which works (review 93)
        [told] = channel.texts("c1")
        assert "waited over a week" in told and "a month ago" not in told


async def test_a_send_given_up_with_its_answer_lost_says_it_may_be_a_copy_after_a_restart(
    tmp_path: Path,
) -> None:
    """Telegram carried out every try of a send but each answer was lost; the message was left
    failed. The channel marks its next copy (`SENT_AGAIN`) only while it runs: after a restart
    the copy went plainly, a silent second message (s29's leftover)."""
    from test_failures_r198_channels import TakesThenDropsTelegram

    from agent.delivery import RESENT, SENT_AGAIN

    env = {"STEWARD_OWNER": f"test:owner,telegram:{OWNER_TG}", "STEWARD_STREAMING": "off"}
    async with TakesThenDropsTelegram() as tg:
        for restart in (False, True):
            tg.drops = 99
            async with running_steward(tmp_path / str(restart), None, **env) as h:
                chat = await h.steward.stores.people.chat("telegram", str(OWNER_TG))
                async with telegram_channel(h, tg, send_attempts=2):
                    where = Address("telegram", str(OWNER_TG))
                    await h.steward.courier.send(where, chat.id, REMINDER, label=TRUSTED)
                    tg.drops = 0
                    before = len(tg.sent_texts(OWNER_TG))
                    if not restart:
                        assert await h.steward.courier.redeliver() == 1
                        assert tg.sent_texts(OWNER_TG)[before:] == [SENT_AGAIN, REMINDER]
            if restart:
                async with (
                    running_steward(tmp_path / str(restart), None, **env) as h,
                    telegram_channel(h, tg),
                ):
                    assert await h.steward.courier.redeliver() == 1
                assert tg.sent_texts(OWNER_TG)[before:] == [f"{RESENT}\n\n{REMINDER}"]
