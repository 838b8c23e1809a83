"""Files people send land in the workspace's `inbox/` between commands, never during one.

A command approved with `inbox/` empty on its card, or one a rule runs, must not find a file
that someone sent while it ran: a test runner globbing `test_*.py` ran a guest's file that
arrived a second after it started (R105). Hiding `inbox/` for the whole run made it read-only
to the command too, so an approved `cp report.pdf inbox/` failed (R109). Instead, the sandbox
holds the gate for the command's whole run, and a file that arrives meanwhile waits for it to
end before it is written; a command waits for a write already under way.

One gate per workspace, found by its path: the shell tool and the chat intake each know the
workspace, not each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["InboxGate", "gate_for"]


class InboxGate:
    def __init__(self) -> None:
        self._commands = 0
        self._writes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        loop = asyncio.get_running_loop()
        if self._changed is None or self._loop is not loop:  # a new loop: none of the old runs
            self._loop, self._changed = loop, asyncio.Condition()
            self._commands = self._writes = 0
        return self._changed

    @asynccontextmanager
    async def command(self) -> AsyncIterator[None]:
        """Held while a command runs (after any write under way has finished)."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: self._writes == 0)
            self._commands += 1
        try:
            yield
        finally:
            async with changed:
                self._commands -= 1
                changed.notify_all()

    @asynccontextmanager
    async def arrival(self) -> AsyncIterator[None]:
        """Held while a file is written into `inbox/`, once no command runs."""
        changed = self._condition()
        async with changed:
            await changed.wait_for(lambda: self._commands == 0)
            self._writes += 1
        try:
            yield
        finally:
            async with changed:
                self._writes -= 1
                changed.notify_all()


_GATES: dict[Path, InboxGate] = {}


def gate_for(workspace: Path) -> InboxGate:
    """The gate of the workspace at `workspace` (the same one for every spelling of it)."""
    key = workspace.resolve()
    gate = _GATES.get(key)
    if gate is None:
        gate = _GATES[key] = InboxGate()
    return gate
