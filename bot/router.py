"""The one dispatch every channel calls: dedupe, identify, store, then a command or a turn.

Order per message: take its place in the chat's queue (synchronously) → who is this (strangers
get one polite refusal and an audit event, and never reach the model) → commit the message
(a duplicate platform id stops here) → wait for the chat's earlier messages → command or turn.

(Some 410 lines: the order above is one contract, and who may skip the queue, what is stored
first and what a press or a command does are steps of it that cannot be read apart.)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable

from agent.cards import plain_text
from agent.core import Steward
from agent.media.inbound import Inbound, stored_text
from agent.sequencer import Ticket
from agent.types import ChatKind, CommandCall, IncomingMessage, Press, TurnRequest
from bot.commands import CommandDeps, CommandGroup, Invocation
from bot.commands.access import tell_owner_about_stranger
from memory.errors import StorageFailed
from memory.labels import TRUSTED, Label
from memory.messages import InStatus
from memory.people import Chat, User
from memory.storage import DatabaseLocked

__all__ = ["LOCKED_UNFINISHED", "LOCKED_UNSTORED", "UNFINISHED", "UNSTORED", "Router"]

log = logging.getLogger(__name__)
UNSTORED = (
    "I could not keep or answer your message: the disk holding my data is full or cannot be "
    "written. Nothing of it was done; please send it again once that is fixed."
)
UNFINISHED = (
    "I could not record my answer to your message: the disk holding my data is full or cannot "
    "be written. I may have acted on it already, so check what was done before sending it again."
)
_LOCKED = (
    "another program is holding my database locked (a sqlite3 shell left open in a "
    "transaction, perhaps)"
)
LOCKED_UNSTORED = (
    f"I could not keep or answer your message: {_LOCKED}. Nothing of it was done; close that "
    "program, then send it again."
)
LOCKED_UNFINISHED = (
    f"I could not record my answer to your message: {_LOCKED}. I may have acted on it already, "
    "so check what was done before sending it again."
)
"""R198: a database locked by another program was told as a full disk (the log had it right)."""
_SURROGATE = re.compile("[\ud800-\udfff]")


class Router:
    def __init__(self, steward: Steward, commands: CommandGroup) -> None:
        self._steward = steward
        self._commands = commands
        self.inbound = Inbound(steward)
        """Files, replies followed and comments under Steward's posts (issue 17)."""
        self._presses: dict[str, int] = {}  # strangers' presses on cards, since the start

    async def dispatch(
        self, message: IncomingMessage, *, stored: asyncio.Event | None = None
    ) -> None:
        """Handle one message to the end. `stored` is set once the message is committed (or
        will never be: a stranger's, a duplicate, one not for Steward, a failed write): a
        channel tells its platform it has the message only then (R147: a crash just after
        Telegram was told, before the commit, lost the message without a trace)."""
        message = _storable(message)
        ticket = self._steward.sequencer.take(message.address)
        kept: list[int] = []  # the message's id, once stored
        try:
            await self._dispatch(message, ticket, kept, stored)
        except StorageFailed as exc:
            # the database cannot be written (the disk full): nothing can be stored, not even
            # a reply, so the sender hears it straight from the channel instead of silence;
            # once the message was kept its turn may have acted, and resending would repeat it
            log.error("a message in %s could not be handled: %s", message.address, exc)
            if stored is not None:
                stored.set()  # never will be: the channel need not wait for the telling
            await self._unstored(message, _not_stored(exc, kept=bool(kept)))
        finally:
            if stored is not None:
                stored.set()
            ticket.release()

    async def _unstored(self, message: IncomingMessage, text: str) -> None:
        channel = self._steward.switchboard.get(message.address.channel)
        if channel is None:
            return
        try:
            await channel.send_text(message.address, text)
        except Exception as exc:  # the channel may be failing as well: the log has it
            log.error("telling %s failed too: %s", message.address, exc)

    async def _dispatch(
        self,
        message: IncomingMessage,
        ticket: Ticket,
        kept: list[int],
        stored: asyncio.Event | None = None,
    ) -> None:
        stores = self._steward.stores
        if message.unaddressed and not await self.inbound.followed(message):
            return  # not for Steward: a thread it is not in, a comment under another's post
        user = await stores.people.resolve(message.sender)
        comment = message.replying_to is not None and message.replying_to.comment
        if comment and (user is None or not user.is_owner) and message.unaddressed:
            await self.inbound.record_comment(message, user)
            return
        if user is None:
            if stored is not None:  # a stranger's is not kept: the channel goes on at once
                stored.set()  # (R149: their refusal's sends held up everyone's next poll)
            if message.press is not None:
                await self._refuse_strangers_press(message)
            elif not message.unaddressed:  # a stranger chatting in a thread did not ask Steward
                await self._refuse_stranger(message)
            return
        chat = await stores.people.chat(
            message.address.channel, message.address.chat_id, message.chat_kind.value
        )
        verb = _verb(message)
        message_id = await stores.messages.record_incoming(
            chat_id=chat.id,
            user_id=user.id,
            text=stored_text(message),
            platform_message_id=message.platform_message_id,
            thread_id=message.address.thread_id,
            in_history=verb is None,
            label=_label(message, user),
        )
        kept.append(message_id or 0)
        if stored is not None:
            stored.set()
        if message_id is None:
            log.info(
                "duplicate message %s in chat %s dropped", message.platform_message_id, chat.id
            )
            return
        # R236: a press from someone who may not decide changes nothing, so it does not wait
        # behind the chat's running turn (past the channel's wait, its refusal went to the group)
        place = contextlib.nullcontext() if self._decides_nothing(message, user, verb) else ticket
        async with place:
            handled = True
            try:
                # who they are now, not when the message came: a message waits behind the
                # chat's earlier ones (a /timezone just before it; a /revoke meanwhile)
                now = await stores.people.resolve(message.sender)
                if now is None:
                    return  # no longer allowed: stored, not answered
                chat = await stores.people.chat(
                    message.address.channel, message.address.chat_id, message.chat_kind.value
                )
                await self._handle(message, now, chat, message_id, verb)
            except asyncio.CancelledError:
                # stopped mid-message (Ctrl-C, SIGTERM): left `received`, for the next start
                # to judge (bot/recovery.py): answered once its turn's reply was stored (the
                # outbox delivers it), else the sender is told it was cut short
                handled = False
                raise
            except StorageFailed:
                # R198: not "something went wrong, try again" on top of an answer that went out,
                # before `dispatch` says what did (the disk full): a turn may have acted
                raise
            except Exception:
                log.exception("handling message %s in chat %s failed", message_id, chat.id)
                await stores.audit.record(
                    "message.failed", actor="steward", subject=str(message.address)
                )
                await self._steward.courier.send(
                    message.address,
                    chat.id,
                    "Sorry, something went wrong on my side while handling that, and I could not "
                    "finish it. The details are in Steward's log; please try again.",
                    in_history=False,
                    label=TRUSTED,
                )
            finally:
                if handled:
                    await stores.messages.set_status(message_id, InStatus.HANDLED)

    async def _handle(
        self,
        message: IncomingMessage,
        user: User,
        chat: Chat,
        message_id: int,
        verb: CommandCall | Press | None,
    ) -> None:
        if verb is None:
            label = _label(message, user)
            plain = TurnRequest(
                kind="chat", user=user, chat=chat, address=message.address, text=message.text,
                message_id=message_id, tainted=label.tainted, sources=label.sources,
            )  # fmt: skip
            if await self._steward.runner.guest_over_allowance(plain):
                await self._steward.respond(plain)  # told so; no file is fetched for nothing
                return
            # a voice note transcribed or a file read may take a while: the chat shows it
            # (R148: silence for the STT's seconds, then the answer)
            async with self._steward.typing(message.address if message.media else None):
                inputs = await self.inbound.prepare(message, user, chat.id, message_id, label)
            if inputs is None:
                return  # only files that could not be used: each was answered
            request = TurnRequest(
                kind="chat",
                user=user,
                chat=chat,
                address=message.address,
                text=inputs.text,
                message_id=message_id,
                tainted=label.tainted,
                sources=label.sources,
                attachments=inputs.attachments,
                answered=inputs.answered,
            )
            await self._steward.respond(request)
            return
        calls = _calls(message, verb, self._commands.get)
        for number, call in enumerate(calls[:MAX_COMMANDS]):
            if number:  # who they are now: the line before may have changed it (/timezone)
                now = await self._steward.stores.people.resolve(message.sender)
                if now is None:
                    return
                user = now
            invocation = Invocation(
                user=user,
                chat=chat,
                address=message.address,
                message=message,
                commands=self._commands,
                call=call if isinstance(call, CommandCall) else None,
                press=call if isinstance(call, Press) else None,
            )
            reply = await self._commands.run(invocation, CommandDeps.of(self._steward))
            if reply:
                await self._steward.courier.send(
                    message.address, chat.id, reply, in_history=False, label=TRUSTED
                )
        if len(calls) > MAX_COMMANDS:
            await self._steward.courier.send(
                message.address, chat.id, _not_run(calls), in_history=False, label=TRUSTED
            )

    def _decides_nothing(
        self, message: IncomingMessage, user: User, verb: CommandCall | Press | None
    ) -> bool:
        """Whether `verb` is a press its presser may not decide: refused, changing nothing, so
        answered at once, to them alone (R236; a wrong card or a second press waits its turn,
        and the channel drops words it has no alert left for rather than post them)."""
        if not isinstance(verb, Press):
            return False
        approvals = self._steward.approvals
        return approvals is None or not approvals.may_decide(message.sender, user)

    async def _refuse_strangers_press(self, message: IncomingMessage) -> None:
        """A stranger's press on a card decides nothing and is answered (in a group to them
        alone: the channel claims the answer). It is no knock to tell the owner of (R201:
        "Someone new wrote to me" for each press); audited as knocks are (1st, 2nd, 4th …)."""
        key = str(message.sender)
        if len(self._presses) >= 10_000:  # many strangers: counted anew (a bound, not a log)
            self._presses.clear()
        count = self._presses[key] = self._presses.get(key, 0) + 1
        if count & (count - 1) == 0:
            await self._steward.stores.audit.record(
                "stranger.refused",
                actor=key,
                subject=str(message.address),
                attempts=count,
                press=True,
            )
        await self._steward.outbox.send_text(message.address, _stranger_words(message))

    async def _refuse_stranger(self, message: IncomingMessage) -> None:
        stores = self._steward.stores
        stranger = await stores.people.record_stranger(message.sender, message.sender_name)
        if stranger.attempts & (stranger.attempts - 1) == 0:
            # the 1st, 2nd, 4th, 8th … knock: a stranger's flood cannot fill the audit log and
            # push real events off the console's activity page; the count says how many came
            await stores.audit.record(
                "stranger.refused",
                actor=str(message.sender),
                subject=str(message.address),
                attempts=stranger.attempts,
            )
        if stranger.attempts > 1:
            return
        steward = self._steward
        await tell_owner_about_stranger(
            stores, steward.courier, steward.switchboard.channels, message
        )
        said = _stranger_words(message)
        owner = await stores.people.owner()
        channels = {i.channel for i in await stores.people.identities_of(owner.id)} if owner else ()
        private = message.chat_kind is ChatKind.PRIVATE  # R180: not posted to a whole group
        if private and message.sender.channel not in channels:  # R179: "ask my owner", of none
            said += (
                f" I have no owner on {message.sender.channel} yet: if that is you, put "
                f"STEWARD_OWNER={message.sender} in Steward's .env and restart it."
            )
        await steward.outbox.send_text(message.address, said)


