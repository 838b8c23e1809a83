"""What the router does with a message's files and with replies (issue 17), kept out of the
router: whether a message not addressed to Steward continues where Steward is (a Slack thread
it answered in, a comment under its channel post), recording other people's comments for the
owner's summary, and turning a message's files and the message it answers into the turn's
inputs, with a clear reply for every file that could not be used. A message's files and those
of the message it answers share one room for their text (`MediaIntake.share`, R197): an album
of ten text files had been 600,000 characters in one model call, past a guest's whole day.
An approval id still pending never reaches the model from what a message brings from outside
(a forward, a share, the message it answers: R257), whichever path brought it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from agent.attachments import Answered, Attachment, MediaKind, ReplyRef
from agent.forwarded import masked, masked_answered, unseen
from agent.media.intake import FileSource, Intake, MediaIntake, media_note
from agent.media.share import Share
from agent.media.stt import Transcriber
from agent.replies import Comment, CommentDigest, find_answered
from agent.types import IncomingMessage
from memory.labels import TRUSTED, Label
from memory.message_files import MessageFile
from memory.messages import InStatus
from memory.people import User

if TYPE_CHECKING:
    from agent.core import Steward

__all__ = ["Inbound", "Prepared", "stored_text"]

log = logging.getLogger(__name__)

COMMENT_KEPT = 2000
"""Characters of a comment under Steward's post that are stored (R177: anyone may write one)."""

ECHO_CHARS = 3000
"""The most of the owner's own voice note shown back to them: a 30-minute note had come back
as 48 messages (all of it still goes to the turn, and is saved as a .txt in inbox/)."""


@dataclass(frozen=True)
class Prepared:
    """The turn's inputs from one message: its text, its files, the message it answers."""

    text: str
    attachments: tuple[Attachment, ...] = ()
    answered: Answered | None = None


def stored_text(message: IncomingMessage) -> str:
    """The message as the log keeps it before its files are read: a note per file, then the
    text ("[photo] look at this")."""
    note = media_note(message.media)
    return f"{note} {message.text}".strip() if note else message.text


