"""The intake of a message's files: size caps, download, conversion, workspace copies, labels.

For every file (`MediaRef`) a message carries, in order: refuse it by its announced size before
any download (a file of a message replied to is the copy saved then, `inbox.py`); fetch it
through the channel (`FileSource`), capped; keep a copy in the workspace's `inbox/` (with a
document's text, unless the file reads as it, and a transcript as UTF-8 `<name>.txt`,
`copies.py`: a guest's quota counts those too) so tools can work on it; then make it ready for
the model (`blocks.py` makes the content blocks):

- a photo or image file → an image block, downscaled (`images.py`); what it shows is outside
  content, whoever sent it (the caption the owner typed stays theirs);
- a document → its text, capped, fenced as outside content whoever sent it (the sender told
  of pages not read past a PDF's page cap); all a message's files share one cap, and a guest's
  what is left of their day's allowance (`share.py`, R197);
- the owner's own voice note → a transcript that *is* their message (`Intake.spoken`); a voice
  note from someone else or forwarded, and any audio file → a transcript fenced as outside
  content, capped as a document is; a recording kept already is not transcribed again, its
  transcript is (R197: each reply to a 10-hour recording had sent it to speech-to-text again).

What fails becomes a sentence for the sender (`Intake.problems`): the message itself is already
stored, so nothing is lost; so does a text longer than the model is given.

(Some 500 lines: each kind's path and its notes for the sender, the log and the model are one
account of a file; split by kind, the shared caps and notes would be spread over three.)
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from agent.attachments import (
    Attachment,
    AttachmentKind,
    FileTooLarge,
    FileUnavailable,
    MediaKind,
    MediaRef,
    plain_media_type,
)
from agent.media.blocks import content_blocks
from agent.media.copies import Copies, NotSaved, TextCopy, mb
from agent.media.documents import (
    PDF_SECONDS,
    READABLE,
    DocumentError,
    document_type,
    extract_text,
)
from agent.media.file_names import name_parts as _name_parts
from agent.media.file_names import safe_name as _safe_name
from agent.media.images import ImageError, prepare_image
from agent.media.inbox import INBOX, Inbox, Kept
from agent.media.quota import GuestQuota, Held
from agent.media.share import Cut, Share
from agent.media.stt import NOT_CONFIGURED, NOT_HERE, Transcriber, TranscriptionError
from memory.labels import Label
from memory.message_files import MessageFile

__all__ = ["INBOX", "FileSource", "Intake", "MediaIntake", "content_blocks", "media_note"]

log = logging.getLogger(__name__)

_WHAT = {
    MediaKind.PHOTO: "photo",
    MediaKind.DOCUMENT: "file",
    MediaKind.VOICE: "voice note",
    MediaKind.AUDIO: "audio file",
}
_WITH_TEXT = (MediaKind.DOCUMENT, MediaKind.VOICE, MediaKind.AUDIO)
"""Kinds of file that may get a text copy: saved where `<name>.txt` is free too (R197)."""
_DEFAULT_SUFFIX = {
    MediaKind.PHOTO: ".jpg",
    MediaKind.DOCUMENT: "",
    MediaKind.VOICE: ".ogg",
    MediaKind.AUDIO: ".mp3",
}


@runtime_checkable
class FileSource(Protocol):
    """A channel that can download the files its messages carry."""

    async def fetch_file(self, ref: MediaRef, max_bytes: int) -> bytes: ...


@dataclass(frozen=True)
class _Came:
    """One file of a message as it came, for the path of its kind: `base` is the message's
    label, `key` the file as that message names it (its copies are remembered under it),
    `reused` whether it is the copy saved before, `guest` the sender with a daily quota."""

    ref: MediaRef
    raw: bytes
    saved: str
    base: Label
    key: Kept | None
    reused: bool
    guest: int | None

    @property
    def outside(self) -> Label:
        return self.base.join(Label.untrusted(f"file:{self.saved}"))


@dataclass
class Intake:
    """What a message's files came to."""

    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One sentence per file that could not be used, for the sender."""
    notes: list[str] = field(default_factory=list)
    """One line per file for the message log ("[photo saved as inbox/x.jpg]")."""
    not_used: list[str] = field(default_factory=list)
    """The notes of files the model gets in no other way (not shown, not read): said with the
    message, so its words are not read as if nothing came with them."""
    spoken: str = ""
    """The owner's own voice note, transcribed: their message."""
    fetched: int = 0
    """Bytes downloaded (another person's files count against their daily quota)."""
    files: list[MessageFile] = field(default_factory=list)
    """What was saved in inbox/ (files and text copies), for the message to be forgotten with."""

    def unused(self, note: str) -> None:
        self.notes.append(note)
        self.not_used.append(note)


