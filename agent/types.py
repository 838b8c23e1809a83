"""The values that cross the boundary between chat channels and the core."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from agent.attachments import Answered, Attachment, MediaRef, ReplyRef
from memory.approvals import Approval
from memory.labels import TRUSTED, Label
from memory.people import Chat, Identity, User
from memory.turns import TokenUsage, TurnStatus

__all__ = [
    "SILENT_REPLY",
    "Address",
    "ApprovalPrompt",
    "ChatKind",
    "Choice",
    "CommandCall",
    "IncomingMessage",
    "Press",
    "TurnOutcome",
    "TurnRequest",
    "address_from_json",
    "address_to_json",
]

SILENT_REPLY = "SKIP"  # a self-initiated turn that answers exactly this sends nothing

_COMMAND = re.compile(r"^/([A-Za-z][A-Za-z0-9_]{0,31})(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.S)


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Address:
    """Where a message goes: a channel, a chat on it and, where the platform has them, a thread."""

    channel: str
    chat_id: str
    thread_id: str | None = None

    def __str__(self) -> str:
        suffix = f"/{self.thread_id}" if self.thread_id else ""
        return f"{self.channel}:{self.chat_id}{suffix}"


def address_to_json(address: Address) -> dict[str, Any]:
    """An address as stored in SQLite (a schedule's or the briefing's destination)."""
    return {"channel": address.channel, "chat_id": address.chat_id, "thread_id": address.thread_id}


def address_from_json(data: dict[str, Any]) -> Address:
    """The address `address_to_json` stored (a chat id stored as a number comes back a string)."""
    return Address(data["channel"], str(data["chat_id"]), data.get("thread_id"))


@dataclass(frozen=True)
class CommandCall:
    """`/name@bot args` parsed: the name in lower case, the bot it was addressed to, the rest.

    Typed text is parsed once, by `parse`; a channel that receives a command already split (a
    Slack slash command) builds the call itself, so nothing downstream parses text again.
    """

    name: str
    args: str
    mention: str | None = None

    @classmethod
    def parse(cls, text: str) -> CommandCall | None:
        match = _COMMAND.match(text.strip())
        if not match:
            return None
        return cls(match[1].lower(), (match[3] or "").strip(), match[2])

    @property
    def text(self) -> str:
        """The command as it is stored in the chat's log."""
        return f"/{self.name} {self.args}".strip()


class Choice(StrEnum):
    """What an approval card's button says."""

    APPROVE = "approve"
    DENY = "deny"
    ALWAYS = "always"


@dataclass(frozen=True)
class Press:
    """A press on an approval card's button, decoded by the channel.

    The button's data names only the approval and the choice; the channel adds `message_id`,
    the platform id of the message pressed, which must be that approval's card.
    """

    approval_id: str
    choice: Choice
    message_id: str | None

    @property
    def text(self) -> str:
        """The typed command it stands for, as it is stored in the chat's log."""
        if self.choice is Choice.DENY:
            return f"/deny {self.approval_id}"
        suffix = " always" if self.choice is Choice.ALWAYS else ""
        return f"/approve {self.approval_id}{suffix}"


@dataclass(frozen=True)
class IncomingMessage:
    """One message from any channel (or the scheduler), as the router sees it.

    `sender` is the platform's own id for the author; it is the only thing identity is built on.
    `platform_message_id` lets the router drop a message delivered twice. A button press comes
    as `press` and a command the platform delivered already split (a Slack slash command) as
    `command`; `text` is then what they stand for, for the chat's log. Typed text is parsed by
    the router.
    """

    sender: Identity
    address: Address
    text: str
    platform_message_id: str | None = None
    sender_name: str = ""
    chat_kind: ChatKind = ChatKind.PRIVATE
    reply_to_text: str | None = None
    forwarded_from: str | None = None
    """Set when the sender forwarded someone else's message ("telegram:user:42",
    "telegram:channel:-100…"): those are outside words, whoever forwards them."""
    press: Press | None = None
    command: CommandCall | None = None
    media: tuple[MediaRef, ...] = ()
    """Files the message carries (photos, documents, voice), fetched by the core."""
    replying_to: ReplyRef | None = None
    """The message this one answers, where the platform says (issue 17)."""
    unaddressed: bool = False
    """Not addressed to Steward (a Slack thread reply without a mention): it goes on only where
    Steward already answered in that thread."""

    @property
    def pressed_message_id(self) -> str | None:
        """For a button press: the platform id of the message whose button was pressed."""
        return self.press.message_id if self.press is not None else None


@dataclass(frozen=True)
class ApprovalPrompt:
    """A request for the owner to approve one exact action."""

    approval_id: str
    tool: str
    preview: str
    reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TurnRequest:
    """One unit of agent work: a chat message, or a job the scheduler started.

    `kind` names where it came from (chat, briefing, checkin, …) for usage figures and budgets;
    `tainted` marks a turn that starts out holding content from outside, and `sources` names
    that content (e.g. "feed:https://…") so an approval request can say where it came from.
    """

    kind: str
    user: User
    chat: Chat | None
    address: Address | None
    text: str
    message_id: int | None = None
    tainted: bool = False
    sources: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    """Photos, documents and transcripts the message brought, each with its own label."""
    answered: Answered | None = None
    """The message this one replies to, brought into the context with its label."""
    run_id: int | None = None
    """The schedule run a job's turn is for (recovery after a crash finds it by this)."""

    @property
    def self_initiated(self) -> bool:
        return self.kind != "chat"

    @property
    def label(self) -> Label:
        """The trigger's own label: its sources, and another person's words are outside input."""
        label = Label.of(self.tainted, self.sources)
        if not self.user.is_owner:
            label = label.join(Label.untrusted(f"person:#{self.user.id}"))
        return label


@dataclass(frozen=True)
class TurnOutcome:
    """What a turn came to: its reply, status, usage, approvals waiting, label and refusals."""

    text: str
    status: TurnStatus
    turn_id: int | None
    usage: TokenUsage
    steps: int
    approvals: tuple[Approval, ...] = ()
    label: Label = TRUSTED
    """The turn's label when it ended: the reply and anything it made carry it."""
    refused: tuple[str, ...] = ()
    """Actions the policy refused or rate-limited, one short line each, for the owner's notice."""
    skipped_for: str = ""
    """Why a turn did not run: "budget" (the owner's daily budget; they are told once a day),
    "allowance" (another person's daily allowance), "" (it ran, or there is no model)."""
    failure: str = ""
    """Why a failed turn failed (the model API overloaded, …), in words for the owner."""
    retryable: bool = False
    """A failed turn that may be run again as it was: the model API failed for a while, not
    refusing it, and nothing had been done yet (a scheduled job tries again later)."""
