"""Telegram albums: the photos and files sent together come as one message each, sharing a
`media_group_id`; Steward answers them as one message (one turn, every file, every caption).

A part is held until no more of its album came for `wait` seconds, or until another message
of that chat comes (an album's parts come one after another, so that message follows the
album, and is answered after it). Telegram forgets an update once the next poll moves past
it, so a held part is written to the state store (`telegram.album_parts`, the raw updates)
before it is taken, and taken up again at the next start: a crash or a stop while an album
is gathered or answered loses none of it. An album handed on twice (a crash between its
delivery and its parts' removal) carries its first part's id, which the router drops as seen.

A long text is gathered the same way: Telegram's apps send a text over 4,096 characters as
several messages, and each part answered alone answered half a paste. A private text of
`SPLIT_LENGTH` or more waits (`2 * wait`) for the same person's next text there, which joins
it; a shorter one ends the text at once, a long one waits again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.channels.telegram_types import MalformedUpdate, Message, Update
from memory.state import StateStore

__all__ = ["STATE_KEY", "Album", "AlbumCollector"]

log = logging.getLogger(__name__)

AlbumKey = tuple[int, str, int | None]
"""Chat, `media_group_id` and sender: a part from someone else under the same id (Telegram
assigns the ids; a forged or colliding one) is never merged into another person's album,
whose first part's sender the whole album is read as."""

STATE_KEY = "telegram.album_parts"
MAX_PARTS = 10
"""Telegram's own limit for an album: more parts under one id are not an album of theirs."""
MAX_TRIES = 20
"""Handing an album on that failed this often (about 90 minutes of retries) gives it up."""
SPLIT_LENGTH = 3500
"""UTF-16 units (Telegram's measure) from which a private text may be the first part of one
an app split at 4,096: the apps cut at a line or a word break before the limit."""
TEXT_LIMIT = 4096
"""Telegram's longest text: a longer one (none of an app's parts) is answered alone."""
SPLIT = "\x00text:"
"""The group a split text's parts are gathered under (with its first part's id): never a
`media_group_id` of Telegram's, which are digits."""


@dataclass
class Album:
    """The parts of one album seen so far, in the order they came."""

    key: AlbumKey
    batch: int = 0
    """Which gathering of that album id this is: a part that comes after its album was handed
    on starts another, and stays another across a restart."""
    update_ids: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    failures: int = 0


Ready = Callable[[Album], None]
"""Takes a complete album on (the channel starts its delivery and calls `delivered` or
`failed` when it ends)."""


