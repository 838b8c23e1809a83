"""The console channel: a terminal chat with the owner, on the same core as every other channel.

Interactive on a terminal; when stdin is a pipe it reads one message per line and, at end of
input, finishes once every message it read has been answered. Nothing reaches the terminal raw
that could steer it: control characters (so ANSI sequences) and bidi controls are printed as
escapes, and an approval card is shown whole, escaped like on every channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TextIO

from agent.cards import terminal_safe
from agent.types import Address, ApprovalPrompt, IncomingMessage
from bot.channels.base import Dispatch
from bot.channels.cards import console_card
from memory.people import Identity

__all__ = ["CONSOLE_ADDRESS", "CONSOLE_IDENTITY", "ConsoleChannel"]

CONSOLE_IDENTITY = Identity("console", "owner")
CONSOLE_ADDRESS = Address("console", "console")


class ConsoleChannel:
    name = "console"

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._interactive = self._stdin.isatty() and self._stdout.isatty()
        self._reader: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._count = 0
        self.finished = asyncio.Event()

    async def start(self, dispatch: Dispatch) -> None:
        if self._interactive:
            self._write("Steward is listening. Type /help for commands, Ctrl-D to quit.")
        self._reader = asyncio.create_task(self._read(dispatch))

    async def _read(self, dispatch: Dispatch) -> None:
        try:
            while True:
                if self._interactive:
                    self._stdout.write("you> ")
                    self._stdout.flush()
                line = await asyncio.to_thread(self._stdin.readline)
                if not line:
                    break
                text = line.strip()
                if not text:
                    continue
                self._count += 1
                message = IncomingMessage(
                    sender=CONSOLE_IDENTITY,
                    address=CONSOLE_ADDRESS,
                    text=text,
                    platform_message_id=None,
                    sender_name="owner",
                )
                task = asyncio.create_task(dispatch(message))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
            if self._pending:
                await asyncio.gather(*self._pending, return_exceptions=True)
        finally:
            self.finished.set()

    async def stop(self) -> None:
        if self._reader and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def _write(self, text: str) -> None:
        self._stdout.write(terminal_safe(text) + "\n")
        self._stdout.flush()

    async def send_text(self, address: Address, text: str) -> str | None:
        self._write(f"steward> {text}")
        return None

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        self._write(f"steward> {console_card(prompt)}")
        return None

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        self._write(f"steward> {text}")

    async def show_typing(self, address: Address) -> None:
        return None
