"""What a Telegram update says, as Steward's own values: pure translation, no I/O.

A text message becomes an `IncomingMessage` (in groups only when it is meant for the bot: a
command for it, a mention, a reply to it); a press on an approval button becomes a typed `Press`
from the presser, with the id of the message pressed, and never text to parse again; a group
upgraded to a supergroup, the old and the new id (`moved_chat`).

(Some 490 lines: a message, the message it replies to or quotes, its files and links and who
it addresses are read together, from the same few fields.)
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from agent.attachments import MediaKind, MediaRef, ReplyRef
from agent.cards import plain_name
from agent.forwarded import FromElsewhere
from agent.replies import Quoting
from agent.types import Address, ChatKind, IncomingMessage
from bot.channels.cards import TELEGRAM_CHOICES
from bot.channels.telegram_cards import ApprovalButton
from bot.channels.telegram_types import (
    CallbackQuery,
    ExternalReply,
    Message,
    MessageEntity,
    MessageOrigin,
    Update,
)
from memory.people import Identity

__all__ = [
    "TELEGRAM_SERVICE",
    "addressed_text",
    "album_in",
    "forward_heading",
    "forward_origin",
    "links_in",
    "media_in",
    "message_in",
    "moved_chat",
    "press_in",
    "pressed_button",
    "replying_to",
]

_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@(\w+))?(?=\s|$)")
"""A bot command as Telegram marks one: a name, perhaps the bot's after "@", then a space."""
TELEGRAM_SERVICE = 777000
"""The sender of a channel post copied into its discussion group (`is_bot` false): not a
person; let in, every linked channel was one guest (R185)."""
OWN_FORWARD = "[a message of mine they forwarded; its text is not shown]"
"""Steward's own message forwarded back to it: it may be a card, with its approval id (R257)."""
_APPROVAL_ID = re.compile(r"^[a-z0-9]{1,32}$")
"""An approval id exactly as agent.approvals makes them (lowercase): another spelling on a
button is not data Steward sent, and decides nothing."""


def message_in(message: Message, username: str, bot_id: int) -> IncomingMessage | None:
    """A message from a person (text, a caption, files), or None when Steward should not see
    it. In a group, a comment under a channel post that is not addressed to Steward comes
    `unaddressed` (the router follows it only under Steward's own posts)."""
    sender = message.from_user
    if sender is None or sender.is_bot or sender.id == TELEGRAM_SERVICE or message.sender_chat:
        return None  # a bot, or a chat speaking (sender_chat), is not a person (R185)
    own = _by_steward(message.forward_origin, bot_id)
    if own:  # its files are kept, as a forward's
        text, links = OWN_FORWARD, []
    elif message.text is not None:
        text, links = message.text, links_in(message.text, message.entities)
    else:
        text = message.caption or ""
        links = links_in(text, message.caption_entities)
    media = media_in(message)
    if message.unread is not None:  # said, so the message is answered, not lost
        note = f"[{message.unread}, which I cannot open]"
        text = f"{text}\n{note}" if text else note
    if not text and not media:
        return None
    chat = message.chat
    unaddressed = False
    if chat.type == "private":
        kind = ChatKind.PRIVATE
    elif chat.type in ("group", "supergroup"):
        kind = ChatKind.GROUP
        addressed = addressed_text(message, text, username, bot_id)
        if addressed is None:
            if _comment_on(message) is None:
                return None
            unaddressed = True
        else:
            text = addressed
    else:
        return None
    if links:  # after the addressing: an address is never a mention
        text = "\n".join([text, *links]) if text else "\n".join(links)
    thread = (
        str(message.message_thread_id)
        if message.is_topic_message and message.message_thread_id
        else None
    )
    if text and not own and (heading := forward_heading(message)) is not None:
        text = f"{heading}:\n{text}"
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
        media=media,
        replying_to=replying_to(message, bot_id),
        unaddressed=unaddressed,
    )


def moved_chat(update: Update, raw: Any) -> tuple[str, str] | None:
    """(old id, new id) of a group upgraded to a supergroup, as its service messages say:
    `migrate_to_chat_id` in the old group, `migrate_from_chat_id` in the new supergroup (R201:
    the new group had lost its history). Read from the update as Telegram sent it; a group's
    id is negative, and only a basic group moves, only into a supergroup."""
    message = update.message
    body = raw.get("message") if isinstance(raw, dict) else None
    if message is None or not isinstance(body, dict):
        return None
    to, since = body.get("migrate_to_chat_id"), body.get("migrate_from_chat_id")
    here = message.chat.id
    if message.chat.type == "group" and _group_id(to) and here < 0:
        return str(here), str(to)
    if message.chat.type == "supergroup" and _group_id(since) and here < 0:
        return str(since), str(here)
    return None


