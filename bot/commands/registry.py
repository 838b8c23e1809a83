"""Commands are parsed once, here, and shared by every channel.

Each feature module exports a `CommandGroup`; the root registry includes them. A handler gets a
`CommandContext` with the parsed call and returns its reply; `UsageError` turns into the
command's usage and example.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.core import Steward
from agent.types import Address, IncomingMessage
from bot.errors import UsageError
from memory.people import Chat, User

__all__ = [
    "Command",
    "CommandCall",
    "CommandContext",
    "CommandGroup",
    "UsageError",
    "parse_command",
]

_COMMAND = re.compile(r"^/([A-Za-z][A-Za-z0-9_]{0,31})(?:@([A-Za-z0-9_]+))?(?:\s+(.*))?$", re.S)


@dataclass(frozen=True)
class CommandCall:
    """`/name@bot args` parsed: the name in lower case, the bot it was addressed to, the rest."""

    name: str
    args: str
    mention: str | None = None


def parse_command(text: str) -> CommandCall | None:
    match = _COMMAND.match(text.strip())
    if not match:
        return None
    return CommandCall(match[1].lower(), (match[3] or "").strip(), match[2])


@dataclass(frozen=True)
class CommandContext:
    steward: Steward
    user: User
    chat: Chat
    address: Address
    message: IncomingMessage
    call: CommandCall
    commands: CommandGroup


Handler = Callable[[CommandContext], Awaitable[str]]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    usage: str
    example: str
    handler: Handler
    owner_only: bool = False

    def help_text(self, problem: str = "") -> str:
        lead = f"{problem}\n" if problem else ""
        return f"{lead}Usage: {self.usage}\nExample: {self.example}"


class CommandGroup:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def command(
        self,
        name: str,
        *,
        summary: str,
        usage: str = "",
        example: str = "",
        owner_only: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(
                Command(
                    name, summary, usage or f"/{name}", example or f"/{name}", handler, owner_only
                )
            )
            return handler

        return register

    def add(self, command: Command) -> None:
        if command.name in self._commands:
            raise ValueError(f"command /{command.name} is registered twice")
        self._commands[command.name] = command

    def include(self, group: CommandGroup) -> None:
        for command in group:
            self.add(command)

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._commands.values(), key=lambda c: c.name))

    def help_text(self) -> str:
        lines = [f"/{c.name} — {c.summary}" for c in self]
        return "Commands:\n" + "\n".join(lines)
