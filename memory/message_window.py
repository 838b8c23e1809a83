"""The newest messages of a few chats' conversations, kept in memory for `MessageLog.recent`.

Every turn reads its chat's conversation (up to 200 messages) again, though one or two messages
changed since the turn before. The message log is the only writer of messages, so it tells the
windows of each write (`added`, `status`, `text`), and a window answers exactly what the query
would: the newest messages in the history (`in_history`) with a status in view, oldest first.
Whatever a window cannot vouch for (a message it never saw changes status, a chat it does not
hold) drops it, and the next read goes to SQLite. A read that began before a write is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["IN_VIEW", "RecentWindows"]


class _Message(Protocol):
    """What a window reads of `memory.messages.StoredMessage` (a frozen dataclass)."""

    __dataclass_fields__: dict[str, Any]
    id: int
    chat_id: int
    direction: str
    status: str
    turn_id: int | None
    in_history: bool


IN_VIEW = frozenset({"handled", "sent", "pending", "received"})
"""The statuses of messages in a conversation (not failed or interrupted ones)."""


M = TypeVar("M", bound=_Message)


class RecentWindows(Generic[M]):
    def __init__(self, size: int = 224, chats: int = 4, known: int = 4096) -> None:
        """`size` messages of the `chats` last read (the context reads 200 of one chat a turn,
        a personal agent talks in a few), and which chat the last `known` messages are in."""
        self.size = size
        self._chats = chats
        self._known = known
        self._windows: OrderedDict[int, list[M]] = OrderedDict()
        self._whole: dict[int, bool] = {}  # the window holds every message in view of its chat
        self._where: OrderedDict[int, int | None] = OrderedDict()  # id: chat (None: no history)
        self.generation = 0

    def get(self, chat_id: int, before_id: int, limit: int) -> list[M] | None:
        """What `recent` returns, or None when the window cannot tell."""
        window = self._windows.get(chat_id)
        if window is None or limit <= 0:
            return None
        self._windows.move_to_end(chat_id)
        picked = [m for m in window if m.direction == "out" or m.id < before_id]
        if len(picked) < limit and not self._whole[chat_id]:
            return None
        return picked[-limit:]

    def keep(self, chat_id: int, messages: list[M], generation: int) -> None:
        """Hold the newest `size` messages in view of a chat (oldest first), as read from SQLite
        while `generation` was current."""
        if generation != self.generation:
            return
        self._windows[chat_id] = list(messages)
        self._whole[chat_id] = len(messages) < self.size
        self._windows.move_to_end(chat_id)
        while len(self._windows) > self._chats:
            dropped, _ = self._windows.popitem(last=False)
            del self._whole[dropped]

    def added(self, message: M) -> None:
        self.generation += 1
        self._where[message.id] = message.chat_id if message.in_history else None
        if len(self._where) > self._known:
            self._where.popitem(last=False)
        window = self._windows.get(message.chat_id)
        if window is None or not message.in_history or message.status not in IN_VIEW:
            return
        if window and window[-1].id >= message.id:
            self._drop(message.chat_id)
            return
        window.append(message)
        if len(window) > self.size:
            del window[0]
            self._whole[message.chat_id] = False

    def status(self, message_id: int, status: str, turn_id: int | None) -> None:
        self.generation += 1
        for window in self._windows.values():
            for i in range(len(window) - 1, -1, -1):  # it is most likely among the newest
                message = window[i]
                if message.id == message_id:
                    if status in IN_VIEW:
                        turn = turn_id if turn_id is not None else message.turn_id
                        window[i] = replace(message, status=status, turn_id=turn)
                    else:
                        del window[i]
                    return
        if status not in IN_VIEW:
            return  # it is not in view, and it was not in any window
        if message_id not in self._where:
            self._windows.clear()  # it may belong in any of them
            self._whole.clear()
        elif (chat := self._where[message_id]) is not None and chat in self._windows:
            self._drop(chat)  # in view again (a failed message sent after all)

    def text(self, message_id: int, text: str) -> None:
        self.generation += 1
        for window in self._windows.values():
            for i in range(len(window) - 1, -1, -1):
                message = window[i]
                if message.id == message_id:
                    window[i] = replace(message, text=text)
                    return

    def _drop(self, chat_id: int) -> None:
        del self._windows[chat_id]
        del self._whole[chat_id]
