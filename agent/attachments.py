"""The typed values photos, files, voice notes and replies travel in (issue 17).

A channel describes what a message carries (`MediaRef`: a file it can fetch, with the size the
platform announced) and which message it answers (`ReplyRef`); it downloads nothing itself. The
core fetches, converts and labels the files (`agent/media/`) into `Attachment`s, and finds the
answered message in the log (`agent/replies.py`) as an `Answered`, both handed to the turn as
data next to their labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from memory.labels import TRUSTED, Label
from memory.people import Identity

__all__ = [
    "Answered",
    "Attachment",
    "AttachmentKind",
    "FileTooLarge",
    "FileUnavailable",
    "MediaKind",
    "MediaRef",
    "ReplyRef",
    "ThreadPost",
    "plain_media_type",
]

_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,40}/[A-Za-z0-9][A-Za-z0-9.+-]{0,80}")


def plain_media_type(said: str) -> bool:
    """Whether a MIME type as a sender's client wrote it is a plain `type/subtype`: nothing
    else (parameters, line breaks, Markdown) is repeated in Steward's words or in a header."""
    return bool(_MEDIA_TYPE.fullmatch(said))


class MediaKind(StrEnum):
    PHOTO = "photo"
    """A picture (Telegram photo, or an image sent as a file)."""
    DOCUMENT = "document"
    VOICE = "voice"
    """A voice note recorded in the chat app."""
    AUDIO = "audio"
    """An audio file (music, a recording someone sent)."""


@dataclass(frozen=True)
class MediaRef:
    """A file a message carries, as the platform describes it; `file_id` is what the channel
    needs to fetch it (Telegram's file_id, Slack's url_private_download)."""

    channel: str
    kind: MediaKind
    file_id: str
    name: str = ""
    mime_type: str = ""
    size: int | None = None
    """The size the platform announced (None: unknown; the download is capped anyway)."""
    sender_named: bool = True
    """Whether `name` is one the sender (or whoever made the file) chose: such a name is
    outside words, never part of the sender's own message (R171). False for names a channel
    makes up (Telegram's `photo-<id>.jpg`, `voice-<id>.ogg`)."""


@dataclass(frozen=True)
class ThreadPost:
    """An earlier message of the thread a message was written in (a Slack mention in a thread
    Steward does not follow), as the platform gave it.

    `by_bot`: Steward's own (`message_id` is the id its sent copy is stored under). Otherwise
    `author` names the writer as a source (`slack:user:U1`, an app's `slack:bot:B1`),
    `received_as` is the id an incoming copy would be stored under, and `sender` the person
    the platform says wrote it (None for an app's post): the owner's own words stay theirs.
    """

    message_id: str
    text: str
    by_bot: bool = False
    author: str | None = None
    received_as: str | None = None
    sender: Identity | None = None
    root: bool = False
    """The message that started the thread."""


@dataclass(frozen=True)
class ReplyRef:
    """The message an incoming message answers, as the platform points at it.

    `chat_id`/`message_id` name it on the platform (for a channel post: the channel and the
    post's id), `text` is what the platform showed of it (a quote, the replied message's text),
    `by_bot` whether the platform says Steward wrote it. `comment` marks a comment under a
    channel post in the channel's linked discussion group.

    A reply to someone's message in the same chat (not Steward's) names its `author` (a source:
    `telegram:user:42`, or who wrote it first when it was forwarded), the id an incoming copy
    would have been stored under (`received_as`), and the files it carries (`media`).
    """

    channel: str
    chat_id: str
    message_id: str
    text: str | None = None
    by_bot: bool = False
    comment: bool = False
    author: str | None = None
    received_as: str | None = None
    media: tuple[MediaRef, ...] = ()
    thread: tuple[ThreadPost, ...] = ()
    """A message in a thread Steward does not follow: the thread's earlier messages, oldest
    first (`message_id` is then the thread's root)."""


class AttachmentKind(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"
    TRANSCRIPT = "transcript"


@dataclass(frozen=True)
class Attachment:
    """A file made ready for the model: an image (base64, within the model's limits) or text
    (a document's, a recording's transcript), with its label and where it was saved."""

    kind: AttachmentKind
    name: str
    label: Label = TRUSTED
    text: str = ""
    media_type: str = ""
    data: str = ""
    """Base64 image data (images only)."""
    saved_as: str | None = None
    """The path in the workspace (`inbox/…`), for tools to work on."""
    truncated: bool = False


@dataclass(frozen=True)
class Answered:
    """The message a reply answers, found in the log (or only as the platform quoted it)."""

    text: str
    label: Label
    message_id: int | None = None
    """Its id in the message log; None when only the platform's quote is known."""
    where: str = ""
    """A short description for the model ("your post in the channel")."""
    thread: tuple[Answered, ...] = ()
    """For a thread: its earlier messages, each with its own label (`label` joins them)."""


class FileTooLarge(Exception):
    """A file over the size cap; raised before (or while) downloading, never after."""

    def __init__(self, size: int | None, cap: int) -> None:
        super().__init__(f"{size} bytes over the {cap}-byte cap")
        self.size = size
        self.cap = cap


class FileUnavailable(Exception):
    """The platform would not give the file; the message says why, for the user."""
