"""The part of a Telegram update Steward reads, as typed values; everything else is ignored.

Plain frozen dataclasses read by hand from the Bot API's JSON (`from_raw`): a few dozen pydantic
models would cost more at start-up than the whole client, and this is all Steward looks at.
Unknown fields are ignored; a field Steward reads that has the wrong JSON type raises
`MalformedUpdate` (the channel skips that update, with a log line). Nothing is coerced: an id
is an int, a flag a bool, or the update is malformed. Every trust-relevant field is kept as
Telegram sends it: the sender (`from`, its `is_bot`), `sender_chat`, `forward_origin`,
`via_bot`, `external_reply`, `quote`, the chat's type, the thread ids, and a callback's presser
and message.

(Some 435 lines: each type is short, and what a message carries that Steward does not open,
service messages apart, is read from the same raw update as the rest.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "CallbackQuery",
    "Chat",
    "ExternalReply",
    "File",
    "FileInfo",
    "MalformedUpdate",
    "Message",
    "MessageEntity",
    "MessageOrigin",
    "PhotoSize",
    "TextQuote",
    "Update",
    "User",
]

T = TypeVar("T")
Raw = Mapping[str, Any]


class MalformedUpdate(ValueError):
    """A field Steward reads is missing or of the wrong type."""


def _get(raw: Raw, key: str, kind: type[T], default: T | None = None) -> T | None:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedUpdate(f"{key!r} is not {kind.__name__}")
    return value


def _need(raw: Raw, key: str, kind: type[T]) -> T:
    value = _get(raw, key, kind)
    if value is None:
        raise MalformedUpdate(f"{key!r} is missing")
    return value


def _one(raw: Raw, key: str, read: Callable[[Raw], T]) -> T | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MalformedUpdate(f"{key!r} is not an object")
    return read(value)


def _many(raw: Raw, key: str, read: Callable[[Raw], T]) -> tuple[T, ...]:
    value = raw.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise MalformedUpdate(f"{key!r} is not a list of objects")
    return tuple(read(item) for item in value)


def _object(raw: Any) -> Raw:
    if not isinstance(raw, Mapping):
        raise MalformedUpdate("not an object")
    return raw


@dataclass(frozen=True, slots=True)
class User:
    id: int
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}" if self.last_name else self.first_name

    @classmethod
    def from_raw(cls, raw: Raw) -> User:
        return cls(
            id=_need(raw, "id", int),
            is_bot=_need(raw, "is_bot", bool),
            first_name=_get(raw, "first_name", str, ""),
            last_name=_get(raw, "last_name", str),
            username=_get(raw, "username", str),
        )


@dataclass(frozen=True, slots=True)
class Chat:
    id: int
    type: str
    """private, group, supergroup or channel."""
    title: str | None = None

    @classmethod
    def from_raw(cls, raw: Raw) -> Chat:
        return cls(_need(raw, "id", int), _need(raw, "type", str), _get(raw, "title", str))


@dataclass(frozen=True, slots=True)
class PhotoSize:
    file_id: str
    file_unique_id: str
    width: int
    height: int
    file_size: int | None = None

    @classmethod
    def from_raw(cls, raw: Raw) -> PhotoSize:
        return cls(
            _need(raw, "file_id", str),
            _need(raw, "file_unique_id", str),
            _need(raw, "width", int),
            _need(raw, "height", int),
            _get(raw, "file_size", int),
        )


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A document, voice note or audio file: what downloading and naming it needs."""

    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None

    @classmethod
    def from_raw(cls, raw: Raw) -> FileInfo:
        return cls(
            _need(raw, "file_id", str),
            _need(raw, "file_unique_id", str),
            _get(raw, "file_name", str),
            _get(raw, "mime_type", str),
            _get(raw, "file_size", int),
        )


@dataclass(frozen=True, slots=True)
class MessageOrigin:
    """Who wrote a forwarded message: `user` (sender_user), `hidden_user` (a name only),
    `chat` (sender_chat) or `channel` (chat and the post's message_id)."""

    type: str
    sender_user: User | None = None
    sender_user_name: str | None = None
    sender_chat: Chat | None = None
    chat: Chat | None = None
    message_id: int | None = None

    @classmethod
    def from_raw(cls, raw: Raw) -> MessageOrigin:
        return cls(
            type=_need(raw, "type", str),
            sender_user=_one(raw, "sender_user", User.from_raw),
            sender_user_name=_get(raw, "sender_user_name", str),
            sender_chat=_one(raw, "sender_chat", Chat.from_raw),
            chat=_one(raw, "chat", Chat.from_raw),
            message_id=_get(raw, "message_id", int),
        )


