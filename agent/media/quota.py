"""The daily quota of files kept for anyone but the owner (`STEWARD_GUEST_DAILY_FILE_BYTES`).

It counts every byte written to `inbox/` for that person: the files downloaded, and the text
copies Steward writes beside them (a PDF's `.pdf.txt`, a Windows-1252 file's UTF-8 copy, a
transcript): a guest's 2 KB PDF had left a 4 MB `.txt` past a quota that counted downloads only;
and a recording kept that is sent to speech-to-text again, its transcript not kept (R197).

In memory, as a flood guard: a restart, the owner's doing, starts the day's count again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from agent.attachments import MediaRef

__all__ = ["GuestQuota", "Held"]


@dataclass
class Held:
    """A download's reservation in a guest's day (`GuestQuota.hold`)."""

    guest: int | None
    size: int
    """Bytes reserved; 0: no quota applies (the owner, a copy reused, no limit set)."""
    day: str = ""
    settled: bool = False


class GuestQuota:
    def __init__(self, daily_bytes: int, max_bytes: int) -> None:
        self.daily_bytes = daily_bytes
        self._max_bytes = max_bytes
        self._saved: dict[tuple[str, int], int] = {}  # (day, person) -> bytes saved

    def hold(self, guest: int | None, ref: MediaRef) -> Held | None:
        """Reserve a file's size in the sender's daily quota before the download, at once:
        checked first and counted after, files arriving together in several chats all passed.
        A file of no announced size reserves what is left (settled to its size once it came).
        None: over it."""
        if guest is None or self.daily_bytes <= 0:
            return Held(guest, 0, settled=True)
        today = self._today_only()
        used = self._saved.get((today, guest), 0)
        left = self.daily_bytes - used
        want = ref.size if ref.size else min(self._max_bytes, left)  # 0 is no size either
        if want > left or left <= 0:
            return None
        self._saved[(today, guest)] = used + want
        return Held(guest, want, today)

    def settle(self, held: Held | None, fetched: int) -> None:
        """The reservation replaced by what was downloaded (nothing, when it was refused).
        Once: a later call does nothing."""
        if held is None or held.settled or held.guest is None:
            return
        held.settled = True
        key = (held.day, held.guest)
        if key in self._saved:
            self._saved[key] = max(0, self._saved[key] - held.size + fetched)

    def room(self, guest: int | None) -> int | None:
        """Bytes left in `guest`'s day; None when no quota applies (the owner, no limit)."""
        if guest is None or self.daily_bytes <= 0:
            return None
        return max(0, self.daily_bytes - self._saved.get((self._today_only(), guest), 0))

    def take(self, guest: int | None, size: int) -> bool:
        """Count `size` bytes of work on a file already kept (a recording sent to
        speech-to-text again), if there is room for them: False, and nothing counted, when
        there is not. Checked and counted at once, as `hold` is."""
        room = self.room(guest)
        if room is not None and room < size:
            return False
        self.count(guest, size)
        return True

    def count(self, guest: int | None, size: int) -> None:
        """Bytes Steward wrote for `guest` beside their file (a text copy), in their day."""
        if guest is None or self.daily_bytes <= 0 or size <= 0:
            return
        key = (self._today_only(), guest)
        self._saved[key] = self._saved.get(key, 0) + size

    def _today_only(self) -> str:
        """Today, with earlier days' counts dropped."""
        today = _today()
        self._saved = {k: v for k, v in self._saved.items() if k[0] == today}
        return today


def _today() -> str:
    return datetime.now(UTC).date().isoformat()