def _stranger_words(message: IncomingMessage) -> str:
    """What a stranger is told: who can let them in, and how."""
    return (
        "Sorry, I'm a personal assistant and only talk to the people my owner allows. "
        f"Your id is {message.sender}; my owner can admit you with /allow {message.sender}."
    )


def _not_stored(exc: StorageFailed, *, kept: bool) -> str:
    """What the sender is told when the database would not take their message (`kept`: it
    took the message, and its answer or its end could not be recorded)."""
    if isinstance(exc, DatabaseLocked):
        return LOCKED_UNFINISHED if kept else LOCKED_UNSTORED
    return UNFINISHED if kept else UNSTORED


def _verb(message: IncomingMessage) -> CommandCall | Press | None:
    """What the message asks of the command layer: a press or a command as the channel typed
    them, else the text parsed as a command (None: it goes to the agent). A forwarded message
    (or an inline bot's) is someone else's words: "/allow 42" in it is never a command, even
    when the owner is the one who forwards it; it reaches the agent as outside content."""
    if message.forwarded_from is not None:
        return None
    return message.press or message.command or CommandCall.parse(message.text)


MAX_COMMANDS = 10
"""Commands one message may run (several pasted lines): 370 lines of `/deny x` in one message
were 370 audited refusals and 370 replies, the owner's real events pushed off the audit views."""