class AlbumCollector:
    """Holds album parts until their album is complete, then hands it to `ready` once."""

    def __init__(self, state: StateStore | None, ready: Ready, *, wait: float = 1.0) -> None:
        self._state = state
        self._ready = ready
        self._wait = wait
        self._albums: dict[AlbumKey, Album] = {}
        self._raw: dict[int, tuple[int, Any, str | None]] = {}  # id -> (batch, raw, split group)
        self._next_batch = 1
        self._timers: dict[AlbumKey, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self._done: deque[int] = deque(maxlen=1000)  # parts handed on: sent again, dropped
        self._retries: set[asyncio.Task[None]] = set()

    def holds(self, update: Update) -> bool:
        message = update.message
        if message is None:
            return False
        if message.media_group_id is not None:
            return True
        return _long_text(message) or (_continues(message) and self._split_of(message) is not None)

    async def hold(
        self, update: Update, raw: Any, *, batch: int | None = None, group: str | None = None
    ) -> None:
        """Keep one part, persisted before anything else: a failed write leaves no trace, so
        the part fetched again is taken as new. An album of this chat that is still gathered
        under another id (or, restored, another batch) is complete: it goes first. `group`
        names, when restored, the split text a part was gathered into."""
        message = update.message
        assert message is not None
        if update.update_id in self._raw or update.update_id in self._done:
            return
        split = group
        if message.media_group_id is not None:
            key = (message.chat.id, message.media_group_id, _sender(message))
        else:
            if split is None:  # a long reply starts a text of its own (R144)
                held = self._split_of(message) if _continues(message) else None
                split = held[1] if held is not None else f"{SPLIT}{message.message_id}"
            key = (message.chat.id, split, _sender(message))
        album = self._albums.get(key)
        if album is not None and batch is not None and album.batch != batch:
            self._hand_on(key)  # restored: another gathering of the same id
            album = None
        for other in self._of(key[0], _sender(message), but=key):
            self._hand_on(other)  # one person's albums are answered in the order they came
        if album is None:
            album = Album(key, batch if batch is not None else self._next_batch)
            self._next_batch = max(self._next_batch, album.batch) + 1
        self._raw[update.update_id] = (album.batch, raw, split)
        held_before = self._albums.get(key) is album
        paused = self._timers.pop(key, None)  # not handed on while this part is written
        if paused is not None:
            paused.cancel()
        try:
            await self._persist()
        except BaseException:
            self._raw.pop(update.update_id, None)
            if paused is not None and self._albums.get(key) is album:
                self._start_timer(key, self._wait)
            raise
        if held_before and self._albums.get(key) is not album:
            # handed on meanwhile (another part of this person's came): this part starts a
            # gathering of its own; appended to the one handed on, it was lost (R144)
            album = Album(key, album.batch)
        album = self._albums.setdefault(key, album)
        album.update_ids.append(update.update_id)
        album.messages.append(message)
        # a full album goes at once; a part after it starts another
        if len(album.messages) >= MAX_PARTS:
            self._start_timer(key, 0.0)
        elif split is None:
            self._start_timer(key, self._wait)
        else:  # a split text ends with its first part shorter than a split's
            self._start_timer(key, self._wait * 2 if _long_text(message) else 0.0)

    async def restore(self) -> list[int]:
        """Take up the parts held when Steward last stopped; their update ids."""
        if self._state is None:
            return []
        stored = await self._state.get(STATE_KEY)
        try:
            raws = json.loads(stored) if stored else []
        except ValueError:
            raws = []
        taken: list[int] = []
        entries = [e for e in raws if isinstance(e, dict)] if isinstance(raws, list) else []
        for entry in entries:
            if "update_id" in entry:  # held by a version before batches: the raw update, one
                entry = {"batch": -1, "update": entry}  # gathering per album id, as it was
            batch, raw, group = entry.get("batch"), entry.get("update"), entry.get("group")
            if not isinstance(group, str) or not group.startswith(SPLIT):
                group = None
            if not isinstance(batch, int) or isinstance(batch, bool):
                log.warning("a held Telegram album part was not understood; dropped")
                continue
            try:
                update = Update.from_raw(raw)
            except MalformedUpdate:
                log.warning("a held Telegram album part could not be read again; dropped")
                continue
            if update.message is not None and (group is not None or self.holds(update)):
                await self.hold(update, raw, batch=batch, group=group)
                taken.append(update.update_id)
        return taken

    def flush_chat(self, chat_id: int, sender: int | None) -> None:
        """Another message of this person in this chat came: their albums there are complete,
        and go first. (Another member's albums, sent at the same moment, keep gathering.)"""
        for key in self._of(chat_id, sender):
            self._hand_on(key)

    def flush_album(self, chat_id: int, group: str) -> None:
        """A message that answers a part of this album (anyone's): the album goes first."""
        for key in [k for k in self._albums if k[:2] == (chat_id, group)]:
            self._hand_on(key)

    def _split_of(self, message: Message) -> AlbumKey | None:
        """The split text this person is sending in this chat, if one is gathered."""
        sender = _sender(message)
        for key, album in self._albums.items():
            if key[0] == message.chat.id and key[2] == sender and key[1].startswith(SPLIT):
                first = album.messages[0] if album.messages else None
                # a private chat's topics are apart: another topic's text is not a part (R144)
                return key if first is None or _topic(first) == _topic(message) else None
        return None

    def _of(
        self, chat_id: int, sender: int | None, *, but: AlbumKey | None = None
    ) -> list[AlbumKey]:
        return [
            key for key in self._albums if key[0] == chat_id and key[2] == sender and key != but
        ]

    def _start_timer(self, key: AlbumKey, wait: float) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None and not timer.done():
            timer.cancel()
        self._timers[key] = asyncio.create_task(self._later(key, wait))

    async def _later(self, key: AlbumKey, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timers.pop(key, None)
        self._hand_on(key)

    def _hand_on(self, key: AlbumKey) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        album = self._albums.pop(key, None)
        if album is not None:
            self._ready(album)

    async def delivered(self, album: Album) -> None:
        """The album is with the router (stored): its parts are let go."""
        for update_id in album.update_ids:
            self._raw.pop(update_id, None)
        self._done.extend(album.update_ids)
        await self._persist()

    async def failed(self, album: Album) -> None:
        """Handing it on failed (getMe unanswered, say): it stays persisted and is tried
        again, at growing intervals, up to `MAX_TRIES` times."""
        album.failures += 1
        if album.failures >= MAX_TRIES:
            log.error("a Telegram album could not be handed on %d times; dropped", MAX_TRIES)
            await self.delivered(album)
            return
        # tried again as it is, apart from any part that came since (another gathering)
        delay = min(self._wait * 2**album.failures, 300.0)
        retry = asyncio.create_task(self._again(album, delay))
        self._retries.add(retry)
        retry.add_done_callback(self._retries.discard)

    async def _again(self, album: Album, delay: float) -> None:
        await asyncio.sleep(delay)
        self._ready(album)

    async def _persist(self) -> None:
        if self._state is None:
            return
        async with self._lock:
            ordered = [
                {"batch": batch, "update": raw} | ({"group": group} if group else {})
                for batch, raw, group in (self._raw[i] for i in sorted(self._raw))
            ]
            await self._state.set(STATE_KEY, json.dumps(ordered, ensure_ascii=False))

    async def close(self) -> None:
        """Stop waiting; what is held stays persisted for the next start. Albums already
        handed on are the channel's to finish (its stop grace)."""
        timers = [*self._timers.values(), *self._retries]
        self._timers.clear()
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await timer


def _sender(message: Message) -> int | None:
    return message.from_user.id if message.from_user is not None else None


def _topic(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def _continues(message: Message) -> bool:
    """Whether a message can be a split text's next part: a person's own text in a private
    chat, no command, no forward, no answer to or quote of another message (an app sends the
    parts after the first as plain texts)."""
    return (
        _private_text(message)
        and message.reply_to_message is None
        and message.external_reply is None
        and message.quote is None
    )


def _long_text(message: Message) -> bool:
    """Whether a message may be the first part (or a middle one) of a text split by an app."""
    text = message.text
    return (
        text is not None
        and _private_text(message)
        and SPLIT_LENGTH <= len(text.encode("utf-16-le", "surrogatepass")) // 2 <= TEXT_LIMIT
    )


def _private_text(message: Message) -> bool:
    return (
        message.chat.type == "private"
        and message.text is not None
        and message.media_group_id is None
        and message.from_user is not None
        and not message.from_user.is_bot
        and message.forward_origin is None
        and message.via_bot is None  # an inline bot's words (R153: joined as the owner's)
        and not message.text.startswith("/")
    )
