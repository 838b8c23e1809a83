"""Telegram albums: the photos and files sent together come as one message each, sharing a
`media_group_id`; Steward answers them as one message (one turn, every file, every caption).

A part is held until no more of its album came for `wait` seconds, or until another message
of that chat comes (an album's parts come one after another, so that message follows the
album, and is answered after it). Telegram forgets an update once the next poll moves past
it, so a held part is written to the state store (`telegram.album_parts`, the raw updates)
before it is taken, and taken up again at the next start: a crash or a stop while an album
is gathered or answered loses none of it. An album handed on twice (a crash between its
delivery and its parts' removal) carries its first part's id, which the router drops as seen.
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
        self._raw: dict[int, tuple[int, Any]] = {}  # update id -> (batch, raw), as persisted
        self._next_batch = 1
        self._timers: dict[AlbumKey, asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()
        self._done: deque[int] = deque(maxlen=1000)  # parts handed on: sent again, dropped
        self._retries: set[asyncio.Task[None]] = set()

    @staticmethod
    def holds(update: Update) -> bool:
        message = update.message
        return message is not None and message.media_group_id is not None

    async def hold(self, update: Update, raw: Any, *, batch: int | None = None) -> None:
        """Keep one part, persisted before anything else: a failed write leaves no trace, so
        the part fetched again is taken as new. An album of this chat that is still gathered
        under another id (or, restored, another batch) is complete: it goes first."""
        message = update.message
        assert message is not None and message.media_group_id is not None
        key = (message.chat.id, message.media_group_id, _sender(message))
        if update.update_id in self._raw or update.update_id in self._done:
            return
        album = self._albums.get(key)
        if album is not None and batch is not None and album.batch != batch:
            self._hand_on(key)  # restored: another gathering of the same id
            album = None
        for other in self._of(key[0], _sender(message), but=key):
            self._hand_on(other)  # one person's albums are answered in the order they came
        if album is None:
            album = Album(key, batch if batch is not None else self._next_batch)
            self._next_batch = max(self._next_batch, album.batch) + 1
        self._raw[update.update_id] = (album.batch, raw)
        try:
            await self._persist()
        except BaseException:
            self._raw.pop(update.update_id, None)
            raise
        album = self._albums.setdefault(key, album)
        album.update_ids.append(update.update_id)
        album.messages.append(message)
        # a full album goes at once; a part after it starts another
        self._start_timer(key, 0.0 if len(album.messages) >= MAX_PARTS else self._wait)

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
            batch, raw = entry.get("batch"), entry.get("update")
            if not isinstance(batch, int) or isinstance(batch, bool):
                log.warning("a held Telegram album part was not understood; dropped")
                continue
            try:
                update = Update.from_raw(raw)
            except MalformedUpdate:
                log.warning("a held Telegram album part could not be read again; dropped")
                continue
            if self.holds(update):
                await self.hold(update, raw, batch=batch)
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
                {"batch": batch, "update": raw}
                for batch, raw in (self._raw[i] for i in sorted(self._raw))
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
