"""Outgoing messages: stored first, then sent through the Outbox, then marked sent.

A message the channel could not deliver stays in SQLite as `failed` and is sent again by
`redeliver()` (at start-up) and by `keep_redelivering()` (in the background, with backoff), as
is one stored whose writer could not begin its send (`take_over`, R203).
Each send is noted before the platform call (`begin_send`): a message a crash cut short
mid-send may have arrived, so it is sent again once under `RESENT`, never silently twice. The
rest of a long message sent on a later try goes under a note (`REST`, `Resumed`); a whole one
that a later message overtook, under `HELD_BACK` (R201). A platform that asks for a wait
(`Throttled`: Telegram's 429 `retry_after`) is not tried again before it is over.

(Some 510 lines: a message's first send, its redelivery and the notes that say what a copy, a
late message or the rest of one is, read the same stored states and are kept together.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from agent.cards import escape_invisible
from agent.outbox import DeliveryError, Outbox, Parts, sending_parts
from agent.private_chats import is_private_chat, private_address
from agent.scheduler.recurrence import describe_delta
from agent.streaming import LivePreview
from agent.types import Address, ApprovalPrompt
from memory.labels import TRUSTED, Label
from memory.messages import OutStatus, StoredMessage
from memory.stores import Stores

__all__ = [
    "SENT_AGAIN",
    "Courier",
    "Resumed",
    "Throttled",
    "Unrecorded",
    "is_private_chat",
    "private_address",
]

log = logging.getLogger(__name__)

MAX_AGE = timedelta(days=7)
LATE_AFTER = timedelta(minutes=15)  # a message redelivered this long after it was written says so
REPEAT = "a later copy of the same message went out instead"
"""How long a message that keeps failing (not refused for good) is tried before it is given up:
long enough for any outage, so the owner's own messages are not lost to one."""
RESENT = "(resent after a restart; you may have this already)"
"""Heads a message sent again after a crash cut its send short: the platform may have taken it
before the process died, and the owner must be able to tell the copy from a new message."""
SENT_AGAIN = (
    "(the next message is sent again: the connection broke while I sent it, so you may have it "
    "already)"
)
"""Goes before a message a channel sends again after a send whose answer was lost (R198): the
chat may have it. A channel says it itself, as only it knows whether the request went out."""
REST = "(the rest of my message from {age} ago)"
"""Heads the rest of a long message sent on a later try than its first parts when something
else went to the chat in between (R189: the rest, alone under the next answer, read as part of
it). With nothing between, the rest goes on from where the first parts stopped, as before."""

HELD_BACK = "(my answer to «{words}», held back until now)"
HELD_BACK_MESSAGE = "(my message from {age} ago, held back until now)"
"""Heads a whole message sent on a later try after a later message of Steward's went to the
chat (R201: the answer to "first", held back by Telegram's flood control, read as the answer to
"second", which had gone before it)."""
_WORDS = 60
"""Of the message a held-back answer answers, what its note quotes."""

_IN_PARTS = frozenset({"telegram", "slack"})
"""The channels that send a long message in parts and, sending it again, resume after the parts
already out (bot/channels/telegram_send.py, slack.py `send_text`): they send a `Resumed`
message's note just before the first part left, and no note when no part is left. Elsewhere
the whole text goes again, after the courier's `RESENT`."""


