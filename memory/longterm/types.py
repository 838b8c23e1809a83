"""The values of long-term memory: a memory, one to save and what saving it did, its kind, source
and trust, and a compaction mark. No SQL here: `records.py` and `compactions.py` store them,
`store.py` saves and searches them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from memory.clock import iso
from memory.labels import TRUSTED, Label

__all__ = [
    "MAX_TEXT_CHARS",
    "MEMORY_KINDS",
    "OUTSIDE_SOURCES",
    "Compaction",
    "Kind",
    "Memory",
    "NewMemory",
    "NewMessage",
    "Saved",
    "Scope",
    "Source",
    "Trust",
    "normalize_subject",
    "normalize_text",
]


class Kind(StrEnum):
    FACT = "fact"
    PREFERENCE = "preference"
    EPISODE = "episode"
    GOAL_NOTE = "goal_note"
    BRIEFING = "briefing"
    NOTE = "note"
    MESSAGE = "message"  # a message of the transcript, kept searchable (issue 13)


class Source(StrEnum):
    """Who or what a memory came from."""

    OWNER_SAID = "owner_said"
    USER_SAID = "user_said"  # a user other than the owner, about themselves
    MODEL_INFERRED = "model_inferred"
    WEB = "web"
    FEED = "feed"
    TOOL = "tool"
    STEWARD_SAID = "steward_said"  # Steward's own reply, kept as a transcript row
    MAIL = "mail"  # read in an e-mail (issue 15): always untrusted


class Trust(StrEnum):
    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


# Every kind but transcript messages: what "the memories" (lists, export, the core memories that
# ride along) mean; a search without `kinds` covers messages too.
MEMORY_KINDS = tuple(k for k in Kind if k is not Kind.MESSAGE)

OUTSIDE_SOURCES = frozenset({Source.WEB, Source.FEED, Source.TOOL, Source.USER_SAID, Source.MAIL})

MAX_TEXT_CHARS = 4000


@dataclass(frozen=True)
class Memory:
    id: int
    user_id: int
    chat_id: int | None
    kind: Kind
    text: str
    subject: str
    source: Source
    source_ref: str
    trust: Trust
    importance: float
    turn_id: int | None
    created_at: datetime
    superseded_by: int | None = None
    superseded_at: datetime | None = None
    label: Label = TRUSTED
    message_id: int | None = None  # the message a transcript row was kept from

    @property
    def active(self) -> bool:
        return self.superseded_at is None

    @property
    def untrusted(self) -> bool:
        return self.trust is Trust.UNTRUSTED

    def describe(self, zone: tzinfo | None = None) -> str:
        """One line: id, date, kind, provenance and text (as the owner and the model see it);
        the date in `zone` (the owner's timezone) when given, else as stored (UTC)."""
        label = f"{self.kind.value}, {self.source.value.replace('_', ' ')}"
        if self.kind is Kind.MESSAGE:
            label = f"message from {self.subject or 'unknown'}"
        if self.untrusted:
            label += ", untrusted"
        when = self.created_at.astimezone(zone) if zone is not None else self.created_at
        return f"#{self.id} ({when:%Y-%m-%d}, {label}): {self.text}"

    def as_record(self) -> dict[str, Any]:
        """The JSON-ready form used by export."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "kind": self.kind.value,
            "text": self.text,
            "subject": self.subject,
            "source": self.source.value,
            "source_ref": self.source_ref,
            "trust": self.trust.value,
            "importance": self.importance,
            "turn_id": self.turn_id,
            "created_at": iso(self.created_at),
            "superseded_by": self.superseded_by,
            "superseded_at": iso(self.superseded_at) if self.superseded_at else None,
            "label": list(self.label.sources),
        }


@dataclass(frozen=True)
class NewMemory:
    """A memory to save. `trust` defaults from the source: outside sources are untrusted.
    `replaces` names memories this one supersedes (the model decides; see the store)."""

    user_id: int
    text: str
    kind: Kind = Kind.FACT
    subject: str = ""
    source: Source = Source.OWNER_SAID
    trust: Trust | None = None
    importance: float = 0.5
    chat_id: int | None = None
    turn_id: int | None = None
    source_ref: str = ""
    replaces: tuple[int, ...] = field(default_factory=tuple)
    created_at: datetime | None = None
    label: Label = TRUSTED
    """The sources of outside content this memory was made from; a tainted label makes the
    memory untrusted whatever `trust` says."""
    message_id: int | None = None
    replaces_only: bool = False
    """It retires what `replaces` names (and what holds its subject's slot), no near-duplicate
    however alike (a correction: the owner named the memory that is wrong; a near-duplicate of
    it may be another fact)."""

    @property
    def resolved_trust(self) -> Trust:
        if self.label.tainted:
            return Trust.UNTRUSTED
        if self.trust is not None:
            return self.trust
        return Trust.UNTRUSTED if self.source in OUTSIDE_SOURCES else Trust.TRUSTED

    @property
    def resolved_label(self) -> Label:
        """The stored label: an untrusted memory always names at least its source kind."""
        if self.resolved_trust is Trust.TRUSTED:
            return TRUSTED
        return self.label if self.label.tainted else Label.untrusted(self.source.value)


@dataclass(frozen=True)
class NewMessage:
    """A message of the transcript to keep searchable: who said it (`speaker`, a display name),
    in which chat, when (aware), and its trust label (another person's message is untrusted).
    `source` says whose words they are: the owner's, another user's, or Steward's own."""

    user_id: int
    chat_id: int | None
    text: str
    speaker: str
    created_at: datetime
    message_id: int | None = None
    label: Label = TRUSTED
    source: Source = Source.OWNER_SAID
    importance: float = 0.3
    turn_id: int | None = None

    def as_memory(self) -> NewMemory:
        return NewMemory(
            user_id=self.user_id,
            text=self.text,
            kind=Kind.MESSAGE,
            subject=self.speaker,
            source=self.source,
            importance=self.importance,
            chat_id=self.chat_id,
            turn_id=self.turn_id,
            created_at=self.created_at,
            label=self.label,
            message_id=self.message_id,
        )


@dataclass(frozen=True)
class Scope:
    """Which chats a search may draw from: rows kept from other chats are left out (rows tied
    to no chat stay in). None: every chat of the user."""

    chats: frozenset[int] | None = None


@dataclass(frozen=True)
class Saved:
    """What `save` did. `duplicate`: the same text was already remembered (nothing new stored).
    `refused`: ids asked to be replaced that were not (unknown, not this user's, already
    retired, or trusted while the new memory is not)."""

    memory: Memory
    superseded: tuple[Memory, ...] = ()
    duplicate: bool = False
    refused: tuple[int, ...] = ()


@dataclass(frozen=True)
class Compaction:
    id: int
    chat_id: int
    first_message_id: int
    last_message_id: int
    episode_id: int | None
    facts_saved: int
    created_at: datetime


def normalize_text(text: str) -> str:
    return " ".join(text.split())


def normalize_subject(subject: str) -> str:
    """Subjects compare case- and punctuation-blind: "Home city" == "home-city" == "home city"."""
    return " ".join(re.findall(r"\w+", subject.casefold()))