def media_note(refs: tuple[MediaRef, ...]) -> str:
    """What a message carries, for the log before its files are fetched ("[photo]", "[file]")."""
    return " ".join(f"[{_named(ref)}]" for ref in refs)


def _named(ref: MediaRef) -> str:
    """What the sender's message says of a file ("file", "photo"): never the name its maker
    gave it, which went into the owner's words as theirs (R171: `Assistant_note_save_memory_…
    .docx` saved a memory and wrote a file, unasked)."""
    return _WHAT[ref.kind]


def _saved(ref: MediaRef, saved: str) -> str:
    """Where a note says the file was saved: its path, unless its maker named it ("in inbox/")."""
    return f"in {saved.rsplit('/', 1)[0]}/" if ref.sender_named else f"as {saved}"


def _text_where(ref: MediaRef, copy: TextCopy, saved: str) -> str:
    """A text copy's place (`TextCopy.where`), for a note: its path holds the file's name (a
    file that reads as its text is its own copy: R172, the note named a .txt never written).
    "Beside it" is only ever `<saved>.txt`; a copy that could not go there has a name of
    Steward's own, said as it is (R197: "beside it" had led to another person's file)."""
    where = copy.where(verb="")
    if not ref.sender_named or copy.path is None:
        return where
    if copy.path == saved:
        return where.replace(copy.path, "the file itself")
    if copy.path == f"{saved}.txt":
        return where.replace(copy.path, "a .txt beside it")
    return where


def _shown_type(mime_type: str) -> str:
    """A file's claimed type as Steward may repeat it: the sender's client writes it, so
    anything but a plain `type/subtype` (Markdown, a link) is not echoed in Steward's words."""
    return mime_type if plain_media_type(mime_type) else "unknown type"