def _group_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value < 0


def album_in(parts: list[Message], username: str, bot_id: int) -> IncomingMessage | None:
    """An album's parts as one message: every caption, in the order the parts came (their
    links kept; in a group, a mention in any of them addresses the album: when the first is
    a command for another bot, the addressed part leads), every part's files and every note of
    what Steward cannot open; the first part's sender, reply and id."""
    incoming = message_in(_merged(parts), username, bot_id)
    if incoming is None and parts[0].chat.type != "private":
        addressed = [p for p in parts if message_in(p, username, bot_id) is not None]
        if addressed:
            lead = addressed[0]
            merged = _merged([lead, *[p for p in parts if p is not lead]])
            incoming = message_in(
                dataclasses.replace(merged, message_id=parts[0].message_id), username, bot_id
            )
    if incoming is None:
        return None
    media = tuple(ref for part in parts for ref in media_in(part))
    # parts whose authors differ (a forward or an inline bot's among one's own words, however
    # they were gathered) are all someone else's: never the first part's own (R153)
    outside = next(filter(None, map(forward_origin, parts)), None)
    if outside is not None and incoming.forwarded_from is None:
        return dataclasses.replace(incoming, media=media, forwarded_from=outside)
    return dataclasses.replace(incoming, media=media)


def _merged(parts: list[Message]) -> Message:
    """The parts as one message: the first's, with every caption (entities shifted along)."""
    captions: list[str] = []
    entities: list[MessageEntity] = []
    units = 0  # Telegram counts offsets in UTF-16 code units
    for part in parts:
        text = part.caption if part.caption is not None else part.text
        if not text:
            continue
        if captions:
            units += 1  # the line break between two captions
        own = part.caption_entities if part.caption is not None else part.entities
        entities += [dataclasses.replace(e, offset=e.offset + units) for e in own]
        captions.append(text)
        units += len(text.encode("utf-16-le", "surrogatepass")) // 2
    return dataclasses.replace(
        parts[0],
        text=None,
        caption="\n".join(captions) or None,
        caption_entities=tuple(entities),
        unread=", ".join(dict.fromkeys(p.unread for p in parts if p.unread)) or None,
    )


def _largest_photo(message: Message | ExternalReply) -> MediaRef | None:
    """The smallest size of a photo that still fills the model's 1568-px limit (else the
    largest): no point downloading more than the model looks at."""
    sizes = sorted(message.photo or [], key=lambda p: p.width * p.height)
    if not sizes:
        return None
    pick = next((p for p in sizes if max(p.width, p.height) >= 1568), sizes[-1])
    return MediaRef(
        "telegram",
        MediaKind.PHOTO,
        pick.file_id,
        f"photo-{pick.file_unique_id}.jpg",
        "image/jpeg",
        pick.file_size,
        sender_named=False,
    )


def media_in(message: Message | ExternalReply) -> tuple[MediaRef, ...]:
    """The files a message (or one replied to in another chat) carries: a photo, a document
    (an image sent as a file counts as a photo), a voice note, an audio file."""
    found: list[MediaRef] = []
    if (photo := _largest_photo(message)) is not None:
        found.append(photo)
    if (doc := message.document) is not None:
        mime = doc.mime_type or ""
        kind = (
            MediaKind.PHOTO
            if mime.startswith("image/")
            else MediaKind.AUDIO
            if mime.startswith("audio/")
            else MediaKind.DOCUMENT
        )
        name = doc.file_name or f"file-{doc.file_unique_id}"
        named = bool(doc.file_name)  # else Telegram's id, not the sender's word
        found.append(MediaRef("telegram", kind, doc.file_id, name, mime, doc.file_size, named))
    if (voice := message.voice) is not None:
        found.append(
            MediaRef(
                "telegram",
                MediaKind.VOICE,
                voice.file_id,
                f"voice-{voice.file_unique_id}.ogg",
                voice.mime_type or "audio/ogg",
                voice.file_size,
                sender_named=False,
            )
        )
    if (audio := message.audio) is not None:
        found.append(
            MediaRef(
                "telegram",
                MediaKind.AUDIO,
                audio.file_id,
                audio.file_name or f"audio-{audio.file_unique_id}.mp3",
                audio.mime_type or "audio/mpeg",
                audio.file_size,
                sender_named=bool(audio.file_name),
            )
        )
    return tuple(found)


