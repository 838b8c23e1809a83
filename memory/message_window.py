"""The newest messages of a few conversations, kept in memory for `MessageLog.recent`.

Every turn reads its conversation (up to 200 messages) again, though one or two messages
changed since the turn before. A conversation is a chat's whole log or, in a chat whose threads
are conversations of their own (a Slack channel), one thread of it: a window is kept per (chat,
thread). The message log is the only writer of messages, so it tells the windows of each write
(`added`, `status`, `text`), and a window answers exactly what the query would: the newest
messages in the history (`in_history`) with a status in view, oldest first. Whatever a window
cannot vouch for (a message it never saw changes status, a chat it does not hold) drops the
chat's windows, and the next read goes to SQLite. A read that began before a write is not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["IN_VIEW", "WHOLE_CHAT", "RecentWindows", "Thread", "Whole"]


class _Message(Protocol):
    """What a window reads of `memory.messages.StoredMessage` (a frozen dataclass)."""

    __dataclass_fields__: dict[str, Any]
    id: int
    chat_id: int
    direction: str
    thread_id: str | None
    status: str
    turn_id: int | None
    in_history: bool


IN_VIEW = frozenset({"handled", "sent", "pending", "received"})
"""The statuses of messages in a conversation (not failed or interrupted ones)."""


class Whole(Enum):
    """Not one thread but the chat's every message (a sentinel: a thread may be None)."""

    CHAT = "chat"


WHOLE_CHAT = Whole.CHAT

Thread = str | None | Whole
"""Which messages of a chat: one thread's (None: those outside any thread), or `WHOLE_CHAT`."""

M = TypeVar("M", bound=_Message)


class RecentWindows(Generic[M]):
    def __init__(self, size: int = 224, windows: int = 8, known: int = 4096) -> None:
        """`size` messages of the `windows` conversations last read (the context reads 200 of
        one a turn; a personal agent talks in a few chats, a Slack channel in a few threads),
        and which chat the last `known` messages are in."""
        self.size = size
        self._most = windows
        self._known = known
        self._windows: OrderedDict[tuple[int, Thread], list[M]] = OrderedDict()
        self._whole: dict[tuple[int, Thread], bool] = {}  # it holds every message in view
        self._where: OrderedDict[int, int | None] = OrderedDict()  # id: chat (None: no history)
        self.generation = 0

    def get(
        self, chat_id: int, before_id: int, limit: int, thread: Thread = WHOLE_CHAT
    ) -> list[M] | None:
        """What `recent` returns, or None when the window cannot tell."""
        key = (chat_id, thread)
        window = self._windows.get(key)
        if window is None or limit <= 0:
            return None
        self._windows.move_to_end(key)
        picked = [m for m in window if m.direction == "out" or m.id < before_id]
        if len(picked) < limit and not self._whole[key]:
            return None
        return picked[-limit:]

    def keep(
        self, chat_id: int, messages: list[M], generation: int, thread: Thread = WHOLE_CHAT
    ) -> None:
        """Hold the newest `size` messages in view of a chat's `thread` (oldest first), as read
        from SQLite while `generation` was current."""
        if generation != self.generation:
            return
        key = (chat_id, thread)
        self._windows[key] = list(messages)
        self._whole[key] = len(messages) < self.size
        self._windows.move_to_end(key)
        while len(self._windows) > self._most:
            dropped, _ = self._windows.popitem(last=False)
            del self._whole[dropped]

    def added(self, message: M) -> None:
        self.generation += 1
        self._where[message.id] = message.chat_id if message.in_history else None
        if len(self._where) > self._known:
            self._where.popitem(last=False)
        if not message.in_history or message.status not in IN_VIEW:
            return
        for key in ((message.chat_id, WHOLE_CHAT), (message.chat_id, message.thread_id)):
            window = self._windows.get(key)
            if window is None:
                continue
            if window and window[-1].id >= message.id:
                self._drop(message.chat_id)
                return
            window.append(message)
            if len(window) > self.size:
                del window[0]
                self._whole[key] = False

    def status(self, message_id: int, status: str, turn_id: int | None) -> None:
        self.generation += 1
        found = False
        for i, window in self._holding(message_id):
            found = True
            if status in IN_VIEW:
                message = window[i]
                turn = turn_id if turn_id is not None else message.turn_id
                window[i] = replace(message, status=status, turn_id=turn)
            else:
                del window[i]
        if found or status not in IN_VIEW:
            return  # (not in view, and in no window: nothing changes)
        if message_id not in self._where:
            self._windows.clear()  # it may belong in any of them
            self._whole.clear()
        elif (chat := self._where[message_id]) is not None:
            self._drop(chat)  # in view again (a failed message sent after all)

    def text(self, message_id: int, text: str) -> None:
        self.generation += 1
        for i, window in self._holding(message_id):
            window[i] = replace(window[i], text=text)

    def _holding(self, message_id: int) -> list[tuple[int, list[M]]]:
        """Where a message is in the windows that hold it (a chat's and its thread's)."""
        chat = self._where.get(message_id)
        found = []
        for (chat_id, _), window in self._windows.items():
            if chat is not None and chat_id != chat:
                continue
            for i in range(len(window) - 1, -1, -1):  # it is most likely among the newest
                if window[i].id <= message_id:
                    if window[i].id == message_id:
                        found.append((i, window))
                    break
        return found

    def forget(self, chat_ids: Iterable[int]) -> None:
        """What these chats' windows hold was changed in SQLite behind the log's back."""
        self.generation += 1
        for chat_id in chat_ids:
            self._drop(chat_id)

    def forget_all(self) -> None:
        self.generation += 1
        self._windows.clear()
        self._whole.clear()

    def _drop(self, chat_id: int) -> None:
        for key in [key for key in self._windows if key[0] == chat_id]:
            del self._windows[key]
            del self._whole[key]
