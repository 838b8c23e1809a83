"""A reply shown as it grows, per platform (the `LivePreview`s of agent/streaming.py).

- Telegram, private chats: `sendMessageDraft` (Bot API 9.5+: an ephemeral preview that animates
  under one `draft_id`; the final reply is then sent as a message). Elsewhere, or where the
  server does not offer drafts: one message sent and edited (`editMessageText`), the final reply
  edited into it (its first part; the rest sent after it). Updates at most every 1.1 s (drafts)
  or 1.5 s (edits: streamers that edited twice a second met 429s of minutes); a 429 silences the
  preview for its `retry_after`, it never delays the turn.
- Slack, direct messages (in the thread of the message answered): `chat.startStream` /
  `appendStream` / `stopStream`; elsewhere, or where the workspace refuses streams, one message
  posted and `chat.update`d. The final reply is then posted the ordinary way, the preview taken
  down (`chat.delete`), so the record is a normal, formatted message.
- Console: the text printed as it arrives; the final reply printed only where it is not what
  was just printed.

Previews show trusted turns only (agent/streaming.py). Edits and posts here are sent with link
previews and unfurls off; Slack's streaming methods take no such flags, and what they stream
writes each link as the final post does, "label (url)", never a label hiding its target
(slack_stream.py, R202).

(Some 450 lines: each platform's preview keeps its first message shielded, so one answered late
is still taken down, and a Telegram edit that may land late is never finished over: R189, R228.)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from agent.cards import terminal_safe
from agent.streaming import steps_of
from agent.types import Address
from bot.channels.formatting import plain_fallback, slack_chunks, telegram_chunks
from bot.channels.slack_stream import stream_markdown
from bot.channels.telegram_send import chat_id_of, may_have_sent, thread_of

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.channels.telegram_api import TelegramApi
    from bot.channels.telegram_send import TelegramSender

__all__ = ["ConsoleLive", "SlackLive", "TelegramLive", "Terminal"]

log = logging.getLogger(__name__)


class Terminal(Protocol):
    """What a console preview needs of the console channel."""

    def write_raw(self, text: str) -> bool: ...

    async def send_text(self, address: Address, text: str) -> object: ...


FIRST_DELAY = 0.1
"""Seconds after the first words before the first update: an answer complete by then is sent
whole, and the first words still show well within 300 ms."""
_draft_ids = itertools.count(random.randint(1, 2**30))
_SLACK_STREAM_MAX = 11_000  # chat.*Stream take markdown_text up to 12,000 characters
LANDING_WAIT = 5.0
"""Seconds the final reply waits, past the stream's halt, for a first preview message still on
its way (R189; Slack's too, R228); one later than that is taken down when it lands."""


def _now() -> float:
    return asyncio.get_running_loop().time()


def _formatting_refused(exc: Exception) -> bool:
    """A refusal for what the HTML holds ("can't parse entities", "entity URL … is invalid"),
    as telegram_send's `_formatting_refused` judges a reply's (R189)."""
    error = str(exc).lower()
    return "entit" in error or "url" in error


def _retrieved(task: asyncio.Task[None]) -> None:
    """Marks a shielded call's failure seen: the one awaiting it may have been cancelled."""
    if not task.cancelled():
        task.exception()


class TelegramLive:
    """A draft in a private chat, else one edited message. `on_no_drafts` is told when the Bot
    API server does not offer drafts, so the channel stops trying them; a draft refused for
    anything else (its formatting: then plain) is this reply's alone (R189: one link Telegram
    would not take turned drafts off until restart)."""

    first_delay = FIRST_DELAY

    def __init__(
        self,
        api: Callable[[], TelegramApi],
        sender: TelegramSender,
        address: Address,
        *,
        drafts: bool,
        on_no_drafts: Callable[[], None] = lambda: None,
    ) -> None:
        self._api = api
        self._sender = sender
        self._address = address
        self._draft = drafts
        self._draft_id = next(_draft_ids)
        self._on_no_drafts = on_no_drafts
        self._message_id: int | None = None
        self._opening: asyncio.Task[None] | None = None
        self._orphaned = False
        self._edit_unsure = False
        """An edit went unanswered (the halt gave up on it): it may still land (R228)."""
        self._quiet_until = 0.0
        self._last = 0.0
        self.interval = 1.1 if drafts else 1.5
        self.refresh: float | None = 20.0 if drafts else None  # a draft lapses after 30 s

    @property
    def mode(self) -> str:
        return "draft" if self._draft else "edit"

    async def show(self, text: str) -> None:
        from bot.channels.telegram_api import (
            TelegramBadRequest,
            TelegramError,
            TelegramNotFound,
            TelegramRetryAfter,
        )

        chunks = telegram_chunks(text)  # none yet for an opening code fence alone ("```py")
        if _now() < self._quiet_until or not chunks:
            return
        chunk = chunks[-1]  # past 4096 characters the preview shows the tail
        try:
            try:
                await self._put(chunk.markup, html=True)
            except TelegramBadRequest as exc:
                if not _formatting_refused(exc):
                    raise
                await self._put(plain_fallback(chunk)[-4096:], html=False)
        except TelegramRetryAfter as exc:
            log.info("Telegram flood control: preview quiet for %s s", exc.retry_after)
            self._quiet_until = _now() + exc.retry_after
        except (TelegramNotFound, TelegramBadRequest) as exc:
            if not self._draft or "not modified" in str(exc).lower():
                log.debug("Telegram preview refused: %s", exc)
                return
            self._draft = False
            self.interval, self.refresh = 1.5, None
            if isinstance(exc, TelegramNotFound) or "method not found" in str(exc).lower():
                log.info("Telegram drafts unavailable (%s); editing a message instead", exc)
                self._on_no_drafts()
            else:
                log.info("Telegram refused a draft (%s); this reply edits a message", exc)
            await self.show(text)
        except TelegramError as exc:
            log.debug("Telegram preview not shown: %s", exc)
        finally:
            self._last = _now()

    async def _put(self, text: str, *, html: bool) -> None:
        from bot.channels.telegram_send import NO_PREVIEW

        api = self._api()
        chat = chat_id_of(self._address.chat_id)
        mode = "HTML" if html else None
        if self._draft:
            await api.call(
                "sendMessageDraft",
                chat_id=int(chat),
                draft_id=self._draft_id,
                text=text,
                parse_mode=mode,
                message_thread_id=thread_of(self._address),
            )
        elif self._message_id is None:
            # shielded: a halt that gives up on it (a slow answer) still learns its id (R189)
            if self._opening is None or self._opening.done():
                self._opening = asyncio.create_task(self._open(text, mode))
                self._opening.add_done_callback(_retrieved)
            await asyncio.shield(self._opening)
        else:
            from bot.channels.telegram_api import TelegramError

            self._edit_unsure = True  # stays so where the halt cancels it under way
            try:
                await api.call(
                    "editMessageText",
                    chat_id=chat,
                    message_id=self._message_id,
                    text=text,
                    parse_mode=mode,
                    link_preview_options=NO_PREVIEW,
                )
            except TelegramError as exc:
                self._edit_unsure = may_have_sent(exc)
                raise
            self._edit_unsure = False

    async def _open(self, text: str, mode: str | None) -> None:
        """The preview's message: sent, its id kept; taken down at once where the reply went
        out without it (it landed after `LANDING_WAIT`)."""
        from bot.channels.telegram_send import NO_PREVIEW, message_id_of

        sent = await self._api().call(
            "sendMessage",
            chat_id=chat_id_of(self._address.chat_id),
            text=text,
            parse_mode=mode,
            message_thread_id=thread_of(self._address),
            link_preview_options=NO_PREVIEW,
        )
        self._message_id = message_id_of(sent)
        if self._orphaned:
            message_id, self._message_id = self._message_id, None
            await self._sender.delete(self._address, message_id)

    async def _landed(self) -> None:
        """Waits, within `LANDING_WAIT`, for a preview message still on its way (R189)."""
        opening = self._opening
        if opening is not None and not opening.done():
            await asyncio.wait({opening}, timeout=LANDING_WAIT)
            self._orphaned = not opening.done()

    async def finish(self, text: str) -> str | None:
        await self._landed()
        if self._message_id is None:  # a draft (it gives way to the message) or nothing shown
            return await self._sender.send_text(self._address, text)
        if self._edit_unsure:
            # R228: a preview edit Telegram carried out after the final one left the reply cut
            # short for good; a deleted preview takes no late edit, so the reply goes anew
            await self.discard()
            return await self._sender.send_text(self._address, text)
        wait = self._last + self.interval - _now()
        if wait > 0:  # the final edit keeps to the same pace as the preview's
            await asyncio.sleep(wait)
        return await self._sender.finish_live(self._address, text, self._message_id)

    async def discard(self) -> None:
        await self._landed()
        if self._message_id is None:
            return  # a draft lapses by itself once the reply is sent
        message_id, self._message_id = self._message_id, None
        await self._sender.delete(self._address, message_id)


class SlackLive:
    """A Slack stream (direct messages, in a thread), else one posted and updated message;
    `send_text` is the channel's ordinary send for the final reply. `client` answers a 429 at
    once (no retry handler: R228), so a rate-limited preview goes quiet rather than hold the
    final reply back while the SDK sleeps out Retry-After."""

    first_delay = FIRST_DELAY

    def __init__(
        self,
        client: AsyncWebClient,
        send_text: Callable[[Address, str], Awaitable[str | None]],
        address: Address,
        *,
        stream: bool,
        takes_down: AsyncWebClient | None = None,
    ) -> None:
        self._client = client
        self._takes_down = takes_down or client
        """Stops and deletes: the channel's client, which waits out a 429 (R229: through the
        previews' client a delete rate-limited past 20 s gave up, the preview left for good)."""
        self._send_text = send_text
        self._address = address
        self._stream = stream and bool(address.thread_id)
        self._ts: str | None = None
        self._streaming = False
        self._opening: asyncio.Task[None] | None = None
        self._orphaned = False
        self._sent = ""
        self._quiet_until = 0.0
        self.interval = 0.7 if self._stream else 1.2
        self.refresh: float | None = None

    @property
    def mode(self) -> str:
        return "stream" if self._stream else "update"

    async def show(self, text: str) -> None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        if _now() < self._quiet_until or not text.strip():
            return
        try:
            if self._stream:
                await self._append(text)
            else:
                await self._update(text)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error == "ratelimited":
                retry = float(exc.response.headers.get("Retry-After", 5) or 5)
                self._quiet_until = _now() + retry
            elif self._stream and self._ts is None:
                log.info("Slack streams unavailable (%s); updating a message instead", error)
                self._stream = False
                self.interval = 1.2
                await self.show(text)
            else:
                log.debug("Slack preview not shown: %s", error)
        except (TimeoutError, SlackClientError, OSError) as exc:
            log.debug("Slack preview not shown: %s", exc)

    async def _append(self, text: str) -> None:
        channel = self._address.chat_id
        shown = stream_markdown(text)  # links show their target, as in the final post (R202)
        if len(shown) > _SLACK_STREAM_MAX or not shown.startswith(self._sent):
            return  # past what a stream takes: the final reply shows the rest
        if self._ts is None:
            if not shown.strip():
                return  # nothing that can be shown yet (a link being written)
            thread = str(self._address.thread_id)
            await self._opened(
                lambda: self._client.chat_startStream(
                    channel=channel, thread_ts=thread, markdown_text=shown
                ),
                streaming=True,
            )
        elif delta := shown[len(self._sent) :]:
            await self._client.chat_appendStream(channel=channel, ts=self._ts, markdown_text=delta)
        self._sent = shown

    async def _update(self, text: str) -> None:
        chunks = slack_chunks(text)  # none yet for an opening code fence alone ("```py")
        if not chunks:
            return
        markup = chunks[-1].markup
        channel = self._address.chat_id
        flags = {"unfurl_links": False, "unfurl_media": False}
        if self._ts is None:
            thread = self._address.thread_id
            await self._opened(
                lambda: self._client.chat_postMessage(
                    channel=channel, text=markup, thread_ts=thread, **flags
                ),
                streaming=False,
            )
        else:
            await self._client.chat_update(channel=channel, ts=self._ts, text=markup, **flags)

    async def _opened(self, call: Callable[[], Awaitable[Any]], *, streaming: bool) -> None:
        """The preview's first post (or stream), shielded: a halt that gives up on it (a slow
        answer) still learns its ts, and one landing after the reply is taken down (R228:
        R189's Telegram fix, which Slack lacked; its post or stream stayed beside the reply)."""
        if self._opening is None or self._opening.done():
            self._opening = asyncio.create_task(self._open(call, streaming=streaming))
            self._opening.add_done_callback(_retrieved)
        await asyncio.shield(self._opening)

    async def _open(self, call: Callable[[], Awaitable[Any]], *, streaming: bool) -> None:
        opened = await call()
        self._ts, self._streaming = str(opened["ts"]), streaming
        if self._orphaned:
            await self._take_down()

    async def _landed(self) -> None:
        """Waits, within `LANDING_WAIT`, for a first post still on its way (R228)."""
        opening = self._opening
        if opening is not None and not opening.done():
            await asyncio.wait({opening}, timeout=LANDING_WAIT)
            self._orphaned = not opening.done()

    async def finish(self, text: str) -> str | None:
        await self.discard()
        return await self._send_text(self._address, text)

    async def discard(self) -> None:
        await self._landed()
        await self._take_down()

    async def _take_down(self) -> None:
        from slack_sdk.errors import SlackApiError, SlackClientError

        ts, self._ts = self._ts, None
        if ts is None:
            return
        channel = self._address.chat_id
        failed = (SlackApiError, SlackClientError, OSError, asyncio.TimeoutError)
        if self._streaming:
            self._streaming = False
            with contextlib.suppress(*failed):  # a stream Slack ended itself is still deleted
                await self._takes_down.chat_stopStream(channel=channel, ts=ts)
        for attempt in range(3):  # R106: a failed stopStream left the copy beside the reply
            try:
                await self._takes_down.chat_delete(channel=channel, ts=ts)
                return
            except SlackApiError as exc:
                if exc.response.get("error") != "ratelimited" or attempt == 2:
                    return
                await asyncio.sleep(min(10.0, float(exc.response.headers.get("Retry-After", 1))))
            except failed:
                return


class ConsoleLive:
    """The console: what the model writes is printed as it arrives (while the prompt is up,
    line by line: only whole lines can be printed above it)."""

    interval = 0.0
    first_delay = 0.0
    refresh = None
    mode = "console"

    def __init__(self, console: Terminal) -> None:
        self._console = console
        self._printed = ""

    def _print(self, text: str) -> bool:
        prefix = "" if self._printed else "steward> "
        if self._console.write_raw(prefix + terminal_safe(text)):
            self._printed += text
            return True
        return False

    async def show(self, text: str) -> None:
        if not text.startswith(self._printed) or text == self._printed:
            return
        new = text[len(self._printed) :]
        if not self._print(new) and (cut := new.rfind("\n")) >= 0:
            self._print(new[: cut + 1])

    async def finish(self, text: str) -> str | None:
        printed = self._printed
        # the answer is every step's words, printed between the tools' status lines, joined as
        # the turn joins them (agent/turn.py `_joined`: each step stripped, none empty: R149);
        # an indented line inside a step stays indented (R189: stripped, it printed all twice)
        steps = [step.strip() for step in steps_of(printed)]
        words = "\n\n".join(step for step in steps if step)
        last = steps[-1] if len(steps) > 1 else ""  # or the last step's alone, after a tool
        for shown in (words, last):
            if shown and text.startswith(shown):
                blanks = printed[len(printed.rstrip()) :]  # already printed after the words
                rest = text[len(shown) :]
                rest = rest[len(blanks) :] if blanks and rest.startswith(blanks) else rest
                if rest or not printed.endswith("\n"):
                    self._print(rest + "\n")
                return None
        if printed and not printed.endswith("\n"):
            self._print("\n")
        await self._console.send_text(Address("console", "console"), text)
        return None

    async def discard(self) -> None:
        if self._printed and not self._printed.endswith("\n"):
            self._print("\n")
