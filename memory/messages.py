"""The message log: every incoming and outgoing message, stored before anyone acts on it.

Whoever keeps the transcript searchable (long-term memory) subscribes with `on_record`: it is
called after each message is committed, never with the message path's failure on its account.

(Over 400 lines: one table's reads and writes, kept together so its SQL is in one place.)
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache, partial

from memory.clock import Clock, iso, parse_iso
from memory.db import Database
from memory.labels import TRUSTED, Label
from memory.message_window import WHOLE_CHAT, RecentWindows, Thread
from memory.tokens import SQL_TOKENS

__all__ = [
    "WHOLE_CHAT",
    "InStatus",
    "MessageLog",
    "OutStatus",
    "RecordListener",
    "StoredMessage",
    "Thread",
]

log = logging.getLogger(__name__)

RecordListener = Callable[[int], Awaitable[None]]
"""Called with the id of a message just committed."""


class InStatus(StrEnum):
    RECEIVED = "received"
    HANDLED = "handled"
    INTERRUPTED = "interrupted"


class OutStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"  # given up: the chat refuses it, or too many attempts


@dataclass(frozen=True)
class StoredMessage:
    id: int
    chat_id: int
    user_id: int | None
    direction: str
    thread_id: str | None
    text: str
    status: str
    created_at: str
    label: Label = TRUSTED
    turn_id: int | None = None
    in_history: bool = True  # False: a command or its answer, left out of the conversation
    schedule_id: int | None = None  # what a scheduled job sent without a turn
    parts_sent: int = 0  # parts of a long outgoing message delivered so far
    sending_since: str | None = None  # a send began and its outcome is not recorded yet
    may_repeat: bool = False  # a send was cut short mid-way: the chat may already have it


@lru_cache(maxsize=512)
def _label(text: str | None) -> Label:
    """A stored label, parsed once: a chat's history is read on every turn, and its messages
    carry few distinct labels (a Label is immutable, so one object serves them all)."""
    return Label.from_json(text)


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        chat_id=row["chat_id"],
        user_id=row["user_id"],
        direction=row["direction"],
        thread_id=row["thread_id"],
        text=row["text"],
        status=row["status"],
        created_at=row["created_at"],
        label=_label(row["label"]),
        turn_id=row["turn_id"],
        in_history=bool(row["in_history"]),
        schedule_id=row["schedule_id"],
        parts_sent=row["parts_sent"],
        sending_since=row["sending_since"],
        may_repeat=bool(row["may_repeat"]),
    )


class MessageLog:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._listeners: list[RecordListener] = []
        self._text_listeners: list[RecordListener] = []
        # what `recent` read, kept up to date by the writes
        self._windows = RecentWindows[StoredMessage]()
        self._left_out: dict[int, None] = {}  # turns whose exchange `leave_out` took out
        self.access_changes = 0
        """Counts chats taken from a person (an unlink, a revoke): a turn under way when it
        moves checks whether its reply may still go (agent/core.py)."""

    def on_record(self, listener: RecordListener) -> None:
        """Call `listener(message_id)` after every message committed from now on."""
        self._listeners.append(listener)

    def off_record(self, listener: RecordListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def on_text_changed(self, listener: RecordListener) -> None:
        """Call `listener(message_id)` after a stored message's text is replaced (`set_text`)."""
        self._text_listeners.append(listener)

    def off_text_changed(self, listener: RecordListener) -> None:
        if listener in self._text_listeners:
            self._text_listeners.remove(listener)

    async def _recorded(self, message_id: int, *, changed: bool = False) -> None:
        for listener in list(self._text_listeners if changed else self._listeners):
            try:
                await listener(message_id)
            except Exception:  # the message is stored; a listener catches up later
                log.exception("a listener failed on message %s", message_id)

    async def record_incoming(
        self,
        *,
        chat_id: int,
        user_id: int | None,
        text: str,
        platform_message_id: str | None,
        thread_id: str | None = None,
        in_history: bool = True,
        label: Label = TRUSTED,
    ) -> int | None:
        """Commit an incoming message; None when this platform message was stored before.
        `label`: another person's words are outside content, and stay so in later turns."""
        now = iso(self._clock.now())
        message_id = await self._db.insert_new(
            "INSERT INTO messages (chat_id, user_id, direction, thread_id, platform_message_id,"
            " text, status, in_history, created_at, updated_at, label)"
            " VALUES (?, ?, 'in', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                chat_id,
                user_id,
                thread_id,
                platform_message_id,
                text,
                InStatus.RECEIVED,
                int(in_history),
                now,
                now,
                label.to_json(),
            ),
        )
        if message_id is not None:
            row = (message_id, chat_id, user_id, "in", thread_id, text, str(InStatus.RECEIVED))
            self._windows.added(StoredMessage(*row, now, _label(label.to_json()), None, in_history))
            await self._recorded(message_id)
        return message_id

    async def record_outgoing(
        self,
        *,
        chat_id: int,
        text: str,
        thread_id: str | None = None,
        turn_id: int | None = None,
        in_history: bool = True,
        label: Label = TRUSTED,
        schedule_id: int | None = None,
    ) -> int:
        """Store a message Steward sends; `label` is that of the turn (or job) that wrote it, so
        a reply shaped by outside content stays outside content in the history;
        `schedule_id`: the job that sent it without a turn. A reply of a turn `leave_out` took
        out of the conversation is stored out of it."""
        in_history = in_history and (turn_id is None or turn_id not in self._left_out)
        now = iso(self._clock.now())
        message_id = await self._db.execute(
            "INSERT INTO messages (chat_id, direction, thread_id, text, status, turn_id,"
            " in_history, created_at, updated_at, label, schedule_id)"
            " VALUES (?, 'out', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                chat_id,
                thread_id,
                text,
                OutStatus.PENDING,
                turn_id,
                int(in_history),
                now,
                now,
                label.to_json(),
                schedule_id,
            ),
        )
        row = (message_id, chat_id, None, "out", thread_id, text, str(OutStatus.PENDING))
        self._windows.added(
            StoredMessage(
                *row, now, _label(label.to_json()), turn_id, in_history, schedule_id=schedule_id
            )
        )
        await self._recorded(message_id)
        return message_id

    async def leave_out(self, turn_id: int, message_id: int | None) -> None:
        """Take a turn's exchange out of the conversation: the message that set it off
        (`message_id`), what the turn sent, and what it sends from now on (its reply is stored
        after the turn ends). As a command is: in no later history, summary or reply brought
        in; still in the log (R261: after the model's refusal the exchange stayed in every
        later turn's history, and the API's advice is to leave it out or more refusals follow)."""
        self._left_out[turn_id] = None
        while len(self._left_out) > 64:  # the reply follows its turn's end at once
            del self._left_out[next(iter(self._left_out))]
        await self._db.execute(
            "UPDATE messages SET in_history = 0"
            " WHERE id = ? OR (turn_id = ? AND direction = 'out')",
            (message_id or 0, turn_id),
        )
        self._windows.forget_all()  # rare: every window is read afresh

    async def set_status(
        self,
        message_id: int,
        status: InStatus | OutStatus,
        *,
        platform_message_id: str | None = None,
        error: str | None = None,
        turn_id: int | None = None,
    ) -> None:
        # a message given up stays so: a send still under way when its person was revoked
        # failed after, and the retry took it to the revoked phone (R132)
        again = status in (OutStatus.FAILED, OutStatus.PENDING)
        changed = await self._db.execute(
            "UPDATE messages SET status = ?, updated_at = ?,"
            " platform_message_id = COALESCE(?, platform_message_id),"
            " turn_id = COALESCE(?, turn_id), last_error = ?, sending_since = NULL,"
            " attempts = attempts + (CASE WHEN direction = 'out' THEN 1 ELSE 0 END)"
            " WHERE id = ? AND NOT (? AND status = 'undeliverable')",
            (
                status,
                iso(self._clock.now()),
                platform_message_id,
                turn_id,
                error,
                message_id,
                int(again),
            ),
        )
        if changed:
            self._windows.status(message_id, str(status), turn_id)

    async def begin_send(self, message_id: int, *, may_repeat: bool = False) -> bool:
        """A send of an outgoing message to its platform begins: noted first, so that a crash
        before its outcome is recorded (`set_status` clears it) leaves the message marked as
        possibly delivered, not as never sent. `may_repeat` keeps that it was found so. False:
        it was given up meanwhile (its person revoked), so it must not go."""
        return bool(
            await self._db.execute(
                "UPDATE messages SET sending_since = ?, may_repeat = MAX(may_repeat, ?)"
                " WHERE id = ? AND direction = 'out' AND status != 'undeliverable'",
                (iso(self._clock.now()), int(may_repeat), message_id),
            )
        )

    async def may_have_arrived(self, message_id: int) -> None:
        """A failed send's answer was lost after its request went: the chat may have the
        message, and a send after a restart says so (`RESENT`), as after a crash mid-send."""
        await self._db.execute(
            "UPDATE messages SET may_repeat = 1 WHERE id = ? AND direction = 'out'", (message_id,)
        )

    async def repeat_told(self, message_id: int) -> None:
        """The note saying a message may be a repeat went out, before the rest of it: a later
        try of that rest needs no note of its own (review 87: each retry posted one more)."""
        await self._db.execute(
            "UPDATE messages SET may_repeat = 0 WHERE id = ? AND direction = 'out'", (message_id,)
        )

    async def set_parts_sent(self, message_id: int, parts: int) -> None:
        """`parts` parts of a long outgoing message are delivered: a redelivery, after a restart
        too, sends only the rest (agent/outbox.py `Parts`)."""
        await self._db.execute(
            "UPDATE messages SET parts_sent = ? WHERE id = ? AND direction = 'out'",
            (parts, message_id),
        )

    async def set_text(self, message_id: int, text: str) -> None:
        """Replace a stored message's text once its files are read (a voice note's transcript,
        where its photo was saved): what later turns see of it."""
        await self._db.execute(
            "UPDATE messages SET text = ?, updated_at = ? WHERE id = ?",
            (text, iso(self._clock.now()), message_id),
        )
        self._windows.text(message_id, text)
        await self._recorded(message_id, changed=True)

    async def find_sent(
        self, channel: str, platform_chat_id: str, platform_message_id: str
    ) -> StoredMessage | None:
        """A message Steward sent, by the platform's ids (a reply points at it). A long message
        went out in parts and keeps its last part's id: a Telegram reply to an earlier part
        finds the long message sent just after that id."""
        base = (
            "SELECT m.* FROM messages m JOIN chats c ON c.id = m.chat_id"
            " WHERE c.channel = ? AND c.platform_chat_id = ? AND m.direction = 'out'"
        )
        row = await self._db.fetchone(
            base + " AND m.platform_message_id = ? ORDER BY m.id DESC LIMIT 1",
            (channel, platform_chat_id, platform_message_id),
        )
        if row is None and channel == "telegram" and platform_message_id.isdigit():
            row = await self._db.fetchone(
                base + " AND m.platform_message_id GLOB '[0-9]*' AND length(m.text) > 3000"
                " AND CAST(m.platform_message_id AS INTEGER) BETWEEN ? AND ?"
                " ORDER BY CAST(m.platform_message_id AS INTEGER) LIMIT 1",
                (
                    channel,
                    platform_chat_id,
                    int(platform_message_id),
                    int(platform_message_id) + 10,
                ),
            )
        return _message(row) if row else None

    async def find_received(
        self, channel: str, platform_chat_id: str, platform_message_id: str
    ) -> StoredMessage | None:
        """A message someone sent Steward in this chat, by the id it was stored under (a reply
        to it points there)."""
        row = await self._db.fetchone(
            "SELECT m.* FROM messages m JOIN chats c ON c.id = m.chat_id"
            " WHERE c.channel = ? AND c.platform_chat_id = ? AND m.direction = 'in'"
            " AND m.platform_message_id = ? ORDER BY m.id DESC LIMIT 1",
            (channel, platform_chat_id, platform_message_id),
        )
        return _message(row) if row else None

    async def answered_in_thread(self, channel: str, platform_chat_id: str, thread_id: str) -> bool:
        """Whether Steward already answered in this thread of this chat: a reply of the
        conversation, not a command's answer, a card or a notice (none of those is in what
        the model reads of the thread)."""
        found = await self._db.scalar(
            "SELECT COUNT(*) FROM messages m JOIN chats c ON c.id = m.chat_id"
            " WHERE c.channel = ? AND c.platform_chat_id = ? AND m.direction = 'out'"
            " AND m.thread_id = ? AND m.in_history = 1",
            (channel, platform_chat_id, thread_id),
        )
        return bool(found)

    async def get(self, message_id: int) -> StoredMessage | None:
        row = await self._db.fetchone("SELECT * FROM messages WHERE id = ?", (message_id,))
        return _message(row) if row else None

    async def recent(
        self,
        chat_id: int,
        *,
        before_id: int | None = None,
        limit: int = 50,
        thread: Thread = WHOLE_CHAT,
    ) -> list[StoredMessage]:
        """The conversation in a chat, oldest first: what was said before incoming message
        `before_id` (messages queued after it are not), and every answer sent so far. Commands and
        their answers are left out: they are not part of what the agent was told. `thread`: only
        that thread's messages (None: those in no thread), where threads are conversations of
        their own. Read from the window that holds them (memory/message_window.py)."""
        before = before_id if before_id is not None else 2**62
        kept = self._windows.get(chat_id, before, limit, thread)
        if kept is not None:
            return kept
        where = "chat_id = ? AND in_history = 1"
        args: list[object] = [chat_id]
        if thread is not WHOLE_CHAT:
            where += " AND thread_id IS ?"  # IS: a thread of None is the messages in none
            args.append(thread)
        generation = self._windows.generation
        if 0 < limit <= self._windows.size:  # the whole window, filtered here
            rows = await self._db.fetchall(
                f"SELECT * FROM messages WHERE {where}"
                " AND status IN ('handled', 'sent', 'pending', 'received')"
                " ORDER BY id DESC LIMIT ?",
                (*args, self._windows.size),
            )
            window = [_message(row) for row in reversed(rows)]
            self._windows.keep(chat_id, window, generation, thread)
            picked = [m for m in window if m.direction == "out" or m.id < before]
            if len(picked) >= limit or len(rows) < self._windows.size:
                return picked[-limit:]
        rows = await self._db.fetchall(
            f"SELECT * FROM messages WHERE {where} AND (direction = 'out' OR id < ?)"
            " AND status IN ('handled', 'sent', 'pending', 'received')"
            " ORDER BY id DESC LIMIT ?",
            (*args, before, limit),
        )
        return [_message(row) for row in reversed(rows)]

    async def history_after(self, chat_id: int, after_id: int) -> list[StoredMessage]:
        """The chat's conversation after message `after_id`, oldest first and without a limit:
        what compaction weighs and summarises (commands and their answers left out)."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE chat_id = ? AND id > ? AND in_history = 1"
            " AND status IN ('handled', 'sent', 'pending', 'received') ORDER BY id",
            (chat_id, after_id),
        )
        return [_message(row) for row in rows]

    async def history_tokens_after(self, chat_id: int, after_id: int) -> int:
        """The token estimate (`estimate_tokens`, a message) of what `history_after` returns,
        counted by SQLite: compaction asks it after every turn. R211: it had counted four
        characters a token, a quarter of a Chinese chat, which was never compacted."""
        total = await self._db.scalar(
            f"SELECT SUM({SQL_TOKENS}) FROM messages WHERE chat_id = ? AND id > ?"
            " AND in_history = 1 AND status IN ('handled', 'sent', 'pending', 'received')",
            (chat_id, after_id),
        )
        return int(total or 0)

    async def unanswered(self) -> list[StoredMessage]:
        """Incoming messages received but never handled: a crash came between."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE direction = 'in' AND status = ? ORDER BY id",
            (InStatus.RECEIVED,),
        )
        return [_message(row) for row in rows]

    async def reply_stored(self, message_id: int) -> bool:
        """Whether the turn this incoming message set off ended (completed, stopped at the
        step limit, or failed and said so) and its reply was stored after that: delivered or
        not, the outbox owns it from then on (it is redelivered), so the message is answered.
        A message a tool posted to the chat while the turn ran is not its reply."""
        found = await self._db.scalar(
            "SELECT 1 FROM turns t JOIN messages o ON o.turn_id = t.id"
            " WHERE t.message_id = ? AND t.status IN ('completed', 'step_limit', 'failed')"
            " AND o.direction = 'out' AND o.chat_id = t.chat_id AND o.created_at >= t.finished_at"
            " LIMIT 1",
            (message_id,),
        )
        return found is not None

    def age(self, message: StoredMessage) -> timedelta:
        """How long ago `message` was stored."""
        return self._clock.now() - parse_iso(message.created_at)

    def forget_chats(self, chat_ids: Iterable[int] | None) -> None:
        """These chats' messages were changed in SQLite elsewhere: taken from their person (an
        unlink), or with None, every chat's senders renamed (two people linked into one)."""
        if chat_ids is None:
            self._windows.forget_all()
            return
        self.access_changes += 1
        self._windows.forget(chat_ids)

    async def give_up_in(self, chat_ids: Iterable[int]) -> int:
        """What waits to go to these chats will not be sent (their person was revoked: R130,
        a reply that failed while the channel was down went out after); how many."""
        chats = list(chat_ids)
        self.access_changes += 1  # a person revoked, whatever chats they had (R136)
        if not chats:
            return 0
        marks = ",".join("?" * len(chats))
        given_up = await self._db.execute(
            "UPDATE messages SET status = ?, updated_at = ? WHERE direction = 'out'"
            f" AND status IN (?, ?) AND chat_id IN ({marks})",
            (
                OutStatus.UNDELIVERABLE,
                iso(self._clock.now()),
                OutStatus.PENDING,
                OutStatus.FAILED,
                *chats,
            ),
        )
        self._windows.forget(chats)
        return given_up

    async def last_from(self, chat_id: int, user_id: int) -> datetime | None:
        """When this person last wrote in this chat (None: never)."""
        value = await self._db.scalar(
            "SELECT MAX(created_at) FROM messages WHERE chat_id = ? AND user_id = ?"
            " AND direction = 'in'",
            (chat_id, user_id),
        )
        return parse_iso(value) if value else None

    async def undelivered(self) -> list[StoredMessage]:
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE direction = 'out' AND status IN (?, ?) ORDER BY id",
            (OutStatus.PENDING, OutStatus.FAILED),
        )
        return [_message(row) for row in rows]

    async def count(self, direction: str | None = None) -> int:
        if direction is None:
            return int(await self._db.scalar("SELECT COUNT(*) FROM messages"))
        return int(
            await self._db.scalar("SELECT COUNT(*) FROM messages WHERE direction = ?", (direction,))
        )

    async def all(self, *, direction: str | None = None) -> list[StoredMessage]:
        """Every stored message (of one `direction`), commands and their answers too, oldest
        first."""
        if direction is None:
            rows = await self._db.fetchall("SELECT * FROM messages ORDER BY id")
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM messages WHERE direction = ? ORDER BY id", (direction,)
            )
        return [_message(row) for row in rows]

    async def find_text(
        self, fragment: str, *, direction: str | None = None, at_start: bool = False
    ) -> list[StoredMessage]:
        """The messages (of one `direction`) whose text contains `fragment` (begins with it,
        if `at_start`), case-sensitive, oldest first."""
        found = "instr(text, ?) = 1" if at_start else "instr(text, ?) > 0"
        if direction is None:
            rows = await self._db.fetchall(
                f"SELECT * FROM messages WHERE {found} ORDER BY id", (fragment,)
            )
        else:
            rows = await self._db.fetchall(
                f"SELECT * FROM messages WHERE direction = ? AND {found} ORDER BY id",
                (direction, fragment),
            )
        return [_message(row) for row in rows]

    # -- the transcript as memory (agent/transcript_memory.py) -------------------------------

    async def after(self, after_id: int, limit: int = 500) -> list[StoredMessage]:
        """Every message after id `after_id` (commands and their answers too), oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [_message(row) for row in rows]

    async def last_id(self) -> int:
        return int(await self._db.scalar("SELECT COALESCE(MAX(id), 0) FROM messages"))

    async def authors(self, chat_id: int, *, through_id: int | None = None) -> set[int]:
        """The users who wrote in a chat (up to message `through_id`): its members, as far as
        Steward knows (strangers' messages are never stored)."""
        rows = await self._db.fetchall(
            "SELECT DISTINCT user_id FROM messages WHERE chat_id = ? AND direction = 'in'"
            " AND user_id IS NOT NULL AND id <= ?",
            (chat_id, through_id if through_id is not None else 2**62),
        )
        return {int(row["user_id"]) for row in rows}

    async def scrub_commands(self, user_id: int, text: str, placeholder: str) -> int:
        """Take `text` out of the commands a person typed and the answers they got in their
        private chats (a /remember that said it, a /memory search that quoted it); how many
        were changed. Never a group's: other people's answers are theirs."""
        if not text:
            return 0
        return await self._db.execute(
            "UPDATE messages SET text = replace(text, ?, ?) WHERE in_history = 0"
            " AND (direction = 'out' OR user_id = ?) AND instr(text, ?) > 0"
            " AND chat_id IN (SELECT DISTINCT m.chat_id FROM messages AS m JOIN chats AS c"
            " ON c.id = m.chat_id WHERE m.direction = 'in' AND m.user_id = ?"
            " AND c.kind = 'private')",
            (text, placeholder, user_id, text, user_id),
        )

    async def scrub_searches(self, user_id: int, texts: Iterable[str], placeholder: str) -> int:
        """Take the words of the person's `/memory search` commands in their private chats out,
        when they are found inside one of `texts` (R256: the secret searched for to forget it
        stayed in the command that found it), and the answer's quote of them ("No memories or
        messages match “…”"); as the search matches, case and punctuation aside. Words shorter
        than MIN_QUERY would match nearly anything: left. How many commands were changed."""
        folded = [f for f in (_folded(t) for t in texts) if len(f) >= MIN_QUERY]
        if not folded:
            return 0
        return await self._db.atomic(_scrub_searches, user_id, folded, placeholder)

    async def sent_by_schedules(self, schedule_ids: Sequence[int]) -> list[StoredMessage]:
        """What these schedules sent without a turn (a reminder's messages), oldest first."""
        if not schedule_ids:
            return []
        marks = ", ".join("?" * len(schedule_ids))
        rows = await self._db.fetchall(
            f"SELECT * FROM messages WHERE schedule_id IN ({marks}) AND schedule_id IS NOT NULL"
            " ORDER BY id",
            tuple(schedule_ids),
        )
        return [_message(row) for row in rows]

    async def of_turn(self, turn_id: int) -> list[StoredMessage]:
        """The messages of one turn (what set it off, and what Steward sent), oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM messages WHERE turn_id = ? ORDER BY id", (turn_id,)
        )
        return [_message(row) for row in rows]

    async def around(
        self, chat_id: int, message_id: int, *, before: int = 2, after: int = 2
    ) -> list[StoredMessage]:
        """A message with its neighbours in the chat's conversation (commands and their
        answers left out), oldest first."""
        earlier = await self._db.fetchall(
            "SELECT * FROM messages WHERE chat_id = ? AND id < ? AND in_history = 1"
            " ORDER BY id DESC LIMIT ?",
            (chat_id, message_id, before),
        )
        later = await self._db.fetchall(
            "SELECT * FROM messages WHERE chat_id = ? AND id >= ? AND in_history = 1"
            " ORDER BY id LIMIT ?",
            (chat_id, message_id, after + 1),
        )
        return [_message(row) for row in [*reversed(earlier), *later]]


MIN_QUERY = 3
"""Characters (case and punctuation aside) a search's words need before they are taken out of
the command that said them: "pw" is inside nearly any forgotten text."""
_SEARCH = re.compile(r"(\s*/memory(?:@\w+)?\s+search\s+)(.*\S)\s*", re.I | re.S)
_QUOTED = re.compile(r"“([^”]*)”")
ANSWERS = 3
"""The Steward messages after a search command looked at for its answer's quote of it."""