def _not_run(calls: list[CommandCall | Press]) -> str:
    """What a message of more than MAX_COMMANDS commands is told: which lines did not run."""
    left = calls[MAX_COMMANDS:]
    lines = []
    for call in left[:5]:
        said = f"/{call.name} {call.args}" if isinstance(call, CommandCall) else "(a button)"
        first = said.strip().split("\n", 1)[0]
        cut = first if len(first) <= 60 else first[:59] + "…"
        lines.append("- " + plain_text(cut, 80))  # their words, shown as typed
    if len(left) > 5:
        lines.append(f"- and {len(left) - 5} more")
    return (
        f"I ran the first {MAX_COMMANDS} of the {len(calls)} commands in that message; these "
        "did not run (send them in another message):\n" + "\n".join(lines)
    )


def _calls(
    message: IncomingMessage, verb: CommandCall | Press, known: Callable[[str], object]
) -> list[CommandCall | Press]:
    """The commands one message holds: several when every line is a command Steward knows
    ("/remind 9:00 call mom" and "/remind 10:00 dentist" pasted together were one reminder
    "call mom /remind 10:00 dentist"), or when they are all the same command and plain lines
    follow the last ("thanks!"). Otherwise one: a line inside a reminder's or a note's text
    that begins like a command ("/goal done 1" to do later, "/start the admin page") is text,
    never run now; "/tmp is full" is not a command of ours."""
    if not isinstance(verb, CommandCall) or message.command is not None:
        return [verb]
    ours = (verb.mention or "").lower()
    lines = [line for line in message.text.splitlines() if line.strip()]
    parsed = [CommandCall.parse(line) for line in lines]
    starts = [
        call is not None
        and known(call.name) is not None
        and (call.mention or ours).lower() == ours  # not a line for another bot
        for call in parsed
    ]
    count = sum(starts)
    if count < 2:
        return [verb]
    last = max(i for i, start in enumerate(starts) if start)
    names = {call.name for call, start in zip(parsed, starts, strict=True) if call and start}
    if not all(starts[: last + 1]) or (last < len(lines) - 1 and len(names) > 1):
        return [verb]
    groups = [[line] for line in lines[: last + 1]]
    groups[-1] += lines[last + 1 :]
    calls = [CommandCall.parse("\n".join(group)) for group in groups]
    return [call for call in calls if call is not None]


def _storable(message: IncomingMessage) -> IncomingMessage:
    """Lone surrogates (valid JSON escapes, invalid UTF-8) cannot be stored or sent on: they
    become U+FFFD instead of failing the whole message."""

    def clean(text: str) -> str:
        return _SURROGATE.sub("\ufffd", text)

    fields = ("text", "sender_name", "reply_to_text")
    values = {name: getattr(message, name) for name in fields}
    command = message.command
    if command is not None and clean(command.args) != command.args:
        command = dataclasses.replace(command, args=clean(command.args))
    if command is message.command and all(v is None or clean(v) == v for v in values.values()):
        return message
    return dataclasses.replace(
        message,
        command=command,
        **{k: v if v is None else clean(v) for k, v in values.items()},
    )


def _label(message: IncomingMessage, user: User) -> Label:
    """Another person's words are outside content; so is a message the owner forwarded."""
    label = TRUSTED if user.is_owner else Label.untrusted(f"person:#{user.id}")
    if message.forwarded_from is not None:
        label = label.join(Label.untrusted(f"forward:{message.forwarded_from}"))
    return label
