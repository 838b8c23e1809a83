"""The daily quota of files kept for anyone but the owner (`STEWARD_GUEST_DAILY_FILE_BYTES`).

In memory, as a flood guard: a restart, the owner's doing, starts the day's count again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agent.attachments import MediaRef

__all__ = ["GuestQuota"]


class GuestQuota:
    def __init__(self, daily_bytes: int, max_bytes: int) -> None:
        self.daily_bytes = daily_bytes
        self._max_bytes = max_bytes
        self._saved: dict[tuple[str, int], int] = {}  # (day, person) -> bytes saved

    def hold(self, guest: int | None, ref: MediaRef) -> int | None:
        """Reserve a file's size in the sender's daily quota before the download, at once:
        checked first and counted after, files arriving together in several chats all passed.
        A file of no announced size reserves what is left (settled to its size once it came).
        0: no quota; None: over it."""
        if guest is None or self.daily_bytes <= 0:
            return 0
        today = _today()
        self._saved = {k: v for k, v in self._saved.items() if k[0] == today}
        used = self._saved.get((today, guest), 0)
        left = self.daily_bytes - used
        want = ref.size if ref.size else min(self._max_bytes, left)  # 0 is no size either
        if want > left or left <= 0:
            return None
        self._saved[(today, guest)] = used + want
        return want

    def settle(self, guest: int | None, held: int | None, fetched: int) -> None:
        """The reservation replaced by what was downloaded (nothing, when it was refused)."""
        if guest is None or held is None or self.daily_bytes <= 0:
            return
        key = (_today(), guest)
        if key in self._saved:
            self._saved[key] = max(0, self._saved[key] - held + fetched)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