def _folded(text: str) -> str:
    """Words as the search compares them: "Hunter2-Xq9vLp" is "hunter2 xq9vlp"."""
    return " ".join(re.findall(r"[^\W_]+", text.casefold()))


def _scrub_searches(
    conn: sqlite3.Connection, user_id: int, folded: list[str], placeholder: str
) -> int:
    """`scrub_searches` in one transaction: the person's commands in their private chats (the
    chat and author index), those that search for words a forgotten text holds."""
    rows = conn.execute(
        "SELECT m.id, m.chat_id, m.text FROM chats AS c JOIN messages AS m ON m.chat_id = c.id"
        " WHERE c.kind = 'private' AND m.direction = 'in' AND m.user_id = ?"
        " AND m.in_history = 0 AND m.text LIKE '%/memory%search%'",
        (user_id,),
    ).fetchall()
    changed = 0
    for message_id, chat_id, text in rows:
        found = _SEARCH.fullmatch(text)
        if found is None or found[2] == placeholder:
            continue
        query = _folded(found[2])
        if len(query) < MIN_QUERY or not any(query in f for f in folded):
            continue
        conn.execute(
            "UPDATE messages SET text = ? WHERE id = ?", (found[1] + placeholder, message_id)
        )
        changed += 1
        answers = conn.execute(
            "SELECT id, text FROM messages WHERE chat_id = ? AND id > ? AND direction = 'out'"
            " AND in_history = 0 ORDER BY id LIMIT ?",
            (chat_id, message_id, ANSWERS),
        ).fetchall()
        unquoted = partial(_unquoted, query=found[2], placeholder=placeholder)
        for answer_id, answer in answers:
            kept = _QUOTED.sub(unquoted, answer)
            if kept != answer:
                conn.execute("UPDATE messages SET text = ? WHERE id = ?", (kept, answer_id))
    return changed


def _unquoted(quote: re.Match[str], query: str, placeholder: str) -> str:
    """A quote of the search's words (whole, or shortened with "…") as the placeholder."""
    said = quote[1]
    shortened = said.endswith("…") and len(said) > MIN_QUERY and query.startswith(said[:-1])
    return f"“{placeholder}”" if said == query or shortened else quote[0]