class Throttled(DeliveryError):
    """The platform asked for a wait before the next try (Telegram's 429 `retry_after`, longer
    than a send waits itself): redelivery respects it (R201: tried again after a second)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unrecorded(str):
    """A message that carries a secret (a `/web` login link): sent as it is, but the message
    log (and so the database and its backups) keeps only `stored`. A redelivery sends that."""

    stored: str

    def __new__(cls, text: str, stored: str) -> Unrecorded:
        made = super().__new__(cls, text)
        made.stored = stored
        return made


@dataclass
class Resumed(Parts):
    """A long message sent again from the part after `done`: the channel awaits `head()` just
    before that part, so a note goes only with parts that remain (R189: one whose every part
    was out before a crash got "resent" alone, with nothing after it)."""

    heading: Callable[[], Awaitable[None]] | None = None
    headed: bool = False

    async def head(self) -> None:
        """Send the note that goes before the rest (once)."""
        if self.heading is not None and not self.headed:
            self.headed = True
            await self.heading()


class Courier:
    def __init__(self, stores: Stores, outbox: Outbox) -> None:
        self._stores = stores
        self.outbox = outbox
        self._told_undeliverable: set[tuple[str, str]] = set()
        self._sending: set[int] = set()  # ids of the messages this process is sending now
        # per chat, the message whose text (or part of it) this process sent there last: 0
        # for something else (a card)
        self._last_sent: dict[tuple[str, str], int] = {}
        self._failed = asyncio.Event()  # a send failed: redelivery has work again
        self._not_before: dict[int, float] = {}  # message id -> loop time the platform asked
        self._taken_over: set[int] = set()  # stored messages their writer left unsent (R203)
        # messages whose failed send may have arrived, that the channel itself marks when it
        # sends them again (`SENT_AGAIN`): after a restart it no longer knows, `RESENT` does
        self._channel_marks: set[int] = set()

    async def send(
        self,
        address: Address,
        chat_id: int,
        text: str,
        *,
        label: Label,
        turn_id: int | None = None,
        in_history: bool = True,
        live: LivePreview | None = None,
        schedule_id: int | None = None,
    ) -> bool:
        """Store and deliver one message; False when the channel failed (it stays queued).
        `in_history=False` keeps it out of the conversation the model sees (command answers);
        `label` is that of what wrote it (a turn that read a page, a job a page planted): no
        default, so every writer says whether what it sends came from outside. `live` is the
        streamed preview this message replaces (the first attempt only: a redelivery is sent
        the ordinary way)."""
        message_id = await self._stores.messages.record_outgoing(
            chat_id=chat_id,
            text=text.stored if isinstance(text, Unrecorded) else text,
            thread_id=address.thread_id,
            turn_id=turn_id,
            in_history=in_history,
            label=label,
            schedule_id=schedule_id,
        )
        return await self._deliver(message_id, address, text, live)

    async def _deliver(
        self,
        message_id: int,
        address: Address,
        text: str,
        live: LivePreview | None = None,
        *,
        parts_sent: int = 0,
        repeat: bool = False,
        rest_note: str | None = None,
        heading: str | None = None,
    ) -> bool:
        """Send one stored message; `parts_sent`: of a long one, the parts an earlier attempt
        delivered (the channel resumes after them, and notes each part it delivers). `repeat`:
        an earlier send was cut short mid-way, so this one says it may be a copy: `RESENT`
        heads the whole message, or, where parts are already out, goes just before the rest.
        A headed message keeps no count of its parts (its split is not the stored text's): a
        later restart sends it whole again, under the note, rather than skip any of it. Where
        the channel resumes (`Resumed`), it sends the note (`RESENT`, else `rest_note`) just
        before the rest; with every part out, nothing goes, not even the note (R189).
        `heading`: a note that heads the whole message (`HELD_BACK`), as `RESENT` does."""
        chat = (address.channel, address.chat_id)

        async def save(parts: int) -> None:
            self._last_sent[chat] = message_id
            await self._stores.messages.set_parts_sent(message_id, parts)

        async def head() -> None:
            note = RESENT if repeat else rest_note
            if note is not None:
                await self.outbox.send_text(address, note)
            if repeat:
                await self._stores.messages.repeat_told(message_id)

        note = None if parts_sent else RESENT if repeat else heading
        sent = f"{note}\n\n{text}" if note else text
        in_parts = parts_sent and address.channel in _IN_PARTS
        resumed = Resumed(text, parts_sent, save, head) if in_parts else None
        parts = resumed if resumed is not None else Parts(text, parts_sent, save)
        kept = contextlib.nullcontext() if note else sending_parts(parts)
        self._sending.add(message_id)
        try:
            if not await self._stores.messages.begin_send(message_id, may_repeat=repeat):
                return False  # given up meanwhile: its person was revoked (R132)
            try:
                with kept:
                    if repeat and parts_sent and resumed is None:
                        await self.outbox.send_text(address, RESENT)
                        await self._stores.messages.repeat_told(message_id)
                    if live is not None:
                        platform_id = await live.finish(text)
                    else:
                        platform_id = await self.outbox.send_text(address, sent)
            except DeliveryError as exc:
                log.warning("message %s to %s not delivered: %s", message_id, address.channel, exc)
                if exc.permanent:  # blocked, removed, gone: another try cannot help
                    await self._give_up(message_id, address, str(exc))
                else:
                    if isinstance(exc, Throttled):
                        wait = asyncio.get_running_loop().time() + exc.retry_after
                        self._not_before[message_id] = wait
                    if exc.unsure:  # kept for a restart: the channel forgets what it owes
                        self._channel_marks.add(message_id)
                        await self._stores.messages.may_have_arrived(message_id)
                    await self._stores.messages.set_status(
                        message_id, OutStatus.FAILED, error=str(exc)
                    )
                    self._failed.set()
                return False
            self._not_before.pop(message_id, None)
            if resumed is not None and not resumed.headed and resumed.done == parts_sent:
                log.info("message %s: every part was out already; marked sent", message_id)
            self._last_sent[chat] = message_id
            await self._stores.messages.set_status(
                message_id, OutStatus.SENT, platform_message_id=platform_id
            )
        finally:
            self._sending.discard(message_id)
        await self._stores.audit.record(
            "message.sent",
            actor="steward",
            subject=str(address),
            message_id=message_id,
            chars=len(text),
        )
        return True

    async def _give_up(
        self, message_id: int, address: Address, reason: str, *, stale: bool = False
    ) -> None:
        """Stop trying one message, and tell the owner (once per chat, in their own private
        chat unless that is the chat that refuses). `stale`: given up for its age, the chat
        being fine as far as anyone knows, so the owner is told there too (review 93: a week
        of downtime dropped replies to the owner's own chat without a word)."""
        self._not_before.pop(message_id, None)
        await self._stores.messages.set_status(
            message_id, OutStatus.UNDELIVERABLE, error=reason[:500]
        )
        await self._stores.audit.record(
            "message.undeliverable",
            actor="steward",
            subject=str(address),
            message_id=message_id,
            reason=reason[:200],
        )
        chat_key = (address.channel, address.chat_id)  # not per thread: one note per chat
        if chat_key in self._told_undeliverable:
            return
        self._told_undeliverable.add(chat_key)
        owner = await self._stores.people.owner()
        running = list(getattr(self.outbox, "channels", None) or [address.channel])
        found = await private_address(self._stores, owner.id, running) if owner else None
        if found is None or (found[0] == address and not stale):
            return
        where, chat = found
        note = (
            f"I could not deliver a message to {address} and have stopped trying: "
            f"{escape_invisible(reason[:200])}. Later messages there may fail the same way."
        )
        if stale:
            here = "here" if found[0] == address else f"to {address}"
            note = (
                f"A message I had for you {here} waited over a week while I could not send it "
                "(stopped, or the chat unreachable); I did not send it that late."
            )
        await self.send(where, chat.id, note, label=TRUSTED, in_history=False)

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        platform_id = await self.outbox.send_approval(address, prompt)
        self._last_sent[(address.channel, address.chat_id)] = 0
        await self._stores.audit.record(
            "approval.prompted", actor="steward", subject=str(address), approval=prompt.approval_id
        )
        return platform_id

    def take_over(self, message_id: int) -> None:
        """A stored message its writer could not send (a write failed before its send began:
        R203, a reminder waited for a restart): the redelivery loop, woken now, sends it as
        it sends a failed one. Its status is left as it is, so a send that was under way still
        goes under `RESENT`."""
        self._taken_over.add(message_id)
        self._failed.set()

    async def backlog(self) -> set[int]:
        """The ids of what is waiting to go out: before the channels start, only what an
        earlier process left (a reply sent once they are up is not in it)."""
        return {m.id for m in await self._stores.messages.undelivered()}

    async def redeliver(self, only: set[int] | None = None) -> int:
        """Send again what earlier attempts could not (of `only`, the ids `backlog` gave
        before anything new was sent: a message on its way now would go twice); returns how
        many went out."""
        sent = 0
        for message in await self._waiting():
            if (only is not None and message.id not in only) or message.id in self._sending:
                continue  # out of `only`, or on its way now: sent again, it went twice
            chat = await self._stores.people.chat_by_id(message.chat_id)
            if chat is None:
                continue
            address = Address(chat.channel, chat.platform_chat_id, message.thread_id)
            if self._stores.messages.age(message) > MAX_AGE:
                # failed, waiting or cut short mid-send a week ago or more: not sent a month
                # late at the next start, as `keep_redelivering` gives up (reviews 89, 92)
                await self._give_up(message.id, address, "not delivered within a week", stale=True)
                continue
            sent += await self._redeliver(message, address)
        return sent

    async def _waiting(self) -> list[StoredMessage]:
        """What is still to go out, each text once: a recurring reminder sent while its chat
        could not be reached queued a copy a day, and when the chat came back every copy
        arrived at once. Of one schedule's copies (the same text, to one chat, sent by that job
        without a turn), the newest goes; the older ones are marked undeliverable, saying why
        (audited, not told: nothing is lost but the repeat). Two schedules that say the same
        words (a pill at 14:00 and at 20:00) are two messages."""
        waiting = await self._stores.messages.undelivered()
        newest: dict[tuple[int, str | None, int, str], int] = {}
        for message in waiting:
            if message.schedule_id is not None:
                key = (message.chat_id, message.thread_id, message.schedule_id, message.text)
                newest[key] = message.id
        kept = []
        for message in waiting:
            if (
                message.schedule_id is not None
                and newest[(message.chat_id, message.thread_id, message.schedule_id, message.text)]
                != message.id
            ):
                await self._stores.messages.set_status(
                    message.id, OutStatus.UNDELIVERABLE, error=REPEAT
                )
                await self._stores.audit.record(
                    "message.repeat_dropped", actor="steward", message_id=message.id
                )
                continue
            kept.append(message)
        return kept

    async def _redeliver(self, message: StoredMessage, address: Address) -> bool:
        """Send a waiting message again, as it was stored (of a long one, the parts not yet
        delivered: `parts_sent`, under `REST` where it may not read as theirs: `_moved_on`);
        one written a while ago is followed by a short note saying how late it is. That note is
        sent once and not queued: stored, a note that failed would itself come back late, with
        a note of its own. One whose send began and never ended (not one this process is
        sending) may have arrived: it goes under `RESENT`, and without the late note, whose
        "could not be delivered" may not be true."""
        channel_marks = message.may_repeat and message.id in self._channel_marks
        repeat = (message.may_repeat and not channel_marks) or (
            message.sending_since is not None and message.id not in self._sending
        )
        age = self._stores.messages.age(message)
        resumes = message.parts_sent and address.channel in _IN_PARTS
        moved_on = resumes and await self._moved_on(message, address)
        rest_note = REST.format(age=describe_delta(age)) if moved_on else None
        overtaken = not (message.parts_sent or repeat) and await self._overtaken(message)
        heading = await self._held_back(message) if overtaken else None
        if not await self._deliver(
            message.id,
            address,
            message.text,
            parts_sent=message.parts_sent,
            repeat=repeat,
            rest_note=rest_note,
            heading=heading,
        ):
            return False
        if repeat or channel_marks:  # not "could not be delivered": it may have been
            log.info("message %s sent again after a send cut short, marked", message.id)
            return True
        if rest_note is not None or heading is not None:
            return True  # the note said how old it is (or nothing was left to send)
        if age >= LATE_AFTER:
            note = (
                f"(Sent late: the message above was written {describe_delta(age)} ago; it could "
                "not be delivered until now.)"
            )
            try:
                await self.outbox.send_text(address, note)
            except DeliveryError as exc:
                log.info("late note to %s not sent: %s", address.channel, exc)
        return True

    async def _moved_on(self, message: StoredMessage, address: Address) -> bool:
        """Whether the chat moved on since the last part of `message` went out: this process
        sent something else there since (at all, where an earlier process sent that part), or
        someone wrote there, or another message was sent there, after it was stored."""
        last = self._last_sent.get((address.channel, address.chat_id))
        if last is not None:  # this process sent there: nothing else since its last part
            return last != message.id  # (R192: a second cut of the rest noted it twice)
        later = await self._stores.messages.recent(message.chat_id, limit=50)
        return any(
            m.id > message.id and (m.direction == "in" or m.status == OutStatus.SENT) for m in later
        )

    async def _overtaken(self, message: StoredMessage) -> bool:
        """Whether a later message of Steward's went to the chat before this one could."""
        later = await self._stores.messages.recent(message.chat_id, limit=50)
        return any(
            m.id > message.id and m.direction == "out" and m.status == OutStatus.SENT for m in later
        )

    async def _held_back(self, message: StoredMessage) -> str:
        """The note for a message a later one overtook: which message it answers, in a few of
        its words, or (a reminder's, a briefing's) how old it is. The words are quoted only if
        they were written in the same chat: a send_message to a group carries the turn of the
        owner's private chat, whose words the group must never read (R203)."""
        turn = await self._stores.turns.record(message.turn_id) if message.turn_id else None
        asked = (
            await self._stores.messages.get(turn.message_id) if turn and turn.message_id else None
        )
        here = asked is not None and asked.chat_id == message.chat_id and asked.in_history
        words = " ".join(asked.text.split()) if asked is not None and here else ""
        if not words:
            return HELD_BACK_MESSAGE.format(age=describe_delta(self._stores.messages.age(message)))
        if len(words) > _WORDS:
            words = words[: _WORDS - 1] + "…"
        return HELD_BACK.format(words=escape_invisible(words))

    def _due(self, message: StoredMessage) -> bool:
        """Whether the redelivery loop sends `message`: failed, or taken over (`take_over`),
        and not being sent by this process now."""
        return message.id not in self._sending and (
            message.status == OutStatus.FAILED or message.id in self._taken_over
        )

    async def keep_redelivering(self, *, every: float = 5.0, max_delay: float = 300.0) -> None:
        """Until cancelled: send `failed` messages again, and those taken over (`take_over`),
        each on its own backoff (doubling from `every` to `max_delay`); messages for a channel
        that is not running wait for it. With nothing failed it sleeps until a send fails:
        idle, it neither wakes nor asks SQLite (R101: a look every 5 s, 17,000 a day, for
        nothing)."""
        loop = asyncio.get_running_loop()
        backoff: dict[int, tuple[float, float]] = {}  # message id -> (next try, delay)
        idle = False
        while True:
            if idle:
                await self._failed.wait()
            self._failed.clear()
            await asyncio.sleep(every)
            try:
                running = getattr(self.outbox, "channels", None)
                waiting = await self._waiting()
                self._taken_over &= {m.id for m in waiting}  # sent meanwhile, or given up
                due = [m for m in waiting if self._due(m)]
                idle = not due
                for message in due:
                    next_try, delay = backoff.get(message.id, (0.0, every))
                    if loop.time() < max(next_try, self._not_before.get(message.id, 0.0)):
                        continue
                    chat = await self._stores.people.chat_by_id(message.chat_id)
                    if chat is None or (running is not None and chat.channel not in running):
                        continue
                    address = Address(chat.channel, chat.platform_chat_id, message.thread_id)
                    if self._stores.messages.age(message) > MAX_AGE:
                        backoff.pop(message.id, None)
                        reason = "no success in a week of attempts"
                        await self._give_up(message.id, address, reason)
                        continue
                    if await self._redeliver(message, address):
                        backoff.pop(message.id, None)
                        log.info("message %s delivered on a later attempt", message.id)
                    else:
                        backoff[message.id] = (loop.time() + delay, min(delay * 2, max_delay))
            except Exception:
                log.exception("redelivery pass failed")
                idle = False  # another pass soon: its wake-up was spent on this one (R104)