class Inbound:
    def __init__(self, steward: Steward) -> None:
        settings = steward.settings
        transcriber = (
            Transcriber(settings.stt_url, model=settings.stt_model, key=settings.stt_key)
            if settings.stt_url
            else None
        )
        self._steward = steward
        self._comments: dict[str, int] = {}
        """Comments recorded since the start, by commenter (their audit is thinned)."""
        self.intake = MediaIntake(
            workspace=settings.workspace,
            max_bytes=settings.file_max_bytes,
            max_chars=settings.document_max_chars,
            transcriber=transcriber,
            guest_daily_bytes=settings.guest_daily_file_bytes,
        )
        self.digest = CommentDigest(
            steward.stores,
            steward.respond,
            lambda: steward.switchboard.channels,
            delay=settings.comment_digest_seconds,
            share_spent=steward.runner.comments_share_spent,
            note=lambda address, chat_id, text: steward.courier.send(
                address, chat_id, text, label=TRUSTED
            ),
        )

    # -- replies followed -------------------------------------------------------------------

    async def followed(self, message: IncomingMessage) -> bool:
        """For a message that is not addressed to Steward: whether it goes on where Steward
        is (a comment under one of its channel posts; a Slack thread it answered in)."""
        if not message.unaddressed:
            return True
        stores = self._steward.stores
        ref = message.replying_to
        if ref is not None and ref.comment:
            found = await stores.messages.find_sent(ref.channel, ref.chat_id, ref.message_id)
            return found is not None
        address = message.address
        if address.thread_id is None:
            return False
        return await stores.messages.answered_in_thread(
            address.channel, address.chat_id, address.thread_id
        )

    async def record_comment(self, message: IncomingMessage, user: User | None) -> None:
        """Someone other than the owner commented under a post of Steward's: record it (as
        another person's words) and have it summarised for the owner; no reply in the group."""
        ref = message.replying_to
        assert ref is not None
        stores = self._steward.stores
        answered = await find_answered(stores, ref)
        if answered is None:
            return
        chat = await stores.people.chat(
            message.address.channel, message.address.chat_id, message.chat_kind.value
        )
        label = Label.untrusted(f"person:{message.sender}")
        text = stored_text(message)
        if len(text) > COMMENT_KEPT:  # the summary reads 600 of them: 4 KB each was a flood
            text = f"{text[: COMMENT_KEPT - 1]}… ({len(text):,} characters, cut)"
        message_id = await stores.messages.record_incoming(
            chat_id=chat.id,
            user_id=user.id if user is not None else None,
            text=text,
            platform_message_id=message.platform_message_id,
            thread_id=message.address.thread_id,
            label=label,
        )
        if message_id is None:
            return  # delivered twice
        await stores.messages.set_status(message_id, InStatus.HANDLED)
        count = self._comments[str(message.sender)] = self._comments.get(str(message.sender), 0) + 1
        if count & (count - 1) == 0:
            # the 1st, 2nd, 4th, 8th … of one commenter's since the start, as a stranger's
            # knocks are: 200 comments had pushed the owner's events off the activity page
            await stores.audit.record(
                "comment.recorded",
                actor=str(message.sender),
                subject=str(message.address),
                message_id=message_id,
                post=answered.message_id,
                count=count,
            )
        author = (user.display_name if user else "") or message.sender_name or str(message.sender)
        self.digest.add(ref.channel, answered, Comment(message_id, author, text, label))

    # -- a message's inputs -----------------------------------------------------------------

    async def prepare(
        self, message: IncomingMessage, user: User, chat_id: int, message_id: int, label: Label
    ) -> Prepared | None:
        """The turn's inputs; None when nothing is left for the model (a file that could not be
        used, without a word: its problem was told)."""
        steward = self._steward
        intake = Intake()
        ref = message.replying_to
        hidden: set[str] = set()  # pending approval ids, looked up only for outside text
        if message.forwarded_from is not None or ref is not None:
            hidden = {a.id for a in await steward.stores.approvals.pending()}
        if (text := masked(message.text, hidden)) != message.text:
            message = replace(message, text=text)
            await steward.stores.messages.set_text(message_id, stored_text(message))
        share = await self._share(user) if message.media or (ref and ref.media) else None
        if message.media:
            source = steward.switchboard.get(message.address.channel)
            intake = await self.intake.take(
                message.media,
                source if isinstance(source, FileSource) else None,
                base=label,
                own_words=user.is_owner and message.forwarded_from is None,
                guest=None if user.is_owner else user.id,
                message=_carrier(message.address.channel, message.platform_message_id),
                share=share,
            )
            text = " ".join(intake.notes)
            text = "\n\n".join(p for p in (f"{text} {message.text}".strip(), intake.spoken) if p)
            await steward.stores.messages.set_text(message_id, text)
            await steward.stores.message_files.record(message_id, intake.files)
            for problem in intake.problems:
                await self._tell(message, chat_id, problem)
            if intake.spoken:
                echo = intake.spoken
                if len(echo) > ECHO_CHARS:
                    echo = echo[:ECHO_CHARS].rstrip() + " (…)"
                heard = "\n".join(f"> {line}" if line else ">" for line in echo.split("\n"))
                await self._tell(message, chat_id, f"🎙 I heard:\n\n{heard}")
        answered = None
        attachments = list(intake.attachments)
        if ref is not None:
            answered = await find_answered(steward.stores, ref) or unseen(ref)
            if answered is not None:
                answered = masked_answered(answered, hidden)
            if answered is not None and ref.author is not None and ref.media:
                attachments += await self._replied_files(
                    message, user, chat_id, message_id, ref, answered, share
                )
        text = "\n\n".join(p for p in (message.text, intake.spoken) if p)
        if not text and not intake.attachments:
            return None
        if text and intake.not_used:
            # a caption about a file that could not be used read as if nothing came with it
            # (R148: "what is wrong with this config?", the file saved but never named)
            text = f"{' '.join(intake.not_used)} {text}"
        if not text:
            text = f"(They sent this without a message: {media_note(message.media)})"
        return Prepared(text, tuple(attachments), answered)

    async def _replied_files(
        self,
        message: IncomingMessage,
        user: User,
        chat_id: int,
        message_id: int,
        ref: ReplyRef,
        answered: Answered,
        share: Share | None,
    ) -> list[Attachment]:
        """The files of the message replied to ("what is in this photo?"), with that message's
        label: another person's photo is outside content. Noted in the log after the message.
        The copy saved when that message came is reused; a download counts in a guest's
        quota, as their own files do (each reply had fetched and saved the file again)."""
        steward = self._steward
        source = steward.switchboard.get(message.address.channel)
        intake = await self.intake.take(
            ref.media,
            source if isinstance(source, FileSource) else None,
            base=answered.label,
            own_words=False,
            guest=None if user.is_owner else user.id,
            message=_carrier(ref.channel, ref.received_as),
            share=share,
        )
        own_voice = answered.label.trusted and any(m.kind is MediaKind.VOICE for m in ref.media)
        if answered.message_id is not None and intake.files:
            # copies made again (after a restart) are the replied message's, to go with it
            # (R175: forgetting the voice note left the second copy of its words)
            again = [MessageFile(f.path, f.words or own_voice) for f in intake.files]
            await steward.stores.message_files.record(answered.message_id, again)
        stored = await steward.stores.messages.get(message_id) if intake.notes else None
        if stored is not None:
            # the notes name the files, and another person names their files: their words
            # must not enter the owner's message, which later turns read as the owner's
            count = len(intake.notes)
            own = answered.message_id is not None and answered.label.trusted  # the owner's, kept
            notes = (
                " ".join(intake.notes)
                if own
                else f"{count} file{'s' if count != 1 else ''} of another person's"
            )
            await steward.stores.messages.set_text(
                message_id, f"{stored.text}\n(in the message replied to: {notes})"
            )
        for problem in intake.problems:
            await self._tell(message, chat_id, f"In the message you replied to: {problem}")
        return intake.attachments

    async def _share(self, user: User) -> Share:
        """The room the model has for one message's files: a guest's what is left of their
        day's allowance too (R197: checked before the turn, then only after its first model
        call, one album had spent 150,000 tokens of a 100,000 allowance)."""
        left = await self._steward.runner.guest_allowance_left(user)
        return self.intake.share(left)

    async def _tell(self, message: IncomingMessage, chat_id: int, text: str) -> None:
        """Steward's own word about the message's files, to its chat, kept out of history."""
        await self._steward.courier.send(
            message.address, chat_id, text, in_history=False, label=TRUSTED
        )


def _carrier(channel: str, message_id: str | None) -> tuple[str, str] | None:
    """The message that carries files, as the intake remembers what they were saved as."""
    return (channel, message_id) if message_id else None