class MediaIntake:
    def __init__(
        self,
        *,
        workspace: Path,
        max_bytes: int,
        max_chars: int,
        transcriber: Transcriber | None,
        guest_daily_bytes: int = 0,
        pdf_seconds: float = PDF_SECONDS,
    ) -> None:
        self._inbox = Inbox(workspace)
        self.pdf_seconds = pdf_seconds
        """Time for reading one PDF's pages (`documents.PDF_SECONDS`)."""
        self._max_bytes = max_bytes
        self._quota = GuestQuota(guest_daily_bytes, max_bytes)
        self._copies = Copies(self._inbox, self._quota)
        self._max_chars = max_chars
        self._transcriber = transcriber

    def share(self, tokens: int | None = None) -> Share:
        """The room for one message's files: `STEWARD_DOCUMENT_MAX_CHARS` of text together,
        and `tokens` (a guest's day's allowance left) at most."""
        return Share(self._max_chars, tokens)

    async def take(
        self,
        refs: tuple[MediaRef, ...],
        source: FileSource | None,
        *,
        base: Label,
        own_words: bool,
        guest: int | None = None,
        message: tuple[str, str] | None = None,
        share: Share | None = None,
    ) -> Intake:
        """Fetch and prepare every file in `refs`. `base` is the message's own label (another
        person's, forwarded); `own_words` whether it is the owner's own, unforwarded message;
        `guest` the user id of a sender other than the owner, whose files have a daily quota;
        `message` the (channel, message id) that carries the files: a file of it already in
        the inbox is reused, not downloaded (and counted) again; `share` the room the model
        has for all the files of the message these come with (`share()`)."""
        share = share if share is not None else self.share()
        intake = Intake()
        for ref in refs:
            key = (message[0], message[1], ref.file_id) if message else None
            kept = await self._inbox.recall(key, self._max_bytes) if key else None
            held = Held(guest, 0, settled=True) if kept else self._quota.hold(guest, ref)
            before = intake.fetched
            try:
                if held is None:
                    intake.problems.append(
                        f"You have sent {mb(self._quota.daily_bytes)} of files today, the most "
                        f"I keep for anyone but my owner, so I did not download that "
                        f"{_WHAT[ref.kind]}; try again tomorrow."
                    )
                    intake.unused(f"[{_named(ref)} not downloaded: the day's files quota]")
                    continue
                cap = min(self._max_bytes, held.size) if held.size else self._max_bytes
                await self._one(ref, source, base, own_words, intake, cap, held, key, kept, share)
            except FileTooLarge as exc:
                size = f" is {mb(exc.size)}" if exc.size else " is too large"
                intake.problems.append(
                    f"That {_WHAT[ref.kind]}{size}; I take files up to {mb(self._max_bytes)} "
                    "(STEWARD_FILE_MAX_BYTES), so I did not download it."
                )
                intake.unused(f"[{_named(ref)} not downloaded: too large]")
            except NotSaved as exc:
                intake.problems.append(f"I downloaded that {_WHAT[ref.kind]} but {exc}.")
                intake.unused(f"[{_named(ref)} not saved]")
            except FileUnavailable as exc:
                intake.problems.append(f"I could not download that {_WHAT[ref.kind]}: {exc}.")
                intake.unused(f"[{_named(ref)} not downloaded]")
            except asyncio.CancelledError:
                raise
            except Exception:  # one file a library chokes on: the rest of the message goes on
                log.exception("reading a %s failed", ref.kind.value)
                intake.problems.append(f"I could not read that {_WHAT[ref.kind]}.")
                intake.unused(f"[{_named(ref)} could not be read]")
            finally:
                self._quota.settle(held, intake.fetched - before)
        return intake

    async def _one(
        self,
        ref: MediaRef,
        source: FileSource | None,
        base: Label,
        own_words: bool,
        intake: Intake,
        cap: int,
        held: Held,
        key: Kept | None,
        kept: tuple[str, bytes] | None,
        share: Share,
    ) -> None:
        """`cap`: the most the download may be (the file cap, or what a guest's quota holds);
        `held`: its reservation in the sender's quota (settled once it came, so the text copies
        written after it count in what is left); `kept`: the copy already saved of this file
        (`key`), used instead of a download."""
        what = _WHAT[ref.kind]
        if kept is None and ref.size is not None and ref.size > self._max_bytes:
            raise FileTooLarge(ref.size, self._max_bytes)  # before any download
        listens = ref.kind in (MediaKind.VOICE, MediaKind.AUDIO)
        if listens and self._transcriber is None:
            # how to set it up is for the owner: a guest cannot edit Steward's .env (R106)
            intake.problems.append(NOT_CONFIGURED if held.guest is None else NOT_HERE)
            intake.unused(f"[{what}: not transcribed, no speech-to-text configured]")
            return
        if kept is not None:
            saved, raw = kept
        else:
            if source is None:
                raise FileUnavailable("this channel cannot download files")
            raw = await source.fetch_file(ref, cap)
            intake.fetched += len(raw)  # before the save: a failed save still took the download
            self._quota.settle(held, len(raw))
            saved = await self._save(ref, raw)
            if key is not None:
                await self._inbox.remember(key, saved, raw)
        own_voice = ref.kind is MediaKind.VOICE and own_words  # their words, as the message is
        intake.files.append(MessageFile(saved, own_voice))
        came = _Came(ref, raw, saved, base, key, kept is not None, held.guest)
        if ref.kind is MediaKind.PHOTO:
            await self._photo(came, intake, share)
        elif ref.kind is MediaKind.DOCUMENT:
            await self._document(came, intake, share)
        else:
            await self._listen(came, own_words, intake, share)

    async def _photo(self, came: _Came, intake: Intake, share: Share) -> None:
        ref, raw, saved, what = came.ref, came.raw, came.saved, _WHAT[came.ref.kind]
        if not share.image():
            intake.problems.append(
                f"What is left of today's allowance for our conversations is too little for me "
                f"to look at that {what}; send it again tomorrow."
            )
            intake.unused(f"[{what} saved {_saved(ref, saved)}; not shown: the day's allowance]")
            return
        try:
            image = await prepare_image(raw)
        except ImageError as exc:
            intake.problems.append(f"I could not open that picture: {exc}. It is in {saved}.")
            intake.unused(f"[{what} saved {_saved(ref, saved)}; not an image I can read]")
            return
        # R227: an animation is sent as its first frame; the model is told, or it answers
        # about the whole of it from one still
        moving = " (an animation: only its first frame is shown)" if image.animated else ""
        intake.attachments.append(
            Attachment(
                AttachmentKind.IMAGE,
                saved + moving,
                came.outside,
                media_type=image.media_type,
                data=base64.b64encode(image.data).decode(),
                saved_as=saved,
            )
        )
        shown = "; an animation, its first frame shown" if image.animated else ""
        intake.notes.append(f"[{what} saved {_saved(ref, saved)}{shown}]")

    async def _document(self, came: _Came, intake: Intake, share: Share) -> None:
        ref, raw, saved, guest = came.ref, came.raw, came.saved, came.guest
        kind = document_type(ref.name, ref.mime_type)
        if kind is None:
            intake.problems.append(
                f"I can read {READABLE} files, not this one ({_shown_type(ref.mime_type)}); "
                f"I saved it as {saved} for you."
            )
            intake.unused(f"[file saved {_saved(ref, saved)}; not a kind I read]")
            return
        try:
            extracted = await extract_text(raw, kind, seconds=self.pdf_seconds, guest=guest)
        except DocumentError as exc:
            intake.problems.append(
                f"I could not read {_safe_name(ref.name) or 'that file'}: {exc}. "
                f"The file is saved as {saved}."
            )
            intake.unused(f"[file saved {_saved(ref, saved)}; unreadable]")
            return
        # the file itself is its text only when it reads back so: a UTF-16 file read later as
        # UTF-8 was junk, an HTML file's hidden text came back
        plain = kind != "pdf" and await asyncio.to_thread(_reads_as, raw, extracted.text)
        named = _safe_name(ref.name) or ("that PDF" if kind == "pdf" else "that file")
        copy = (
            TextCopy(saved)
            if plain
            else await self._copies.text(
                saved, extracted.text, key=came.key, guest=guest, named=named
            )
        )
        if copy.problem:
            intake.problems.append(copy.problem)
        if copy.path is not None and copy.path != saved:
            intake.files.append(MessageFile(copy.path, False))
        if extracted.pages and extracted.pages_read is not None:
            intake.problems.append(
                f"I read the first {extracted.pages_read} of the {extracted.pages} pages of "
                f"{named} (the most I read of one PDF); the rest "
                f"is not in {copy.path or 'what I saved'}."
            )
        text = self._given(named, extracted.text, extracted.pages, copy, share, intake)
        pages = f", {extracted.pages} pages" if extracted.pages else ""
        intake.attachments.append(
            Attachment(
                AttachmentKind.DOCUMENT,
                f"{saved} ({kind}{pages}; its text {copy.where()})",
                came.outside,
                text=text,
                saved_as=copy.path if copy.whole else None,
                truncated=len(text) < len(extracted.text),
            )
        )
        text_at = _text_where(ref, copy, saved)
        intake.notes.append(f"[file saved {_saved(ref, saved)}; text {text_at}]")

    def _given(
        self,
        named: str,
        text: str,
        pages: int | None,
        copy: TextCopy,
        share: Share,
        intake: Intake,
    ) -> str:
        """What the model is given of a file's text: at most `STEWARD_DOCUMENT_MAX_CHARS`, and
        what the message's `share` has room for; the sender told of a cut (R171, R197)."""
        given, cut = share.take(text[: self._max_chars])
        if len(given) < len(text):
            intake.problems.append(_cut_note(named, given, text, pages, copy, cut, share.limit))
        return given

    async def _listen(self, came: _Came, own_words: bool, intake: Intake, share: Share) -> None:
        ref, saved, what = came.ref, came.saved, _WHAT[came.ref.kind]
        heard = await self._heard(came, intake)
        if heard is None:
            return
        text, transcript = heard
        if transcript.problem:
            intake.problems.append(transcript.problem)
        if transcript.path is not None:
            own_voice = ref.kind is MediaKind.VOICE and own_words
            intake.files.append(MessageFile(transcript.path, own_voice))
        if ref.kind is MediaKind.VOICE and own_words:
            intake.spoken = (intake.spoken + "\n\n" + text).strip()
            # the transcript is the stored message itself: the note stays as it was
            intake.notes.append(f"[voice note, saved {_saved(ref, saved)}]")
            return
        # an hours-long recording: cut as a document
        given = self._given(f"That {what}'s transcript", text, None, transcript, share, intake)
        intake.attachments.append(
            Attachment(
                AttachmentKind.TRANSCRIPT,
                f"{what} {saved} (its transcript {transcript.where()})",
                came.outside,
                text=given,
                saved_as=transcript.path if transcript.whole else None,
                truncated=len(given) < len(text),
            )
        )
        text_at = _text_where(ref, transcript, saved)
        intake.notes.append(f"[{what} saved {_saved(ref, saved)}; transcript {text_at}]")

    async def _heard(self, came: _Came, intake: Intake) -> tuple[str, TextCopy] | None:
        """A recording's transcript and where it is kept: for a recording kept already, the
        transcript kept with it (R197: each reply to one had sent all of it to speech-to-text
        again, outside the quota), when it is whole or this sender's quota cut it (R200: the
        owner's reply had the one a guest's quota cut); else the speech-to-text server's, then
        saved. None: the sender was told why there is none."""
        ref, saved, what = came.ref, came.saved, _WHAT[came.ref.kind]
        kept = await self._copies.transcript(came.key, came.guest) if came.reused else None
        if kept is not None:
            return kept
        if came.reused and not self._quota.take(came.guest, len(came.raw)):
            # no transcript to reuse (not saved, changed since, or another's quota cut it):
            # listening again counts
            intake.problems.append(
                f"Listening to that {what} again would go past the "
                f"{mb(self._quota.daily_bytes)} of files a day I take for anyone but my owner; "
                "try again tomorrow."
            )
            intake.unused(f"[{what} not transcribed: the day's files quota]")
            return None
        assert self._transcriber is not None
        try:
            text = await self._transcriber.transcribe(
                came.raw,
                filename=_safe_name(ref.name) or f"audio{_DEFAULT_SUFFIX[ref.kind]}",
                mime_type=ref.mime_type,
            )
        except TranscriptionError as exc:
            intake.problems.append(
                f"I could not transcribe that {what}: {exc}. It is saved as {saved}."
            )
            intake.unused(f"[{what} saved {_saved(ref, saved)}; not transcribed]")
            return None
        if not text:
            intake.problems.append(f"I heard no words in that {what}.")
            intake.unused(f"[{what} saved {_saved(ref, saved)}; no words heard]")
            return None
        # kept, so a later turn can read it again (only the recording had been)
        copy = await self._copies.text(
            saved, text, key=came.key, guest=came.guest, named=f"that {what}"
        )
        return text, copy

    # -- the workspace copy -----------------------------------------------------------------

    async def _save(self, ref: MediaRef, raw: bytes) -> str:
        stem, suffix = _name_parts(ref.name)
        if not stem:  # no name, or none of it left ("📄.pdf", ".pdf"): its suffix is kept
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            stem = f"{_WHAT[ref.kind].replace(' ', '-')}-{stamp}"
            suffix = suffix or _DEFAULT_SUFFIX[ref.kind]
        return await self._copies.write(stem + suffix, raw, paired=ref.kind in _WITH_TEXT)


