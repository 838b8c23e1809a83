"""Narrow ports: what one part of the core needs of another, and no more.

The scheduler posts through a `Responder` instead of holding the whole `Steward`; tools and the
goal service reach the scheduler through `Scheduling` and long-term memory through `Remembering`.
Each is a Protocol, so the concrete services never need importing where only the port is used,
and a test can hand in anything that fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from agent.types import Address, TurnOutcome, TurnRequest
from memory.goals import Goal
from memory.labels import Label
from memory.longterm import Kind, Memory, NewMemory, Saved, SearchResult, Source
from memory.people import Chat, User
from memory.schedules import Schedule

if TYPE_CHECKING:
    from agent.scheduler.when import Parsed, Recurrence

__all__ = ["Remembering", "Responder", "Scheduling"]


class Responder(Protocol):
    """Runs a turn for a request and delivers its reply (in its chat's place in line)."""

    async def respond(
        self, request: TurnRequest, *, footer: str = "", hold_failure: bool = False
    ) -> TurnOutcome:
        """`hold_failure`: a failed turn's apology is not sent (the job says what it does)."""
        ...


class Scheduling(Protocol):
    """What tools and goals ask of the scheduler: reminders, tasks and goal check-ins. The core
    holds the scheduler by this port too, so it never imports `agent.scheduler`."""

    async def add_reminder(
        self,
        *,
        user: User,
        chat: Chat,
        address: Address,
        parsed: Parsed,
        kind: str = "reminder",
        tainted: bool = False,
        sources: tuple[str, ...] = (),
    ) -> Schedule: ...

    async def pending_for(self, user: User) -> list[Schedule]: ...

    async def cancel(
        self, user: User, schedule_id: int, kinds: tuple[str, ...] = ...
    ) -> Schedule | None: ...

    def describe(self, schedule: Schedule, user: User) -> str: ...

    async def checkin_for(self, user: User, goal_id: int) -> Schedule | None: ...

    async def set_checkin(
        self,
        user: User,
        goal: Goal,
        recurrence: Recurrence | None,
        *,
        chat: Chat,
        address: Address,
    ) -> Schedule | None: ...

    async def set_due_checkin(
        self, user: User, goal: Goal, at: datetime, *, chat: Chat, address: Address
    ) -> Schedule: ...

    async def close_checkin(self, user: User, goal_id: int) -> None: ...

    async def restore_checkin(self, user: User, goal: Goal) -> Schedule | None: ...


class Remembering(Protocol):
    """What tools, goals and the scheduler ask of long-term memory."""

    async def remember(self, new: NewMemory) -> Saved: ...

    async def search(self, user_id: int, query: str, k: int = 8) -> SearchResult: ...

    async def record_event(
        self,
        user_id: int,
        text: str,
        *,
        kind: Kind,
        source: Source,
        label: Label,
        subject: str = "",
        chat_id: int | None = None,
        turn_id: int | None = None,
        importance: float = 0.4,
    ) -> Saved | None: ...

    async def interests(self, user: User) -> Sequence[str]: ...

    async def get(self, user_id: int, memory_id: int) -> Memory | None: ...
