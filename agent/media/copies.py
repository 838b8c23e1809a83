"""What Steward writes to `inbox/` for a message's files: the file itself, and its text as
UTF-8 `<name>.txt` beside it (a document's that does not read so itself, a transcript).

A text copy counts in a guest's daily quota (`STEWARD_GUEST_DAILY_FILE_BYTES`) as their files
do: a guest's 2 KB PDF had left a 4 MB `.pdf.txt`, a Windows-1252 file a UTF-8 copy three times
its size, past a quota that counted only downloads. Past what is left of it the copy is cut at
a whole character (none at all when nothing is left), and the sender told.

A copy is only ever `<name>.txt` of the file it is the text of (`Inbox.save_beside`), or a name
of Steward's own: never a numbered `<name>-1.txt` while another person's file holds
`<name>.txt` (R197). A reply to the message reuses the copy remembered for it while it is
whole, or when the quota that cut it is the replying person's own: anyone else's reply has the
text written again, within their own limits (R200: the owner's reply to a guest's recording got
the transcript the guest's quota had cut, and no word of the cut).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass

from agent.attachments import FileUnavailable
from agent.media.inbox import Inbox, Kept, KeptText
from agent.media.quota import GuestQuota

__all__ = ["Copies", "NotSaved", "TextCopy", "mb"]


def mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size < 10_000_000 else f"{size / 1_000_000:.0f} MB"


def _amount(size: int) -> str:
    """A size as a sender reads it ("640 bytes", "19 kB", "4.0 MB")."""
    if size < 1_000:
        return f"{size} byte{'s' if size != 1 else ''}"
    return f"{size // 1_000} kB" if size < 1_000_000 else mb(size)


class NotSaved(Exception):
    """A file downloaded that inbox/ could not take: a sentence for the sender."""


@dataclass(frozen=True)
class TextCopy:
    """Where a file's text was saved; `whole`: all of it (a guest's quota may cut it);
    `problem`: what the sender is told when it was cut."""

    path: str | None
    whole: bool = True
    problem: str | None = None

    def where(self, verb: str = "is ") -> str:
        """What the turn and the log are told of it ("is in inbox/a.pdf.txt"; the log's note
        without `verb`: "text in inbox/a.pdf.txt")."""
        if self.path is None:
            return "was not saved (the sender's daily files quota)"
        if not self.whole:
            return f"{verb}in {self.path}, cut short (the sender's daily files quota)"
        return f"{verb}in {self.path}"


async def _saved(writing: Awaitable[str]) -> str:
    """The path a write into inbox/ made; `NotSaved` when it failed."""
    try:
        return await writing
    except (FileUnavailable, OSError) as exc:
        reason = str(exc) if isinstance(exc, FileUnavailable) else "writing to inbox/ failed"
        raise NotSaved(f"could not save it: {reason}") from None


_CUT_REMEMBERED = 2000
"""Cut copies whose cutting quota is remembered (the inbox remembers as many files)."""


class Copies:
    def __init__(self, inbox: Inbox, quota: GuestQuota) -> None:
        self._inbox = inbox
        self._quota = quota
        self._cut_for: OrderedDict[Kept, int] = OrderedDict()
        """The person whose quota cut the copy of that file: theirs alone to reuse (R200)."""

    async def _recalled(self, key: Kept | None, guest: int | None) -> KeptText | None:
        """The copy remembered for that file, if `guest` (None: the owner) may reuse it: a
        whole one, or one cut by their own quota (told then; anyone else's is written again)."""
        known = await self._inbox.recall_text(key) if key is not None else None
        if known is None or known.whole:
            return known
        return known if guest is not None and self._cut_for.get(key) == guest else None

    def _remember_cut(self, key: Kept, guest: int | None, whole: bool) -> None:
        self._cut_for.pop(key, None)
        if not whole and guest is not None:
            self._cut_for[key] = guest
            while len(self._cut_for) > _CUT_REMEMBERED:
                self._cut_for.popitem(last=False)

    async def write(self, name: str, data: bytes, *, paired: bool = False) -> str:
        """A new file in inbox/ (`paired`: with `<name>.txt` free for its text copy);
        `NotSaved` when it cannot be (the download is done: a failed save is not a failed
        download)."""
        return await _saved(self._inbox.save(name, data, paired=paired))

    async def kept(self, key: Kept | None, text: str, guest: int | None) -> TextCopy | None:
        """The copy written of that file before, while it still holds `text` (or, cut by
        `guest`'s quota then and told so, its beginning); None."""
        known = await self._recalled(key, guest)
        if known is None:
            return None
        data = text.encode()
        if known.data == data:
            return TextCopy(known.path)
        if not known.whole and data.startswith(known.data):
            return TextCopy(known.path, whole=False)
        return None

    async def transcript(self, key: Kept | None, guest: int | None) -> tuple[str, TextCopy] | None:
        """The text written of that file before (a recording's transcript), and where, while
        it still holds what was written and is whole, or was cut by `guest`'s own quota; None."""
        known = await self._recalled(key, guest)
        if known is None:
            return None
        return known.data.decode("utf-8", errors="replace"), TextCopy(known.path, known.whole)

    async def text(
        self, saved: str, text: str, *, key: Kept | None, guest: int | None, named: str
    ) -> TextCopy:
        """`<name>.txt` beside the file `saved` (`Inbox.save_beside`); the copy written of it
        before (`key`: the file, as the message that carried it names it), when it is unchanged
        (counted when it was written). `guest`: the person other than the owner in whose
        quota it counts; `named`: the file, as the sender is told of it."""
        if (same := await self.kept(key, text, guest)) is not None:
            return same
        data = text.encode()
        room = self._quota.room(guest)
        whole = room is None or room >= len(data)
        if not whole:  # no await between the check and the count: files at once cannot pass
            data = data[:room].decode("utf-8", errors="ignore").encode()  # whole characters
        self._quota.count(guest, len(data))
        path = await _saved(self._inbox.save_beside(saved, data)) if data or whole else None
        if path is not None and key is not None:
            await self._inbox.remember_text(key, path, data, whole=whole)
            self._remember_cut(key, guest, whole)
        if whole:
            return TextCopy(path)
        kept = f"so {path} holds only its first {_amount(len(data))}" if path else "so I kept none"
        return TextCopy(
            path,
            whole=False,
            problem=(
                f"The text of {named} came to {_amount(len(text.encode()))}, more than is left "
                f"of the {_amount(self._quota.daily_bytes)} of files I keep a day for anyone "
                f"but my owner, {kept}."
            ),
        )
