"""The command layer every channel shares: one place where commands and presses are run.

Each feature module exports a `CommandGroup`; the root group includes them and runs a command
(or an approval button's press) for the router. The owner-only guard is applied here, once. A
command either has one handler for all its words or declares subcommands, whose patterns
(`bot/commands/arguments.py`) parse the words before any handler runs:

    approve = group.command("approve", summary=..., usage=..., example=...,
                            problem="Give one approval id and optionally `always`.")

    @approve.sub("show <approval_id>", problem="Give the approval id to show.")
    async def show(approval_id: str, user: User, stores: Stores) -> str: ...

Subcommands are tried in the order declared; the first that fits runs. Words that start with a
subcommand's keywords but do not fit it get that subcommand's `problem`, when it has one (else
the next subcommands are tried); words that fit none get the command's `missing` (no words) or
`problem` (else "I don't know /cmd word."). Handlers name what they need
(`bot/commands/handlers.py`). `UsageError`, raised by the parsing, a converter or a handler,
becomes the command's usage and example (`examples` gives a channel an example of its
own, e.g. a Slack member id for /allow). Every reply is written for the channel it goes to
(`bot/commands/channel_text.py`): on Slack, `/remind …` reads `/steward remind …`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from agent.types import CommandCall
from bot.commands.arguments import Converter, Pattern
from bot.commands.channel_text import for_channel
from bot.commands.handlers import CommandDeps, Endpoint, Handler, Invocation
from bot.errors import UsageError

__all__ = [
    "PROBLEM_MAX",
    "Command",
    "CommandCall",
    "CommandDeps",
    "CommandGroup",
    "Invocation",
    "UsageError",
    "parse_command",
]


def parse_command(text: str) -> CommandCall | None:
    """Typed text as a command (`/name@bot args`), or None when it is not one."""
    return CommandCall.parse(text)


@dataclass(frozen=True)
class _Sub:
    pattern: Pattern
    endpoint: Endpoint
    problem: str | None


class Command:
    """One command: its help, and one handler for all its words or its subcommands."""

    def __init__(
        self,
        name: str,
        *,
        summary: str,
        usage: str = "",
        example: str = "",
        examples: Mapping[str, str] | None = None,
        owner_only: bool = False,
        problem: str = "",
        missing: str = "",
    ) -> None:
        self.name = name
        self.summary = summary
        self.usage = usage or f"/{name}"
        self.example = example or f"/{name}"
        self.examples = dict(examples or {})
        self.owner_only = owner_only
        self.problem = problem
        self.missing = missing
        self._endpoint: Endpoint | None = None
        self._subs: list[_Sub] = []

    def __call__(self, handler: Handler) -> Handler:
        """Register `handler` for all of the command's words (it may ask for `args`)."""
        if self._endpoint is not None or self._subs:
            raise ValueError(f"/{self.name} has a handler already")
        self._endpoint = Endpoint.of(handler)
        return handler

    def sub(
        self, pattern: str, *, problem: str | None = None, **convert: Converter
    ) -> Callable[[Handler], Handler]:
        """Register a subcommand: `pattern` names its words, `convert` turns a named word into
        its value, `problem` answers words that start like it but do not fit."""
        if self._endpoint is not None:
            raise ValueError(f"/{self.name} has one handler for all its words")
        parsed = Pattern(pattern, convert)

        def register(handler: Handler) -> Handler:
            self._subs.append(_Sub(parsed, Endpoint.of(handler, parsed.names), problem))
            return handler

        return register

    async def run(self, invocation: Invocation, deps: CommandDeps) -> str:
        args = invocation.args
        if self._endpoint is not None:
            return await self._endpoint(invocation, deps, {})
        if not self._subs:
            raise RuntimeError(f"/{self.name} has no handler")
        for sub in self._subs:
            values = sub.pattern.match(args)
            if values is not None:
                return await sub.endpoint(invocation, deps, values)
            if sub.problem and sub.pattern.claims(args):
                raise UsageError(sub.problem)
        words = args.split()
        if not words:
            raise UsageError(self.missing or self.problem)
        raise UsageError(self.problem or f"I don't know /{self.name} {words[0].lower()}.")

    def help_text(self, problem: str = "", channel: str = "") -> str:
        """The usage and the example for `channel` (its own, else the general one)."""
        lead = f"{_shortened(problem)}\n" if problem and problem != self.usage else ""
        example = self.examples.get(channel, self.example)
        return f"{lead}Usage: {self.usage}\nExample: {example}"


