"""The console channel: a terminal chat with the owner, on the same core as every other channel.

On a terminal it is interactive, through prompt_toolkit: the `you>` prompt stays below whatever
is printed while you type (replies, warnings) and is redrawn after it; a line may be as long as
you like (the terminal's own 4,095-character line limit does not apply: keys are read one by
one); Ctrl-C stops Steward at once and Ctrl-D quits once every message has been answered. Log
lines do not land in the chat: they go to `<data dir>/steward.log`, and only warnings and errors
are shown (above the prompt).

When stdin is a pipe it reads one message per line in a daemon thread (which never holds up
shutdown) and, at end of input, finishes once every message it read has been answered.

Nothing reaches the terminal raw that could steer it: control characters (so ANSI sequences)
and bidi controls are printed as escapes, and an approval card is shown whole, escaped like on
every channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import logging.handlers
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from agent.cards import terminal_safe
from agent.types import Address, ApprovalPrompt, IncomingMessage
from bot.channels.base import Dispatch
from bot.channels.cards import console_card
from bot.channels.live_reply import ConsoleLive
from bot.owner import CONSOLE_IDENTITY

__all__ = ["CONSOLE_ADDRESS", "CONSOLE_IDENTITY", "TTY_LINE_LIMIT", "ConsoleChannel"]

CONSOLE_ADDRESS = Address("console", "console")

# A terminal in canonical mode hands over at most this many characters of one line (Linux N_TTY).
TTY_LINE_LIMIT = 4095
_CUT_NOTE = (
    "That line reached the terminal's limit of 4,095 characters, so its end may be missing. "
    "Send long text in several lines, or pipe it in."
)


class ConsoleChannel:
    name = "console"

    def __init__(
        self,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        *,
        log_file: Path | None = None,
        stream: bool | None = None,
    ) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._interactive = self._stdin.isatty() and self._stdout.isatty()
        self._stream = self._interactive if stream is None else stream
        """Replies printed as they grow (live_reply.py): on a terminal; piped, whole replies."""
        self._log_file = log_file
        self._reader: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._count = 0
        self._typed_decisions: set[str] = set()  # approval ids a typed line decides
        self._proxy: TextIO | None = None  # prompt_toolkit's stdout while the prompt is up
        self._restore_logs: Callable[[], None] | None = None
        self.finished = asyncio.Event()

    async def start(self, dispatch: Dispatch) -> None:
        if self._interactive:
            where = f" Logs: {self._log_file}." if self._log_file else ""
            self._write(
                "Steward is listening. Type /help for commands, Ctrl-D to quit, "
                f"Ctrl-C to stop.{where}"
            )
            self._reader = asyncio.create_task(self._read_terminal(dispatch))
        else:
            self._reader = asyncio.create_task(self._read_pipe(dispatch))

    def _submit(self, line: str, dispatch: Dispatch) -> None:
        text = line.strip()
        if not text:
            return
        self._count += 1
        if text.startswith(("/approve", "/deny")):
            self._typed_decisions.update(text.lower().split()[1:])
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

    async def _drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _read_terminal(self, dispatch: Dispatch) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.input import create_input
        from prompt_toolkit.output import create_output
        from prompt_toolkit.patch_stdout import patch_stdout

        output = create_output(self._stdout)
        if hasattr(output, "enable_cpr"):  # a one-line prompt needs no cursor-position probe
            output.enable_cpr = False
        session: PromptSession[str] = PromptSession(input=create_input(self._stdin), output=output)
        interrupted = False
        try:
            with patch_stdout(), self._logs_kept_out():
                self._proxy = sys.stdout
                while True:
                    try:
                        # handle_sigint=False: prompt_toolkit would replace (and then remove)
                        # the SIGINT handler `run` installed; Ctrl-C is a key here anyway.
                        line = await session.prompt_async("you> ", handle_sigint=False)
                    except KeyboardInterrupt:  # Ctrl-C: the terminal is raw, no SIGINT came
                        interrupted = True
                        break
                    except EOFError:  # Ctrl-D
                        break
                    self._submit(line, dispatch)
                if not interrupted:
                    await self._drain()
        finally:
            self._proxy = None
            self.finished.set()
        if interrupted:
            # The whole process stops, as Ctrl-C does anywhere else: `run` handles SIGINT.
            signal.raise_signal(signal.SIGINT)

    async def _read_pipe(self, dispatch: Dispatch) -> None:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue()

        if isinstance(self._stdin, io.TextIOWrapper):
            # a byte the locale cannot decode is shown as U+FFFD: read strictly, one such byte
            # ended the input as if it were over, every line of it unanswered (R141)
            with contextlib.suppress(ValueError, OSError):
                self._stdin.reconfigure(errors="replace")

        def pump() -> None:  # a daemon thread: a blocked read never holds up the exit
            try:
                for line in iter(self._stdin.readline, ""):
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except (OSError, ValueError, RuntimeError):  # closed stream or loop
                pass
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(lines.put_nowait, None)

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        tty = self._stdin.isatty()
        try:
            while (line := await lines.get()) is not None:
                if tty and len(line.rstrip("\n")) >= TTY_LINE_LIMIT - 1:
                    self._write(f"steward> {_CUT_NOTE}")
                self._submit(line, dispatch)
            await self._drain()
        finally:
            self.finished.set()

    @contextlib.contextmanager
    def _logs_kept_out(self) -> Iterator[None]:
        """While the prompt is up, log records go to the log file (at the configured level) and
        only warnings and errors reach the terminal, printed above the prompt."""
        root = logging.getLogger()
        mine = [
            h
            for h in root.handlers
            if type(h) is logging.StreamHandler
            and getattr(h, "stream", None) in (sys.__stderr__, sys.__stdout__)
        ]
        added: list[logging.Handler] = []
        shown = logging.StreamHandler(sys.stderr)  # patch_stdout's proxy: above the prompt
        shown.setLevel(logging.WARNING)
        if mine:
            shown.setFormatter(mine[0].formatter)
        added.append(shown)
        if self._log_file is not None:
            with contextlib.suppress(OSError):
                self._log_file.parent.mkdir(parents=True, exist_ok=True)
                to_file = logging.handlers.RotatingFileHandler(
                    self._log_file, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
                )
                to_file.setFormatter(
                    logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
                )
                added.append(to_file)
        for handler in mine:
            root.removeHandler(handler)
        for handler in added:
            root.addHandler(handler)
        try:
            yield
        finally:
            # The prompt is gone, but Steward is still shutting down (and may still be
            # starting what it starts late): until stop(), records keep going to the file and
            # only warnings to the terminal, or they would be printed after the user quit.
            root.removeHandler(shown)
            shown.close()
            after = logging.StreamHandler(sys.__stderr__)
            after.setLevel(logging.WARNING)
            if mine:
                after.setFormatter(mine[0].formatter)
            root.addHandler(after)
            kept = [h for h in added if h is not shown] + [after]

            def restore() -> None:
                for handler in kept:
                    root.removeHandler(handler)
                    handler.close()
                for handler in mine:
                    root.addHandler(handler)

            self._restore_logs = restore

    async def stop(self) -> None:
        if self._restore_logs is not None:
            self._restore_logs()
            self._restore_logs = None
        if self._reader and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        # Messages still being answered end now, while the database is open (Ctrl-C during a
        # turn); their turns are marked interrupted at the next start.
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _write(self, text: str) -> None:
        out = self._proxy or self._stdout
        out.write(terminal_safe(text) + "\n")
        out.flush()

    def write_raw(self, text: str) -> bool:
        """Print part of a streamed reply, already made terminal-safe, with no line end added.
        While the prompt is up only whole lines can be printed above it: False then, unless
        `text` ends a line."""
        if self._proxy is not None and not text.endswith("\n"):
            return False
        out = self._proxy or self._stdout
        out.write(text)
        out.flush()
        return True

    def open_live(self, address: Address) -> ConsoleLive | None:
        return ConsoleLive(self) if self._stream else None

    async def send_text(self, address: Address, text: str) -> str | None:
        self._write(f"steward> {text}")
        return None

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        self._write(f"steward> {console_card(prompt)}")
        return prompt.approval_id  # so a decision made elsewhere is told here (R138)

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        """What came of a card: said here when it was decided elsewhere (the web console, an
        approver's chat); one decided by a line typed here is answered by that line."""
        if platform_message_id in self._typed_decisions:
            self._typed_decisions.discard(platform_message_id)
            return
        self._write(f"steward> {text}")

    async def show_typing(self, address: Address) -> None:
        return None