@dataclass(frozen=True, slots=True)
class MessageEntity:
    type: str
    offset: int
    length: int
    user: User | None = None
    """The user a `text_mention` names."""
    url: str | None = None
    """Where a `text_link` leads (its text shows a label)."""

    @classmethod
    def from_raw(cls, raw: Raw) -> MessageEntity:
        return cls(
            _need(raw, "type", str),
            _need(raw, "offset", int),
            _need(raw, "length", int),
            _one(raw, "user", User.from_raw),
            _get(raw, "url", str),
        )


@dataclass(frozen=True, slots=True)
class TextQuote:
    text: str

    @classmethod
    def from_raw(cls, raw: Raw) -> TextQuote:
        return cls(_need(raw, "text", str))


@dataclass(frozen=True, slots=True)
class ExternalReply:
    """A reply to a message in another chat (or a thread): where that message came from, and
    its files, read as a message's are (R257: a photo replied to from another chat was lost)."""

    origin: MessageOrigin
    chat: Chat | None = None
    message_id: int | None = None
    photo: tuple[PhotoSize, ...] = ()
    document: FileInfo | None = None
    voice: FileInfo | None = None
    audio: FileInfo | None = None
    unread: str | None = None

    @classmethod
    def from_raw(cls, raw: Raw) -> ExternalReply:
        origin = _one(raw, "origin", MessageOrigin.from_raw)
        if origin is None:
            raise MalformedUpdate("'origin' is missing")
        return cls(
            origin,
            _one(raw, "chat", Chat.from_raw),
            _get(raw, "message_id", int),
            _many(raw, "photo", PhotoSize.from_raw),
            None if "animation" in raw else _one(raw, "document", FileInfo.from_raw),
            _one(raw, "voice", FileInfo.from_raw),
            _one(raw, "audio", FileInfo.from_raw),
            next((name for key, name in _UNREAD.items() if key in raw), None),
        )


@dataclass(frozen=True, slots=True)
class Message:
    message_id: int
    chat: Chat
    date: int = 0
    """0 for a message the bot can no longer see (an `InaccessibleMessage` under a button)."""
    from_user: User | None = None
    sender_chat: Chat | None = None
    text: str | None = None
    caption: str | None = None
    entities: tuple[MessageEntity, ...] = ()
    caption_entities: tuple[MessageEntity, ...] = ()
    photo: tuple[PhotoSize, ...] = ()
    document: FileInfo | None = None
    voice: FileInfo | None = None
    audio: FileInfo | None = None
    forward_origin: MessageOrigin | None = None
    forward_from_message_id: int | None = None
    is_automatic_forward: bool = False
    via_bot: User | None = None
    external_reply: ExternalReply | None = None
    quote: TextQuote | None = None
    reply_to_message: Message | None = None
    is_topic_message: bool = False
    message_thread_id: int | None = None
    unread: str | None = None
    """A kind of content Steward does not open (video, sticker, location…), named."""
    media_group_id: str | None = None
    """The album a photo or file belongs to (its parts come as messages of their own)."""

    @classmethod
    def from_raw(cls, raw: Raw) -> Message:
        raw = _object(raw)
        chat = _one(raw, "chat", Chat.from_raw)
        if chat is None:
            raise MalformedUpdate("'chat' is missing")
        return cls(
            message_id=_need(raw, "message_id", int),
            chat=chat,
            date=_get(raw, "date", int, 0),
            from_user=_one(raw, "from", User.from_raw),
            sender_chat=_one(raw, "sender_chat", Chat.from_raw),
            text=_get(raw, "text", str),
            caption=_get(raw, "caption", str),
            entities=_many(raw, "entities", MessageEntity.from_raw),
            caption_entities=_many(raw, "caption_entities", MessageEntity.from_raw),
            photo=_many(raw, "photo", PhotoSize.from_raw),
            # an animation comes with a `document` too (the Bot API's older form of it): the
            # same video, not a file to fetch and read (R148: each GIF was downloaded, saved
            # and answered as a file Steward cannot read)
            document=None if "animation" in raw else _one(raw, "document", FileInfo.from_raw),
            voice=_one(raw, "voice", FileInfo.from_raw),
            audio=_one(raw, "audio", FileInfo.from_raw),
            forward_origin=_one(raw, "forward_origin", MessageOrigin.from_raw)
            or _legacy_origin(raw),
            forward_from_message_id=_get(raw, "forward_from_message_id", int),
            is_automatic_forward=_get(raw, "is_automatic_forward", bool, False),
            via_bot=_one(raw, "via_bot", User.from_raw),
            external_reply=_one(raw, "external_reply", ExternalReply.from_raw),
            quote=_one(raw, "quote", TextQuote.from_raw),
            reply_to_message=_one(raw, "reply_to_message", Message.from_raw),
            is_topic_message=_get(raw, "is_topic_message", bool, False),
            message_thread_id=_get(raw, "message_thread_id", int),
            unread=_unread(raw),
            media_group_id=_get(raw, "media_group_id", str),
        )