PROBLEM_MAX = 600
"""Characters of a usage error's first line kept: it may quote what was typed, and 30,000
characters typed came back as 30,000 (R186: many messages on Slack and the console)."""


def _shortened(problem: str) -> str:
    if len(problem) <= PROBLEM_MAX:
        return problem
    head, tail = problem[: PROBLEM_MAX - 150], problem[-100:]
    return f"{head} … ({len(problem) - len(head) - len(tail):,} characters left out) … {tail}"


_ALL_OURS = frozenset({"help", "start"})
"""Commands whose whole answer is Steward's own text about commands."""


class CommandGroup:
    """Commands (and at most one handler for approval button presses)."""

    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}
        self._press: Endpoint | None = None

    def command(
        self,
        name: str,
        *,
        summary: str,
        usage: str = "",
        example: str = "",
        examples: Mapping[str, str] | None = None,
        owner_only: bool = False,
        problem: str = "",
        missing: str = "",
    ) -> Command:
        """Declare a command; use the result as the decorator of its handler, or declare its
        subcommands with `.sub(pattern)`."""
        command = Command(
            name,
            summary=summary,
            usage=usage,
            example=example,
            examples=examples,
            owner_only=owner_only,
            problem=problem,
            missing=missing,
        )
        self.add(command)
        return command

    def on_press(self, handler: Handler) -> Handler:
        """Register the handler of approval button presses (it asks for `press`)."""
        if self._press is not None:
            raise ValueError("a press handler is registered twice")
        self._press = Endpoint.of(handler)
        return handler

    def add(self, command: Command) -> None:
        if command.name in self._commands:
            raise ValueError(f"command /{command.name} is registered twice")
        self._commands[command.name] = command

    def include(self, group: CommandGroup) -> None:
        for command in group:
            self.add(command)
        if group._press is not None:
            if self._press is not None:
                raise ValueError("a press handler is registered twice")
            self._press = group._press

    def get(self, name: str) -> Command | None:
        return self._commands.get(name)

    def __iter__(self) -> Iterator[Command]:
        return iter(sorted(self._commands.values(), key=lambda c: c.name))

    def help_text(self) -> str:
        lines = [
            f"/{c.name} — {c.summary}"
            + (" (owner only)" if c.owner_only and "(owner" not in c.summary else "")
            for c in self
        ]
        return "Commands:\n" + "\n".join(lines)

    async def run(self, invocation: Invocation, deps: CommandDeps) -> str:
        """The answer to one command or press: the guards, the parsing, then its handler.
        Steward's own texts about commands (help, usage and examples, /start) are written as
        they are typed on the channel they go to; an answer that quotes someone's words (a
        memory, a reminder, an action waiting for approval) is never rewritten: a preview of
        an action must show exactly what would run."""
        channel = invocation.address.channel
        if invocation.press is not None:
            if self._press is None:
                return "This button is no longer active."
            try:
                return await self._press(invocation, deps, {})
            except UsageError as exc:
                return _shortened(exc.problem)
        call = invocation.call
        assert call is not None
        command = self.get(call.name)
        if command is None:
            near = difflib.get_close_matches(call.name, list(self._commands), n=1, cutoff=0.75)
            meant = f" Did you mean /{near[0]}?" if near else ""  # `/remnd 5m tea`
            said = f"I don't know /{call.name}.{meant}\n\n" + self.help_text()
            return self.typed(said, channel)
        if command.owner_only and not invocation.user.is_owner:
            return f"/{call.name} is for the owner only."
        try:
            reply = await command.run(invocation, deps)
        except UsageError as exc:
            return self.typed(command.help_text(exc.problem, channel), channel)
        return self.typed(reply, channel) if command.name in _ALL_OURS else reply

    def typed(self, text: str, channel: str) -> str:
        """`text`, Steward's own, with command names as they are typed on `channel`."""
        return for_channel(text, channel, self._commands)