def _comment_on(message: Message) -> ReplyRef | None:
    """A comment in a channel's discussion group: a reply to the copy of a channel post that
    Telegram forwarded into the group (`is_automatic_forward`), naming the post in the channel."""
    replied = message.reply_to_message
    if replied is None or not replied.is_automatic_forward:
        return None
    origin = replied.forward_origin
    post_chat = (origin.chat if origin else None) or replied.sender_chat
    post_id = (origin.message_id if origin else None) or replied.forward_from_message_id
    if post_chat is None or post_id is None:
        return None
    return ReplyRef(
        "telegram",
        str(post_chat.id),
        str(post_id),
        text=replied.text or replied.caption,
        comment=True,
    )


def replying_to(message: Message, bot_id: int) -> ReplyRef | None:
    """The message this one answers: a comment's channel post, a reply to a message in another
    chat (`external_reply`, e.g. the owner answering a channel post in the private chat), a
    reply to the bot's own message in this chat, or to someone's message in this chat (with
    its author and files: "what is in this photo?"). A part of it quoted comes as `Quoting`."""
    comment = _comment_on(message)
    if comment is not None:
        return comment
    quoted = message.quote.text if message.quote is not None else None
    if message.external_reply is not None:
        return _from_elsewhere(message.external_reply, quoted, bot_id)
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return _quoting(
            ReplyRef(
                "telegram",
                str(message.chat.id),
                str(replied.message_id),
                text=replied.text or replied.caption,
                by_bot=True,
            ),
            quoted,
        )
    if replied is None or (
        message.is_topic_message and replied.message_id == message.message_thread_id
    ):
        return None  # in a forum topic, every message "replies" to the topic's first one
    return _reply_to_someone(message, replied, quoted)


def _quoting(ref: ReplyRef, quoted: str | None) -> ReplyRef:
    """`ref` with the part of it the reply quotes, if any (R201: a partial quote of a stored
    message came as the whole message)."""
    if not quoted:
        return ref
    kept = {f.name: getattr(ref, f.name) for f in dataclasses.fields(ref)}
    return Quoting(**kept, quote=quoted)


def _from_elsewhere(external: ExternalReply, quoted: str | None, bot_id: int) -> FromElsewhere:
    """A reply to a message in another chat: Steward's own (found in the log by its chat and
    id; a private chat is not named, and then nothing of it is passed on: it may be a card,
    R257), a channel's post (perhaps Steward's own, in its channel), or a person's, of which
    the quote and the files are known: their words, never the owner's (R201: a friend's group
    message quoted into the private chat reached the model as nothing). The core says so in
    the turn when nothing of it can be brought in (R257: a photo's reply was lost silently)."""
    origin = external.origin
    chat = origin.chat or external.chat
    post_id = origin.message_id or external.message_id
    where, which = str(chat.id) if chat else "", str(post_id) if post_id else ""
    quote, unread = quoted or "", external.unread
    if _by_steward(origin, bot_id):
        if not (where and which):
            return FromElsewhere("telegram", "", "", by_bot=True)
        return FromElsewhere("telegram", where, which, quoted, by_bot=True, quote=quote)
    media = media_in(external)
    if origin.chat is not None and not media:  # a channel's post
        return FromElsewhere("telegram", where, which, quoted, quote=quote, unread=unread)
    if not quoted and not media:
        return FromElsewhere("telegram", "", "", unread=unread)  # known: only where it is
    author = _author_of(origin)
    return FromElsewhere(
        "telegram", where, which, quoted, author=author, media=media, quote=quote, unread=unread
    )


def _by_steward(origin: MessageOrigin | None, bot_id: int) -> bool:
    """Whether a forwarded or quoted message is Steward's own, by the platform's word."""
    user = origin.sender_user if origin is not None else None
    return user is not None and user.id == bot_id


