"""Telegram albums: the photos and files sent together come as one message each, sharing a
`media_group_id`; Steward answers them as one message (one turn, every file, the caption).

A part is held until no more of its album came for `wait` seconds. Telegram forgets an update
once the next poll moves past it, so a held part is written to the state store before that
(`telegram.album_parts`, the raw updates) and taken up again at the next start: a crash or a
stop while an album is gathered loses none of it. An album delivered and then sent again
after a crash carries its first part's id, which the router drops as seen before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.channels.telegram_types import MalformedUpdate, Message, Update
from memory.state import StateStore

__all__ = ["STATE_KEY", "Album", "AlbumCollector"]

log = logging.getLogger(__name__)

STATE_KEY = "telegram.album_parts"
MAX_PARTS = 10
"""Telegram's own limit for an album: more parts under one id are not an album of theirs."""


@dataclass
class Album:
    """The parts of one album seen so far, in the order they came."""

    key: tuple[int, str]
    update_ids: list[int] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    failures: int = 0


Ready = Callable[[Album], Awaitable[None]]


class AlbumCollector:
    """Holds album parts until their album is complete, then hands it to `ready` once."""

    def __init__(self, state: StateStore | None, ready: Ready, *, wait: float = 1.0) -> None:
        self._state = state
        self._ready = ready
        self._wait = wait
        self._albums: dict[tuple[int, str], Album] = {}
        self._raw: dict[int, Any] = {}  # update id -> the raw update, as persisted
        self._timers: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._lock = asyncio.Lock()

    def holds(self, update: Update) -> bool:
        message = update.message
        return message is not None and message.media_group_id is not None

    async def hold(self, update: Update, raw: Any) -> None:
        """Keep one part (persisted first), and wait for the rest of its album."""
        message = update.message
        assert message is not None and message.media_group_id is not None
        key = (message.chat.id, message.media_group_id)
        album = self._albums.setdefault(key, Album(key))
        if update.update_id in album.update_ids:
            return
        album.update_ids.append(update.update_id)
        album.messages.append(message)
        self._raw[update.update_id] = raw
        await self._persist()
        # a full album goes at once; a part after it starts another
        self._restart_timer(key, 0.0 if len(album.messages) >= MAX_PARTS else self._wait)

    async def restore(self) -> None:
        """Take up the parts held when Steward last stopped."""
        if self._state is None:
            return
        stored = await self._state.get(STATE_KEY)
        try:
            raws = json.loads(stored) if stored else []
        except ValueError:
            raws = []
        for raw in raws if isinstance(raws, list) else []:
            try:
                update = Update.from_raw(raw)
            except MalformedUpdate:
                log.warning("a held Telegram album part could not be read again; dropped")
                continue
            if self.holds(update):
                await self.hold(update, raw)

    def _restart_timer(self, key: tuple[int, str], wait: float) -> None:
        timer = self._timers.get(key)
        if timer is not None and not timer.done():
            timer.cancel()
        self._timers[key] = asyncio.create_task(self._later(key, wait))

    async def _later(self, key: tuple[int, str], wait: float) -> None:
        await asyncio.sleep(wait)
        async with self._lock:
            album = self._albums.pop(key, None)
            self._timers.pop(key, None)
        if album is None:
            return
        try:
            await self._ready(album)
        except asyncio.CancelledError:
            raise  # stopped on the way: its parts stay persisted for the next start
        except Exception:
            album.failures += 1
            if album.failures < 3 and key not in self._albums:  # getMe down, say: again
                log.warning("handing on a Telegram album failed; trying again", exc_info=True)
                self._albums[key] = album
                self._restart_timer(key, self._wait * 5 * album.failures)
                return
            log.exception("handing on a Telegram album failed; its parts are dropped")
        for update_id in album.update_ids:
            self._raw.pop(update_id, None)
        await self._persist()

    async def _persist(self) -> None:
        if self._state is None:
            return
        async with self._lock:
            ordered = [self._raw[i] for i in sorted(self._raw)]
            await self._state.set(STATE_KEY, json.dumps(ordered, ensure_ascii=False))

    async def close(self) -> None:
        """Stop waiting; what is held stays persisted for the next start."""
        timers = list(self._timers.values())
        for timer in timers:
            timer.cancel()
        for timer in timers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await timer
        self._timers.clear()
