"""Streamed replies: the model's answer shown while it grows; the final reply sent as ever.

A `ReplyStream` sits between the turn loop (it is the model's `StreamSink`) and a channel's
live message (`LivePreview`: a Telegram draft or edited message, a Slack stream, the console).
It buffers what the model writes and pushes the preview in the background, at most once per
`interval` of the platform, the first push `first_delay` after the first words (so an answer
complete within that window is simply sent, not previewed). The preview only grows: the text of
each step, and a short status line for each tool call in between.

The preview is a display, never the record: the final reply is stored and delivered once by the
courier, through `LivePreview.finish` (which turns the preview into the formatted reply) or, when
nothing was shown, the ordinary send. Trust: once the turn holds outside content nothing more is
shown (`stop`, called before the model reads it, so nothing shown came after it) and the preview
is taken down; the reply then goes out whole, link previews off, like every tainted reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from agent.model import BilledUnavailable, Model, ModelReply, ModelUnavailable, StreamBroken

__all__ = [
    "BROKEN_NOTE",
    "STATUS_MARK",
    "LivePreview",
    "LiveSource",
    "ReplyStream",
    "ask_streamed",
    "status_line",
    "steps_of",
]

log = logging.getLogger(__name__)

BROKEN_NOTE = (
    "(The model's stream broke off. I'm finishing the answer without streaming; nothing is lost.)"
)
STATUS_MARK = "⚙ Using "
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_.-]")


_STATUS_LINE = re.compile(rf"^{re.escape(STATUS_MARK)}(?:[A-Za-z0-9_.-]{{1,40}}|a tool)…$", re.M)


def status_line(tool: str) -> str:
    """The line a tool call shows in the preview (the name cut to what a tool name may hold)."""
    name = _TOOL_NAME.sub("", tool)[:40] or "a tool"
    return f"{STATUS_MARK}{name}…"


def steps_of(shown: str) -> list[str]:
    """The words of each step in a preview's text, as shown (blank lines and indentation
    kept), the tools' status lines between them left out: what the turn joins into its answer
    (R189: the console compared paragraphs stripped one by one, lost an indented line's
    indentation, and printed the whole reply again)."""
    return _STATUS_LINE.split(shown)


class LivePreview(Protocol):
    """One reply shown as it grows on a platform; made by the channel (`open_live`)."""

    interval: float
    """Seconds between two updates the platform tolerates (0: as text arrives)."""
    first_delay: float
    """Seconds after the first words before the first update (words arriving meanwhile join)."""
    refresh: float | None
    """Seconds after which an unchanged preview is shown again (a Telegram draft lapses after
    30 s: a slow tool call must not let it vanish); None: never."""

    async def show(self, text: str) -> None:
        """Show the preview so far (it only grows). Never raises: a platform that refuses an
        update (flood control, a network error) just shows less."""
        ...

    async def finish(self, text: str) -> str | None:
        """Turn the preview into the final, formatted reply `text` (split as every reply is);
        returns the platform id of the last part. Raises DeliveryError like `send_text`."""
        ...

    async def discard(self) -> None:
        """Take the preview down (the reply, if any, is sent the ordinary way). Never raises."""
        ...


class LiveSource(Protocol):
    """An outbox that can show a reply as it grows at an address (None where it cannot)."""

    def open_live(self, address: object) -> LivePreview | None: ...


class ReplyStream:
    """The turn's streamed reply: see the module docstring. Not thread-safe; one per turn."""

    def __init__(self, live: LivePreview, *, halt_timeout: float = 5.0) -> None:
        self._live = live
        self._halt_timeout = halt_timeout
        self._text = ""
        self._shown = ""
        self._gap = False
        self._open = True
        self._showing = False
        self._began = False
        """An update was sent: it may show though it never returned (R189: a first message
        the halt gave up on was made all the same, and left beside the reply for good)."""
        self._stopped = False
        self._handed = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_show = 0.0
        self.still_ours: Callable[[], Awaitable[bool]] | None = None
        """Asked before each update: False, and nothing more is shown and the preview is taken
        down (the chat was taken from its person mid-turn: R136)."""
        self.first_text_at: float | None = None
        """Loop time of the model's first words, for the bench."""
        self.first_shown_at: float | None = None
        """Loop time the first preview update returned."""

    # -- the model's side (StreamSink) ------------------------------------------------------

    def text(self, delta: str) -> None:
        if not self._open or not delta:
            return
        if self._gap:
            self._text += "\n\n"
            self._gap = False
        self._text += delta
        if self.first_text_at is None:
            self.first_text_at = asyncio.get_running_loop().time()
        self._kick()

    def tool(self, name: str) -> None:
        if not self._open:
            return
        self._text += ("\n\n" if self._text else "") + status_line(name)
        self._gap = True
        self._kick()

    # -- the turn loop's side ---------------------------------------------------------------

    def settle(self) -> None:
        """The answer is complete: no new update starts (the final reply follows at once)."""
        self._open = False
        self._wake.set()

    async def stop(self) -> None:
        """Outside content is about to be read: show nothing more and take the preview down."""
        if self._stopped:
            return
        self._stopped = True
        await self._halt()
        if self._began:
            await self._live.discard()

    async def broken(self) -> None:
        """The model's stream broke off: say so in the preview, then show nothing more (the
        step is asked again without streaming, and the final reply follows as usual)."""
        if not self._open:
            return
        self._text += ("\n\n" if self._text else "") + BROKEN_NOTE
        self._gap = False
        self._kick()
        await self._halt(flush=True)

    # -- the core's side --------------------------------------------------------------------

    async def handoff(self) -> LivePreview | None:
        """The live preview the final reply should replace, or None: no update was sent, or
        the preview was taken down (the reply goes the ordinary way)."""
        await self._halt()
        if self._stopped or not self._began or self._handed:
            return None
        self._handed = True
        return self._live

    async def close(self) -> None:
        """After delivery: a preview no final reply replaced (a turn that paused for approval
        with nothing to say) is taken down."""
        await self._halt()
        if self._began and not self._handed and not self._stopped:
            self._stopped = True
            await self._live.discard()

    # -- the pusher -------------------------------------------------------------------------

    def _kick(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._push_loop(), name="reply-stream")
        self._wake.set()

    async def _push_loop(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(self._live.first_delay)
        while self._open:
            if self._text != self._shown:
                await self._push(loop)
                await asyncio.sleep(self._live.interval)
                continue
            self._wake.clear()
            try:
                async with asyncio.timeout(self._live.refresh):
                    await self._wake.wait()
            except TimeoutError:
                if self._open and self._shown:
                    await self._push(loop)

    async def _push(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.still_ours is not None and not await self.still_ours():
            self._open, self._stopped = False, True
            if self._began:
                await self._live.discard()
            return
        snapshot = self._text
        self._showing = self._began = True
        try:
            await self._live.show(snapshot)
        except Exception:  # a display must never fail the turn
            log.warning("a live preview update failed; no more updates", exc_info=True)
            self._open = False
        finally:
            self._showing = False
        self._shown = snapshot
        self._last_show = loop.time()
        if self.first_shown_at is None:
            self.first_shown_at = self._last_show

    async def _halt(self, *, flush: bool = False) -> None:
        """Stop pushing; an update under way is let finish (within `halt_timeout`; past it,
        cancelled, still counted as shown: the live waits for what it made), so the final reply
        never lands before a preview update. `flush` pushes what is pending first, after the
        platform's interval."""
        self._open = False
        task, self._task = self._task, None
        if task is not None and not task.done():
            if not self._showing:
                task.cancel()
            done, _ = await asyncio.wait({task}, timeout=self._halt_timeout)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if flush and self._text != self._shown and task is not None:
            loop = asyncio.get_running_loop()
            wait = self._last_show + self._live.interval - loop.time() if self._shown else 0.0
            if wait > 0:
                await asyncio.sleep(wait)
            await self._push(loop)


async def ask_streamed(
    model: Model, stream: ReplyStream | None, **request: Any
) -> tuple[ModelReply, ReplyStream | None]:
    """One model call: streamed into `stream` where the model streams, else `complete`. A
    stream that breaks off is asked again unstreamed, the owner told nothing is lost; returns
    the reply and the stream to use for the next step (None once it broke). The reply's usage
    then holds both calls' (the API bills the broken stream for what it had reported); if the
    retry fails too, BilledUnavailable carries the broken stream's (R199: it was lost)."""
    streaming = getattr(model, "stream", None)
    if stream is None or streaming is None:
        return await model.complete(**request), None
    try:
        reply: ModelReply = await streaming(**request, sink=stream)
    except StreamBroken as exc:
        log.warning("%s; asking again without streaming", exc)
        await stream.broken()
        try:
            again = await model.complete(**request)
        except ModelUnavailable as failed:
            raise BilledUnavailable.after(failed, exc.usage) from failed
        return replace(again, usage=exc.usage + again.usage), None
    if reply.stop_reason != "tool_use" or not reply.tool_calls:
        stream.settle()
    return reply, stream
