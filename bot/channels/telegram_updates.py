"""What a Telegram update says, as Steward's own values: pure translation, no I/O.

A text message becomes an `IncomingMessage` (in groups only when it is meant for the bot: a
command for it, a mention, a reply to it); a press on an approval button becomes a typed `Press`
from the presser, with the id of the message pressed, and never text to parse again.
"""

from __future__ import annotations

import re

from aiogram.types import CallbackQuery, Message
from pydantic import ValidationError

from agent.types import Address, ChatKind, IncomingMessage
from bot.channels.cards import TELEGRAM_CHOICES, ApprovalButton
from memory.people import Identity

__all__ = ["addressed_text", "forward_origin", "message_in", "press_in", "pressed_button"]

_APPROVAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def message_in(message: Message, username: str, bot_id: int) -> IncomingMessage | None:
    """A text (or captioned) message from a person, or None when Steward should not see it."""
    sender = message.from_user
    if sender is None or sender.is_bot:
        return None
    text = message.text if message.text is not None else message.caption
    if not text:
        return None
    chat = message.chat
    if chat.type == "private":
        kind = ChatKind.PRIVATE
    elif chat.type in ("group", "supergroup"):
        kind = ChatKind.GROUP
        addressed = addressed_text(message, text, username, bot_id)
        if addressed is None:
            return None
        text = addressed
    else:
        return None
    thread = (
        str(message.message_thread_id)
        if message.is_topic_message and message.message_thread_id
        else None
    )
    replied = message.reply_to_message
    return IncomingMessage(
        sender=Identity("telegram", str(sender.id)),
        address=Address("telegram", str(chat.id), thread),
        text=text,
        platform_message_id=f"{chat.id}:{message.message_id}",
        sender_name=sender.full_name,
        chat_kind=kind,
        reply_to_text=(replied.text or replied.caption) if replied else None,
        forwarded_from=forward_origin(message),
    )


def addressed_text(message: Message, text: str, username: str, bot_id: int) -> str | None:
    """In a group: the text meant for Steward (mention removed), or None when it is not."""
    if text.startswith("/"):
        head = text.split(maxsplit=1)[0]
        _, _, target = head.partition("@")
        return text if not target or target.lower() == username else None
    mention = re.compile(rf"(?<!\w)@{re.escape(username)}\b[,:]?", re.I)
    if username and mention.search(text):
        stripped = re.sub(r"[ \t]{2,}", " ", mention.sub("", text)).strip(" ,:\n")
        return stripped or "hello"
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot_id:
        return text
    for entity in message.entities or []:
        if entity.type == "text_mention" and entity.user and entity.user.id == bot_id:
            return text
    return None


def pressed_button(query: CallbackQuery) -> ApprovalButton | None:
    """The approval button a callback names, or None for data none of our buttons carries
    (callback data is client-controlled)."""
    try:
        button = ApprovalButton.unpack(query.data or "")
    except (ValueError, TypeError, ValidationError):
        return None
    if button.d not in TELEGRAM_CHOICES or not _APPROVAL_ID.match(button.id):
        return None
    return button


def press_in(query: CallbackQuery, button: ApprovalButton) -> IncomingMessage | None:
    """The press as a message from the presser, or None when the pressed message is gone."""
    message = query.message
    if message is None:
        return None
    chat = message.chat
    thread: str | None = None
    if isinstance(message, Message) and message.is_topic_message and message.message_thread_id:
        thread = str(message.message_thread_id)
    press = button.press(str(message.message_id))
    return IncomingMessage(
        sender=Identity("telegram", str(query.from_user.id)),
        address=Address("telegram", str(chat.id), thread),
        text=press.text,
        platform_message_id=f"cb:{query.id}",
        sender_name=query.from_user.full_name,
        chat_kind=ChatKind.PRIVATE if chat.type == "private" else ChatKind.GROUP,
        press=press,
    )


def forward_origin(message: Message) -> str | None:
    """Who wrote a forwarded message, as a source name; None for the sender's own words."""
    origin = message.forward_origin
    if origin is None:
        return None
    user = getattr(origin, "sender_user", None)
    if user is not None:
        return f"telegram:user:{user.id}"
    chat = getattr(origin, "sender_chat", None) or getattr(origin, "chat", None)
    if chat is not None:
        return f"telegram:chat:{chat.id}"
    return "telegram:hidden user"
