"""The whole transcript is memory: every message kept as a searchable memory row.

Every message of the conversation (the owner's, Steward's replies, other people's in groups)
becomes a row of kind `message` in long-term memory, with its trust label, its date, its chat
and the message it came from, so "what did I tell you about the roof in May?" finds it by words
and by meaning. Commands and their answers are not kept (they are not the conversation).

Who may find it: one row per member of the chat, owned by that member. A private chat's member
is the person who writes there; a group's are the users who have written in it (Steward knows
no other members, and strangers' messages are never stored): when someone writes in a group for
the first time, the group's earlier messages are kept for them too. Every search is by user, so
one user's messages never surface for another, and a group's only for its members.

Off the hot path: `MessageLog` calls `notify` once a message is committed; the rows are saved in
one SQLite transaction (keyword-searchable at once) and their vectors are written behind by the
store's vector journal. A watermark (`state` key) says how far the transcript is kept; at start
`catch_up` brings it level, which also backfills a database from before this (the upgrade).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from agent.cards import plain_name
from memory.clock import parse_iso
from memory.labels import TRUSTED, Label
from memory.longterm import LongTermMemory, Memory, NewMessage, Source
from memory.longterm.types import MAX_TEXT_CHARS
from memory.messages import MessageLog, StoredMessage
from memory.people import Chat, Identity, People
from memory.state import StateStore

__all__ = ["WATERMARK_KEY", "Transcript", "TranscriptReport", "Turn"]

log = logging.getLogger(__name__)

WATERMARK_KEY = "transcript_kept_through"
CHUNK = 500  # messages read and saved per transaction
INLINE_BACKLOG = 200  # a larger backlog is left to the background catch-up, not a message's path
STEWARD = "Steward"
NEIGHBOUR_SPAN = timedelta(hours=12)  # a neighbouring turn is one said this close to the hit


@dataclass(frozen=True)
class Turn:
    """A message of the conversation shown next to a message found, and who wrote it."""

    message: StoredMessage
    speaker: str


@dataclass
class TranscriptReport:
    messages: int = 0
    rows: int = 0
    through: int = 0


class Transcript:
    def __init__(
        self, *, store: LongTermMemory, messages: MessageLog, people: People, state: StateStore
    ) -> None:
        self._store = store
        self._messages = messages
        self._people = people
        self._state = state
        self._lock = asyncio.Lock()
        self._through: int | None = None
        self._members: dict[int, set[int]] = {}
        self._chats: dict[int, Chat | None] = {}
        self._names: dict[int, str] = {}
        self._owners: set[int] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def listen(self) -> None:
        """Keep every message committed from now on (and what their text becomes)."""
        self._messages.on_record(self.notify)
        self._messages.on_text_changed(self.text_changed)

    def start(self) -> None:
        """Catch up in the background (the backfill of a database from before)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="transcript-memory")
        self._wake.set()

    async def stop(self) -> None:
        self._messages.off_record(self.notify)
        self._messages.off_text_changed(self.text_changed)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # logged by _run
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                report = await self.catch_up()
                if report.messages > INLINE_BACKLOG:
                    log.info(
                        "transcript memory: %d messages kept (%d rows), through message %d",
                        report.messages,
                        report.rows,
                        report.through,
                    )
            except Exception:
                log.exception("transcript memory: catching up failed; retrying at the next one")

    async def notify(self, message_id: int) -> None:
        """A message was committed: keep it now (searchable when this returns), unless a large
        backlog is to be caught up first: that is left to the background."""
        through = await self._watermark()
        if message_id - through > INLINE_BACKLOG:
            self.start()
            return
        await self.catch_up()

    async def text_changed(self, message_id: int) -> None:
        """A message's text was replaced after it was kept (a voice note's transcript, a
        photo's description): its rows follow, vectors rewritten behind."""
        async with self._lock:
            if message_id > await self._watermark():
                return  # not kept yet: it will be, with the new text
            message = await self._messages.get(message_id)
            if message is None or not message.in_history or not message.text.strip():
                return
            text = message.text.strip()[:MAX_TEXT_CHARS]
            if await self._store.update_message_text(message_id, text):
                return
            # It had no text when it came (a photo, a voice note): kept only now.
            members = self._members.get(message.chat_id) or await self._messages.authors(
                message.chat_id
            )
            rows = await self._rows_for(message, set(members))
            if rows:
                await self._store.save_messages(rows)

    # -- keeping -----------------------------------------------------------------------------

    async def catch_up(self) -> TranscriptReport:
        """Keep every message after the watermark, chunk by chunk."""
        report = TranscriptReport(through=await self._watermark())
        while True:
            async with self._lock:
                through = await self._watermark()
                batch = await self._messages.after(through, CHUNK)
                if not batch:
                    report.through = through
                    return report
                rows = [row for message in batch for row in await self._rows(message)]
                if rows:
                    await self._store.save_messages(rows)
                self._through = batch[-1].id
                await self._state.set(WATERMARK_KEY, str(self._through))
            report.messages += len(batch)
            report.rows += len(rows)
            report.through = batch[-1].id
            if len(batch) < CHUNK:
                return report

    async def _watermark(self) -> int:
        if self._through is None:
            value = await self._state.get(WATERMARK_KEY)
            self._through = int(value) if value and value.isdigit() else 0
        return self._through

    async def _rows(self, message: StoredMessage) -> list[NewMessage]:
        members, newcomer = await self._members_of(message)
        rows: list[NewMessage] = []
        if newcomer is not None:
            # Someone writes in a group for the first time: a member, who may find what the
            # group said before too, as every member may.
            for earlier in await self._messages.history_after(message.chat_id, 0):
                if earlier.id < message.id:
                    rows += await self._rows_for(earlier, {newcomer})
        return rows + await self._rows_for(message, members)

    async def _rows_for(self, message: StoredMessage, members: set[int]) -> list[NewMessage]:
        text = message.text.strip()
        if not message.in_history or not text or not members:
            return []
        if message.direction == "in":
            speaker = await self._name(message.user_id)
            owner = message.user_id is not None and message.user_id in await self._owner_ids()
            source = Source.OWNER_SAID if owner else Source.USER_SAID
            label = message.label
            if not owner and label.trusted:  # another person's words are outside content
                label = Label.untrusted(f"person:#{message.user_id or 'unknown'}")
        else:
            speaker, source, label = STEWARD, Source.STEWARD_SAID, message.label
        return [
            NewMessage(
                user_id=member,
                chat_id=message.chat_id,
                text=text[:MAX_TEXT_CHARS],
                speaker=speaker,
                created_at=parse_iso(message.created_at),
                message_id=message.id,
                label=label if label.tainted else TRUSTED,
                source=source,
                turn_id=message.turn_id,
            )
            for member in sorted(members)
        ]

    async def _members_of(self, message: StoredMessage) -> tuple[set[int], int | None]:
        """The chat's members (every user who has written in it, this message's author
        included), and the author when this is their first message in a group."""
        members = self._members.get(message.chat_id)
        chat = await self._chat(message.chat_id)
        if members is None:
            members = await self._messages.authors(message.chat_id, through_id=message.id - 1)
            if not members and chat is not None and chat.kind == "private":
                # Steward wrote first (a reminder to the owner's own chat): the person whose
                # private chat it is.
                user = await self._people.resolve(Identity(chat.channel, chat.platform_chat_id))
                if user is not None:
                    members = {user.id}
            self._members[message.chat_id] = members
        newcomer = None
        author = message.user_id if message.direction == "in" else None
        if author is not None and author not in members:
            members.add(author)
            if chat is not None and chat.kind != "private":
                newcomer = author
        return members, newcomer

    async def _chat(self, chat_id: int) -> Chat | None:
        if chat_id not in self._chats:
            self._chats[chat_id] = await self._people.chat_by_id(chat_id)
        return self._chats[chat_id]

    async def _name(self, user_id: int | None) -> str:
        """How a message's writer is named where it is recalled. Anyone but the owner by the
        number Steward gave them, their chosen name after it: a guest who knocked as "the
        owner" was named so on their words in the owner's turns (R184)."""
        if user_id is None:
            return "someone"
        if user_id not in self._names:
            user = await self._people.get(user_id)
            if user is not None and user.is_owner:
                name = plain_name(user.display_name)
                name = "the owner" if name in ("", "owner") else name
            else:
                chosen = plain_name(user.display_name if user is not None else "", 40)
                name = f"person #{user_id}" + (f" ({chosen!r})" if chosen else "")
            self._names[user_id] = name
        return self._names[user_id]

    async def _owner_ids(self) -> set[int]:
        if self._owners is None:
            owner = await self._people.owner()
            self._owners = {owner.id} if owner is not None else set()
        return self._owners

    # -- reading -----------------------------------------------------------------------------

    async def neighbours(self, memory: Memory, *, before: int = 2, after: int = 2) -> list[Turn]:
        """A kept message with the turns around it in its chat, oldest first."""
        if memory.message_id is None or memory.chat_id is None:
            return []
        found = await self._messages.around(
            memory.chat_id, memory.message_id, before=before, after=after
        )
        # Turns of the same conversation: not what was said months before or after.
        said = memory.created_at
        found = [m for m in found if abs(parse_iso(m.created_at) - said) <= NEIGHBOUR_SPAN]
        return [
            Turn(m, STEWARD if m.direction == "out" else await self._name(m.user_id)) for m in found
        ]
