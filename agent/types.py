"""The values that cross the boundary between chat channels and the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from memory.approvals import Approval
from memory.labels import TRUSTED, Label
from memory.people import Chat, Identity, User
from memory.turns import TokenUsage, TurnStatus

__all__ = [
    "SILENT_REPLY",
    "Address",
    "ApprovalPrompt",
    "ChatKind",
    "IncomingMessage",
    "TurnOutcome",
    "TurnRequest",
]

SILENT_REPLY = "SKIP"  # a self-initiated turn that answers exactly this sends nothing


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


@dataclass(frozen=True)
class IncomingMessage:
    """One message from any channel (or the scheduler), as the router sees it.

    `sender` is the platform's own id for the author; it is the only thing identity is built on.
    `platform_message_id` lets the router drop a message delivered twice. `pressed_message_id`
    is set for a button press: the platform id of the message whose button was pressed, which
    the approval command checks against the card the approval was sent in.
    """

    sender: Identity
    address: Address
    text: str
    platform_message_id: str | None = None
    sender_name: str = ""
    chat_kind: ChatKind = ChatKind.PRIVATE
    reply_to_text: str | None = None
    pressed_message_id: str | None = None
    forwarded_from: str | None = None
    """Set when the sender forwarded someone else's message ("telegram:user:42",
    "telegram:channel:-100…"): those are outside words, whoever forwards them."""


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