def _reply_to_someone(message: Message, replied: Message, quoted: str | None) -> ReplyRef | None:
    """A reply to a message in this chat that Steward did not write: whose it is (who wrote it
    first, when forwarded), what the platform shows of it, the part quoted, and its files."""
    author = forward_origin(replied)
    if author is None and replied.from_user is not None:
        author = f"telegram:user:{replied.from_user.id}"
    elif author is None and replied.sender_chat is not None:
        author = f"telegram:chat:{replied.sender_chat.id}"
    text = replied.text or replied.caption or quoted
    media = media_in(replied)
    if author is None or (not text and not media):
        return None
    chat = str(message.chat.id)
    ref = ReplyRef(
        "telegram",
        chat,
        str(replied.message_id),
        text=text,
        author=author,
        received_as=f"{chat}:{replied.message_id}",
        media=media,
    )
    return _quoting(ref, quoted)


def addressed_text(message: Message, text: str, username: str, bot_id: int) -> str | None:
    """In a group: the text meant for Steward (mention removed), or None when it is not."""
    command = _COMMAND.match(text)
    if command is not None:  # "/r/pics" is no command
        target = command[1]
        return text if not target or target.lower() == username else None
    mention = re.compile(rf"(?<!\w)@{re.escape(username)}\b[,:]?", re.I)
    if username and mention.search(text):
        lines = text.split("\n")  # only a line that held the mention is tidied: code keeps its
        for i, line in enumerate(lines):  # indentation
            if mention.search(line):
                lines[i] = re.sub(r"[ \t]{2,}", " ", mention.sub("", line)).strip(" \t,:")
        stripped = "\n".join(lines).strip(" ,:\n")
        return stripped or "hello"
    replied = message.reply_to_message
    if replied and replied.from_user and replied.from_user.id == bot_id:
        return text
    for entity in message.entities or []:
        if entity.type == "text_mention" and entity.user and entity.user.id == bot_id:
            return text
    return None


def links_in(text: str, entities: tuple[MessageEntity, ...]) -> list[str]:
    """Each `text_link` as `[label](address)`: a link written over a label reached the model as
    the label alone. Listed after the message, once it is known whom it addresses: an address
    is never read as a mention (`https://…/@steward_bot` is no message to Steward), and a
    mention removed from the text is never cut out of one. Offsets count UTF-16 code units, as
    Telegram counts them; a label that is its address needs nothing."""
    links = [e for e in entities if e.type == "text_link" and e.url]
    if not links:
        return []
    units = text.encode("utf-16-le", "surrogatepass")  # a lone surrogate is one unit too
    found: list[str] = []
    for entity in sorted(links, key=lambda e: e.offset):
        assert entity.url is not None
        start, end = 2 * entity.offset, 2 * (entity.offset + entity.length)
        if not 0 <= start <= end <= len(units):
            continue
        label = " ".join(units[start:end].decode("utf-16-le", "replace").split())
        url = "".join(entity.url.split())  # one line: an address holds no spaces
        if label != url:
            found.append(f"[{label}]({url})")
    return found


def pressed_button(query: CallbackQuery) -> ApprovalButton | None:
    """The approval button a callback names, or None for data none of our buttons carries
    (callback data is client-controlled)."""
    try:
        button = ApprovalButton.unpack(query.data or "")
    except ValueError:
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
    if message.is_topic_message and message.message_thread_id:
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


def forward_heading(message: Message) -> str | None:
    """ "[forwarded from <name> (<id>)]" for a forwarded message, as Slack's are headed: the model
    is to tell the forward's author from the sender (R137: "Alice" was nowhere in the turn)."""
    origin = message.forward_origin
    if origin is None:
        return None
    user, chat = origin.sender_user, origin.sender_chat or origin.chat
    if user is not None:
        who = f"{plain_name(user.full_name)} (telegram:{user.id})"
    elif chat is not None:
        who = f"{plain_name(chat.title or 'a chat')} (telegram:{chat.id})"
    else:
        who = f"{plain_name(origin.sender_user_name or 'someone')} (an account that hides)"
    return f"[forwarded from {who}]"


def forward_origin(message: Message) -> str | None:
    """Who wrote a forwarded message, as a source name; None for the sender's own words. What
    an inline bot made (`via_bot`: a sound, a clip, an article) is that bot's, like a forward."""
    origin = message.forward_origin
    if origin is None:
        via = message.via_bot
        return f"telegram:bot:{via.id}" if via is not None else None
    return _author_of(origin)


def _author_of(origin: MessageOrigin) -> str:
    """Who wrote a message another one forwards or quotes, as a source name."""
    user = origin.sender_user
    if user is not None:
        return f"telegram:user:{user.id}"
    chat = origin.sender_chat or origin.chat
    if chat is not None:
        return f"telegram:chat:{chat.id}"
    return "telegram:hidden user"