def _cut_note(
    named: str,
    given: str,
    whole: str,
    pages: int | None,
    copy: TextCopy,
    cut: Cut = Cut.NONE,
    limit: int = 0,
) -> str:
    """What the sender is told of a document longer than the model is given (R171: a 120-page
    PDF was summarised from its first 60 pages, and nobody was told), and why, when it is not
    the cap of one file (R197: the cap of one message's files, or a guest's day)."""
    marks = re.findall(r"^\[page (\d+)\]$", given, re.MULTILINE)
    upto = f", into page {marks[-1]} of {pages}" if marks and pages else ""
    rest = "the rest" if given else "it"
    rest = f"; all of it is in {copy.path}, for a question about {rest}" if copy.whole else ""
    part = f"its first {len(given):,} of {len(whole):,} characters{upto}"
    if cut is Cut.MESSAGE:
        return (
            f"{named}: I give the model {part if given else 'none of its text'}, as the files "
            f"of one message get {limit:,} characters together{rest}. Send it on its own "
            "to have more of it read."
        )
    if cut is Cut.ALLOWANCE:
        return (
            f"{named}: I give the model {part if given else 'none of its text'}, all that is "
            f"left of today's allowance for our conversations{rest}."
        )
    return f"{named} is long: I give the model {part}{rest}."


def _reads_as(raw: bytes, text: str) -> bool:
    """Whether `raw`, read as UTF-8 (as tools read a file), is `text`."""
    try:
        return raw.decode("utf-8-sig") == text
    except UnicodeDecodeError:
        return False