def _legacy_origin(raw: Raw) -> MessageOrigin | None:
    """A forward as Bot API servers before 7.0 describe it (`forward_from`, `forward_date`…:
    an outdated local telegram-bot-api still sends these alone). Unread, a forward of someone
    else's "/approve k3f9" was the owner's own words, and a command."""
    if not any(
        key in raw
        for key in ("forward_date", "forward_from", "forward_from_chat", "forward_sender_name")
    ):
        return None
    user = _one(raw, "forward_from", User.from_raw)
    chat = _one(raw, "forward_from_chat", Chat.from_raw)
    return MessageOrigin(
        type="user" if user else "channel" if chat else "hidden_user",
        sender_user=user,
        sender_user_name=_get(raw, "forward_sender_name", str),
        chat=chat,
    )


_UNREAD = {
    "video": "a video",
    "video_note": "a video message",
    "animation": "an animation",
    "sticker": "a sticker",
    "location": "a location",
    "venue": "a place",
    "contact": "a contact",
    "poll": "a poll",
    "dice": "a dice roll",
    "story": "a story",
    "paid_media": "paid media",
    "game": "a game",
    "checklist": "a checklist",
    "invoice": "an invoice",
    "giveaway": "a giveaway",
    "giveaway_winners": "a giveaway's winners",
}
"""What a message may carry that Steward does not open: it is named, so the message is not
dropped unanswered (a caption alone read as if nothing came with it)."""
_READ = ("text", "photo", "document", "voice", "audio")
_SERVICE = frozenset(
    """
    new_chat_members left_chat_member new_chat_title new_chat_photo delete_chat_photo
    group_chat_created supergroup_chat_created channel_chat_created
    message_auto_delete_timer_changed migrate_to_chat_id migrate_from_chat_id pinned_message
    successful_payment refunded_payment users_shared chat_shared gift unique_gift
    gift_upgrade_sent connected_website write_access_allowed passport_data
    proximity_alert_triggered boost_added chat_background_set checklist_tasks_done
    checklist_tasks_added direct_message_price_changed paid_message_price_changed
    forum_topic_created forum_topic_edited forum_topic_closed forum_topic_reopened
    general_forum_topic_hidden general_forum_topic_unhidden giveaway_created
    giveaway_completed suggested_post_approved suggested_post_approval_failed
    suggested_post_declined suggested_post_paid suggested_post_refunded video_chat_scheduled
    video_chat_started video_chat_ended video_chat_participants_invited web_app_data
    """.split()  # noqa: SIM905
)
"""Telegram's service messages (a pin, a topic opened, a member joining…): news of the chat,
not something a person said, so not answered."""
_UNKNOWN = "a kind of message I do not know"


def _unread(raw: Raw) -> str | None:
    """What Steward cannot open of a message, named. R227: a message with neither text nor a
    file of a kind not listed (a forwarded story) was dropped unanswered; any such message
    that is no service message is named, so a kind Telegram adds later is not lost either."""
    named = next((name for key, name in _UNREAD.items() if key in raw), None)
    if named is not None or any(key in raw for key in _READ):
        return named
    return None if _SERVICE.intersection(raw) else _UNKNOWN


@dataclass(frozen=True, slots=True)
class CallbackQuery:
    """A press on an inline button: who pressed (`from_user`), on which message, its data."""

    id: str
    from_user: User
    message: Message | None = None
    data: str | None = None

    @classmethod
    def from_raw(cls, raw: Raw) -> CallbackQuery:
        presser = _one(raw, "from", User.from_raw)
        if presser is None:
            raise MalformedUpdate("'from' is missing")
        return cls(
            _need(raw, "id", str),
            presser,
            _one(raw, "message", Message.from_raw),
            _get(raw, "data", str),
        )


@dataclass(frozen=True, slots=True)
class Update:
    update_id: int
    message: Message | None = None
    callback_query: CallbackQuery | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> Update:
        raw = _object(raw)
        return cls(
            _need(raw, "update_id", int),
            _one(raw, "message", Message.from_raw),
            _one(raw, "callback_query", CallbackQuery.from_raw),
        )


@dataclass(frozen=True, slots=True)
class File:
    """What getFile answers: the path to download the file from (valid for an hour)."""

    file_id: str
    file_size: int | None = None
    file_path: str | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> File:
        raw = _object(raw)
        return cls(
            _need(raw, "file_id", str), _get(raw, "file_size", int), _get(raw, "file_path", str)
        )
