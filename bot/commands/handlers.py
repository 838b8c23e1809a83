"""What a command handler may ask for, and how it gets it: by naming it.

A handler's parameters are names from this list (checked when it is registered, so a typo fails
at import rather than passing None, as bolt's injection would):

- this call (`Invocation`): `user`, `chat`, `address`, `message`, `sender`, `call`, `press`,
  `commands`, and `args` (the command's words, for a command without subcommands);
- the services (`CommandDeps`): `stores`, `settings`, `clock`, `runner`, `started_at`,
  `approvals`, `scheduler`, `memory`, `goals`, `decide_approval`, `mcp`, `channels` (running);
- the parameters its subcommand pattern names (`bot/commands/arguments.py`).

`approvals`, `scheduler` and `memory` may be missing from a Steward: a handler that names one
without a default needs it, and the command answers with its usage and why; with a default
(`memory: MemoryService | None = None`) it gets None instead. No handler gets the `Steward`.

`commands` is the root group, seen through `CommandIndex` (what help needs of it), so this
module does not import the registry that imports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from agent.config import Settings
from agent.core import Steward
from agent.goals import Goals
from agent.scheduler import SchedulerService
from agent.types import Address, CommandCall, IncomingMessage, Press
from bot.errors import UsageError
from memory.clock import Clock
from memory.people import Chat, Identity, User
from memory.stores import Stores

if TYPE_CHECKING:
    from agent.approvals import ApprovalService
    from agent.mcp import McpSupervisor
    from agent.memory_service import MemoryService
    from agent.turn import TurnRunner

__all__ = [
    "CommandDeps",
    "CommandHelp",
    "CommandIndex",
    "DecideApproval",
    "Endpoint",
    "Invocation",
]


class CommandHelp(Protocol):
    """One command as help shows it."""

    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> str: ...

    def help_text(self, problem: str = "", channel: str = "") -> str: ...


class CommandIndex(Protocol):
    """What handlers need of the command group: its help, and one command's by name."""

    def help_text(self) -> str: ...

    def get(self, name: str) -> CommandHelp | None: ...


class DecideApproval(Protocol):
    """Apply a decision on an approval, run what was approved, and resume its turn."""

    async def __call__(
        self,
        approval_id: str,
        *,
        identity: Identity,
        user: User | None,
        approve: bool,
        always: bool = False,
        in_the_open: bool = False,
        resume_later: bool = False,
    ) -> str: ...


@dataclass(frozen=True)
class CommandDeps:
    """The services commands use, taken from the core once per command."""

    stores: Stores
    settings: Settings
    clock: Clock
    runner: TurnRunner
    started_at: datetime
    approvals: ApprovalService | None
    scheduler: SchedulerService | None
    memory: MemoryService | None
    goals: Goals
    decide_approval: DecideApproval
    mcp: McpSupervisor | None = None
    channels: tuple[str, ...] = ()
    """The channels running now (a briefing posted to one that is not is never seen)."""

    @classmethod
    def of(cls, steward: Steward) -> CommandDeps:
        """Read once from the core; handlers get these, never the core itself."""
        scheduler = steward.scheduler
        return cls(
            stores=steward.stores,
            settings=steward.settings,
            clock=steward.clock,
            runner=steward.runner,
            started_at=steward.started_at,
            approvals=steward.approvals,
            scheduler=scheduler if isinstance(scheduler, SchedulerService) else None,
            memory=steward.memory,
            goals=Goals(
                steward.stores,
                scheduler,
                steward.settings.timezone,
                steward.memory,
                clock=steward.clock,
            ),
            decide_approval=steward.decide_approval,
            mcp=steward.mcp,
            channels=tuple(steward.switchboard.channels),
        )


@dataclass(frozen=True)
class Invocation:
    """This command or press: who, where, and what was said."""

    user: User
    chat: Chat
    address: Address
    message: IncomingMessage
    commands: CommandIndex
    call: CommandCall | None = None
    press: Press | None = None

    @property
    def sender(self) -> Identity:
        return self.message.sender

    @property
    def args(self) -> str:
        return self.call.args if self.call is not None else ""


_MISSING = {
    "approvals": "Approvals are not enabled.",
    "scheduler": "The scheduler is not running in this Steward.",
    "memory": "Long-term memory is not enabled.",
}
_SERVICES = frozenset(f.name for f in fields(CommandDeps))
_CALL = frozenset({*(f.name for f in fields(Invocation)), "sender", "args"})
_NAMES = _SERVICES | _CALL

Handler = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class Endpoint:
    """A handler and the names it asked for (`optional`: those with a default)."""

    handler: Handler
    names: tuple[str, ...]
    optional: frozenset[str]

    @classmethod
    def of(cls, handler: Handler, parsed: Iterable[str] = ()) -> Endpoint:
        """Check `handler`'s parameters against what commands provide (and what its pattern
        parses); a name nobody provides is a `TypeError` when the module is imported."""
        where = getattr(handler, "__qualname__", repr(handler))
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"command handler {where} must be an async function")
        parameters = list(inspect.signature(handler).parameters.values())
        shadowing = _NAMES & set(parsed)
        if shadowing:  # a parsed word must never stand in for the real user, stores, …
            raise TypeError(f"command handler {where}: pattern names {sorted(shadowing)} clash")
        known = _NAMES | set(parsed)
        for p in parameters:
            if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"command handler {where}: {p.name} must be a named parameter")
            if p.name not in known:
                raise TypeError(
                    f"command handler {where} asks for {p.name!r}; commands provide "
                    + ", ".join(sorted(known))
                )
        optional = frozenset(p.name for p in parameters if p.default is not p.empty)
        return cls(handler, tuple(p.name for p in parameters), optional)

    async def __call__(
        self, invocation: Invocation, deps: CommandDeps, parsed: Mapping[str, Any]
    ) -> str:
        kwargs: dict[str, Any] = {}
        for name in self.names:
            if name in parsed:
                kwargs[name] = parsed[name]
                continue
            value = getattr(deps if name in _SERVICES else invocation, name)
            if value is None and name in _MISSING and name not in self.optional:
                raise UsageError(_MISSING[name])
            kwargs[name] = value
        return await self.handler(**kwargs)
