"""Everything Steward sends or edits on Telegram, with flood control and retries.

The model's Markdown becomes Telegram HTML, split on paragraph boundaries below 4096 characters;
a part Telegram rejects for its entities is sent again as plain text. 429 `retry_after` is
waited out, network and server errors are retried with backoff, and what still fails raises
`DeliveryError` so the courier keeps it for redelivery. Every message is sent and edited with
link previews off: Telegram's preview fetcher would otherwise request any URL the model writes
(a zero-click way to carry data out).

A press on a card in a group is answered to the presser alone while its handling claims it
(`PressAnswer`, R201): a refusal, a wrong card or "already decided" goes back as the press's
`answerCallbackQuery` alert, never posted to the whole group; once the press decides (before
the approved call runs: R203, its post to this group went to the presser), what follows is for
everyone. A press is answered once, whatever happens: words for a press already answered empty
(it waited past PRESS_WAIT) are logged and dropped, never posted to the group (R236).

A message whose send got no answer once the request had gone (the connection broke or timed
out) may be in the chat already: it is sent again after `SENT_AGAIN`, here or on a later try,
so a copy is always marked (R198: two unmarked copies). Only a connection never made, or an
answer from Telegram saying it failed, is sent again without a word.

A preview that flood control kept from being taken down longer than a call waits is taken
down once it is over, in the background (R228).

(Some 530 lines: every call that puts something in a chat shares the flood control, the
retries, the chat a group moved to and the press a word may answer.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from agent.delivery import SENT_AGAIN, Resumed, Throttled
from agent.outbox import DeliveryError, Parts, parts_of
from agent.types import Address, ApprovalPrompt
from bot.channels.formatting import (
    Chunk,
    plain_fallback,
    split_plain,
    telegram_blank,
    telegram_chunks,
    utf16_len,
)
from bot.channels.telegram_api import (
    TelegramApi,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramError,
    TelegramForbidden,
    TelegramMigrated,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from bot.channels.telegram_cards import telegram_card

__all__ = [
    "ALERT_CHARS",
    "NO_PREVIEW",
    "PRESS",
    "PressAnswer",
    "TelegramSender",
    "chat_id_of",
    "may_have_sent",
    "message_id_of",
    "thread_of",
]

log = logging.getLogger(__name__)

NO_PREVIEW = {"is_disabled": True}
"""`link_preview_options` on every message sent or edited."""
T = TypeVar("T")
_NOT_CONNECTED = re.compile(r"^\w+: Client(Connector|ProxyConnection)\w*Error: ")
"""telegram_api's words for a connection that was never made (aiohttp's ClientConnectorError
and its kinds: refused, no route, DNS, TLS): the request cannot have reached Telegram."""


_HOPELESS = (
    "chat not found",
    "not enough rights to send",  # the bot muted in a group: "... text messages to the chat"
    "have no rights to send a message",
    "need administrator rights in the channel chat",
    "chat_write_forbidden",
    "chat_send_plain_forbidden",
    "chat_restricted",
    "message thread not found",  # the forum topic deleted
    "topic_deleted",
    "topic_closed",
    "peer_id_invalid",
    "channel_private",
    "message text is empty",  # the text, not the chat: Telegram counts it as nothing (R258)
)
"""Telegram's words (a 400's description, lowercased) for a message refused however often it is
sent: the chat refuses the bot until someone in it changes that, or the text is empty."""


ALERT_CHARS = 200
"""The most an answerCallbackQuery text may hold."""
LATER_TRIES = 3
"""Deletes of a preview kept up by flood control, each after the wait Telegram asked (R228)."""


@dataclass
class PressAnswer:
    """A press on a card in a group while the router handles it (R201): until it decides
    something, what goes back to its chat answers the press, to the presser alone. Telegram
    takes one answer per press: `answered` once it went (empty, when nothing was to be said)."""

    query_id: str
    address: Address
    answered: bool = False
    decided: bool = False
    done: bool = False

    def claims(self, address: Address) -> bool:
        """Whether what goes to `address` now is the press's answer. Answered already (it
        waited past PRESS_WAIT behind the chat's running turn), a press that decided nothing
        still claims its words, dropped rather than posted to the group (R236)."""
        return not (self.done or self.decided) and address == self.address

    def decide(self) -> None:
        """The press decided its card, before the approved call runs: what that call sends
        here (a post to this very group) is for the chat, not the presser (R203)."""
        self.decided = True


PRESS: contextvars.ContextVar[PressAnswer | None] = contextvars.ContextVar(
    "telegram_press", default=None
)
"""Set in the task that dispatches a press in a group (tasks it starts get the same answer)."""


def _alert(text: str) -> str:
    """`text` as an alert shows it: plain, within ALERT_CHARS."""
    plain = "\n\n".join(plain_fallback(chunk) for chunk in telegram_chunks(text)).strip()
    return plain if len(plain) <= ALERT_CHARS else plain[: ALERT_CHARS - 1] + "…"


def _refused(exc: TelegramError) -> DeliveryError:
    """The DeliveryError for `exc`: permanent when the chat refuses the bot for good (blocked,
    removed from the group, muted there, the chat or its forum topic gone or closed) or the text
    is one Telegram counts as empty, so it is not tried again and again for a week and the owner
    is told at once; `Throttled` for flood control that asked for a longer wait than a send
    waits, so redelivery waits it out."""
    if isinstance(exc, TelegramRetryAfter):
        return Throttled(f"Telegram: {exc}", retry_after=exc.retry_after)
    error = str(exc).lower()
    gone = isinstance(exc, TelegramForbidden) or (
        isinstance(exc, TelegramBadRequest) and any(words in error for words in _HOPELESS)
    )
    return DeliveryError(f"Telegram: {exc}", permanent=gone)


def may_have_sent(exc: TelegramError) -> bool:
    """Whether a call that failed may have been carried out all the same: no answer came after
    the request went (the connection broke or timed out, or what came was not Telegram's)."""
    return isinstance(exc, TelegramNetworkError) and not _NOT_CONNECTED.match(str(exc))


def chat_id_of(chat_id: str) -> int | str:
    """A chat id as the Bot API takes it: a number (groups are negative), else as it is."""
    return int(chat_id) if re.fullmatch(r"-?\d+", chat_id) else chat_id


def thread_of(address: Address) -> int | None:
    """The forum topic an address names, if any."""
    return int(address.thread_id) if address.thread_id and address.thread_id.isdigit() else None


def message_id_of(sent: Any) -> int:
    """The message_id of a sent Message; a malformed answer is a network failure."""
    message_id = sent.get("message_id") if isinstance(sent, dict) else None
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise TelegramNetworkError("sendMessage: the answer has no message_id")
    return message_id


class TelegramSender:
    """The outgoing half of the Telegram channel; `api` gives the started client (or raises
    `DeliveryError` before the channel started)."""

    def __init__(
        self,
        api: Callable[[], TelegramApi],
        *,
        attempts: int,
        backoff: float,
        max_retry_after: float,
        on_moved: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        """`on_moved(old, new)`: a send learnt that a group became a supergroup."""
        self._api = api
        self._on_moved = on_moved
        self._moved: dict[str, int] = {}  # a group's old id -> its supergroup's
        self._attempts = attempts
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self._partial: dict[tuple[Address, str], int] = {}
        # messages a send may have delivered without an answer: True while SENT_AGAIN is owed
        self._unsure: dict[tuple[Address, str], bool] = {}
        self._later: set[asyncio.Task[None]] = set()  # previews taken down after flood control

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One Bot API call with Telegram's flood control and network trouble handled."""

        def retryable(exc: BaseException) -> bool:
            if isinstance(exc, TelegramRetryAfter):
                return exc.retry_after <= self._max_retry_after
            if isinstance(exc, TelegramEntityTooLarge):
                return False
            return isinstance(exc, TelegramNetworkError | TelegramServerError)

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, TelegramRetryAfter):
                log.warning("Telegram flood control: waiting %s s as asked", exc.retry_after)
                return float(exc.retry_after)
            return min(30.0, self._backoff * 2 ** (state.attempt_number - 1))

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            wait=wait,
            stop=stop_after_attempt(self._attempts),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await make()
        raise AssertionError("unreachable")  # pragma: no cover

    def follow(self, old: str, new: int) -> None:
        """Send to `new` what is addressed to the group `old` (it became that supergroup)."""
        self._moved[old] = new

    def _chat(self, address: Address) -> int | str:
        """The Bot API chat id for an address, a group that moved to its supergroup."""
        return self._moved.get(address.chat_id) or chat_id_of(address.chat_id)

    async def _send(self, address: Address, text: str, *, html: bool, markup: Any = None) -> int:
        """Send one message; its message_id. After a try whose answer was lost, the next goes
        after SENT_AGAIN (`_once`). A group that became a supergroup is followed, and told
        (`on_moved`): later sends go there at once (R201: each paid a 400 on the old id)."""
        chat_id: int | str = self._chat(address)
        key = (address, text)
        for _ in range(2):
            try:
                sent = await self._call(
                    lambda chat_id=chat_id: self._once(  # type: ignore[misc]
                        key, chat_id, html=html, markup=markup
                    )
                )
            except TelegramMigrated as exc:
                chat_id = exc.migrate_to_chat_id
                await self._moved_to(str(address.chat_id), chat_id)
                continue
            except TelegramError as exc:
                if _refused(exc).permanent:
                    self._unsure.pop(key, None)
                raise
            self._unsure.pop(key, None)
            return sent
        raise DeliveryError(f"Telegram chat {address.chat_id} moved twice")

    async def _moved_to(self, old: str, new: int) -> None:
        self.follow(old, new)
        if self._on_moved is not None:
            try:
                await self._on_moved(old, str(new))
            except Exception:  # the send goes on: the chat's row is re-pointed at the next word
                log.exception("Telegram: recording that chat %s moved to %s failed", old, new)

    async def _once(
        self, key: tuple[Address, str], chat_id: int | str, *, html: bool, markup: Any
    ) -> int:
        """One sendMessage, after SENT_AGAIN where an earlier one may have arrived unanswered."""
        api = self._api()
        address, text = key
        if self._unsure.get(key):
            await api.call(
                "sendMessage",
                chat_id=chat_id,
                text=SENT_AGAIN,
                message_thread_id=thread_of(address),
                link_preview_options=NO_PREVIEW,
            )
            self._unsure[key] = False
        try:
            sent = await api.call(
                "sendMessage",
                chat_id=chat_id,
                text=text,
                parse_mode="HTML" if html else None,
                message_thread_id=thread_of(address),
                reply_markup=markup,
                link_preview_options=NO_PREVIEW,
            )
            return message_id_of(sent)
        except TelegramError as exc:
            if may_have_sent(exc):
                self._unsure[key] = True
            raise

    async def _send_chunk(self, address: Address, chunk: Chunk) -> str:
        try:
            return str(await self._send(address, chunk.markup, html=True))
        except TelegramBadRequest as exc:
            # the HTML refused for what it holds (R137: "entity URL … is invalid" left the
            # owner nothing, retried for a week); any other refusal is the chat's
            if not _formatting_refused(exc):
                raise
            log.warning(
                "Telegram rejected a reply's formatting (%s); sending it as plain text", exc
            )
        last = ""
        for piece in split_plain(plain_fallback(chunk), 4096, utf16_len):
            if not telegram_blank(piece):  # R258: refused as empty
                last = str(await self._send(address, piece, html=False))
        return last

    async def answer_press(self, press: PressAnswer, text: str | None) -> None:
        """Answer a press (once): `text` as an alert to the presser alone, or nothing said but
        the button's spinner stopped."""
        if press.answered:
            if text:  # R236: too late for an alert, and not for the group either
                log.info("a late answer to a press in %s was dropped: %.80s", press.address, text)
            return
        press.answered = True
        with contextlib.suppress(TelegramError, DeliveryError):
            await self._api().call(
                "answerCallbackQuery",
                callback_query_id=press.query_id,
                text=_alert(text) if text else None,
                show_alert=True if text else None,
            )

    async def send_text(self, address: Address, text: str) -> str | None:
        """Send `text`, in several messages when long; a failure part-way is resumed by the
        redelivery from the part that failed: the parts before it are not sent twice, after a
        restart too where the courier keeps count of them with the message (`Parts`). The
        courier's note for a resumed message goes just before the first part left, and not
        at all when none is (`Resumed`, R189). What answers a press in a group goes to the
        presser alone (`PressAnswer`)."""
        press = PRESS.get()
        if press is not None and press.claims(address):
            await self.answer_press(press, text)
            return None
        chunks = telegram_chunks(text) or [Chunk("(empty)", "(empty)")]
        key = (address, text)
        kept = parts_of(text)
        # parts a failed earlier attempt already delivered
        done = kept.done if kept is not None else self._partial.get(key, 0)
        last: str | None = None
        chunk: Chunk | None = None
        try:
            for index, chunk in enumerate(chunks[done:], start=done):
                if isinstance(kept, Resumed):
                    await kept.head()
                last = await self._send_chunk(address, chunk)
                await self._delivered(key, kept, index + 1)
        except TelegramError as exc:
            refused = _refused(exc)
            if refused.permanent:  # never tried again
                self._partial.pop(key, None)
            else:
                refused.unsure = chunk is not None and self._owes_note(address, chunk)
            raise refused from exc
        self._partial.pop(key, None)
        return last

    def _owes_note(self, address: Address, chunk: Chunk) -> bool:
        """Whether the chunk whose send failed may be in the chat all the same (a try's answer
        was lost): SENT_AGAIN is owed before it, as HTML or as the plain text it fell back to."""
        texts = [chunk.markup, *split_plain(plain_fallback(chunk), 4096, utf16_len)]
        return any(self._unsure.get((address, text)) for text in texts)

    async def _delivered(self, key: tuple[Address, str], kept: Parts | None, parts: int) -> None:
        """`parts` parts of a message are out: noted in memory, and with the message."""
        self._partial[key] = parts
        if kept is not None:
            await kept.delivered(parts)

    async def finish_live(self, address: Address, text: str, message_id: int) -> str | None:
        """The final reply into the message that showed it growing (bot/channels/live_reply.py):
        its first part edited in, the rest sent after it as `send_text` sends them (a failure
        part-way is resumed by the redelivery from the next part). Where the edit is refused,
        the preview is deleted and the reply sent whole."""
        chunks = telegram_chunks(text) or [Chunk("(empty)", "(empty)")]
        api = self._api()
        chat_id = self._chat(address)
        try:
            for html, body in ((True, chunks[0].markup), (False, plain_fallback(chunks[0]))):
                try:
                    await self._call(
                        lambda html=html, body=body: api.call(  # type: ignore[misc]
                            "editMessageText",
                            chat_id=chat_id,
                            message_id=message_id,
                            text=body,
                            parse_mode="HTML" if html else None,
                            link_preview_options=NO_PREVIEW,
                        )
                    )
                    break
                except TelegramBadRequest as exc:
                    error = str(exc).lower()
                    if "not modified" in error:
                        break
                    if not html or not _formatting_refused(exc):
                        raise
        except TelegramError as exc:
            log.warning("Telegram refused the final edit (%s); sending the reply anew", exc)
            await self.delete(address, message_id)
            return await self.send_text(address, text)
        kept = parts_of(text)
        if len(chunks) == 1:
            if kept is not None:
                await kept.delivered(1)
            return str(message_id)
        await self._delivered((address, text), kept, 1)
        return await self.send_text(address, text)

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        body, markup = telegram_card(prompt)
        try:
            sent = await self._send(address, body, html=True, markup=markup)
        except TelegramError as exc:
            raise _refused(exc) from exc
        return str(sent)

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        """Show a card's decision on it; a press that decided it is answered (nothing said):
        what follows it (the resumed turn) is for everyone."""
        press = PRESS.get()
        if press is not None:
            press.decided = True
        try:
            await self._mark(address, platform_message_id, text)
        finally:
            if press is not None:
                await self.answer_press(press, None)

    async def _mark(self, address: Address, platform_message_id: str, text: str) -> None:
        api = self._api()
        try:
            await self._call(
                lambda: api.call(
                    "editMessageText",
                    chat_id=self._chat(address),
                    message_id=int(platform_message_id),
                    text=text,
                    reply_markup=None,
                    link_preview_options=NO_PREVIEW,
                )
            )
        except TelegramBadRequest as exc:
            if "message is not modified" in str(exc).lower():
                return
            raise DeliveryError(f"Telegram: {exc}") from exc
        except (TelegramError, ValueError) as exc:
            raise DeliveryError(f"Telegram: {exc}") from exc

    async def delete(self, address: Address, message_id: int) -> None:
        """Take a message down (a preview no longer wanted), waiting out flood control as any
        call does: a single try left a stale preview above the reply after one 429 (R106).
        Under flood control longer than a call waits, it is taken down once that is over, in
        the background: given up, the cut-off preview stayed above the reply for good (R228)."""
        try:
            await self._delete(address, message_id)
        except TelegramRetryAfter as exc:
            log.info("message %s taken down in %s s (flood control)", message_id, exc.retry_after)
            task = asyncio.create_task(self._delete_later(address, message_id, exc.retry_after))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
        except TelegramError as exc:
            log.info("could not take message %s down: %s", message_id, exc)

    async def _delete(self, address: Address, message_id: int) -> None:
        api = self._api()
        await self._call(
            lambda: api.call("deleteMessage", chat_id=self._chat(address), message_id=message_id)
        )

    async def _delete_later(self, address: Address, message_id: int, wait: float) -> None:
        """`delete` once Telegram's flood control is over, at most LATER_TRIES times."""
        for _ in range(LATER_TRIES):
            await asyncio.sleep(wait)
            try:
                await self._delete(address, message_id)
                return
            except TelegramRetryAfter as exc:
                wait = exc.retry_after
            except Exception as exc:  # nobody awaits this: it must log, not raise
                log.info("could not take message %s down: %s", message_id, exc)
                return
        log.info("could not take message %s down: flood control went on", message_id)

    async def close(self) -> None:
        """Stop the deletes still waiting out flood control (the channel is stopping)."""
        tasks, self._later = self._later, set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def show_typing(self, address: Address) -> None:
        api = self._api()
        with contextlib.suppress(TelegramError):
            await api.call(
                "sendChatAction",
                chat_id=self._chat(address),
                action="typing",
                message_thread_id=thread_of(address),
            )


def _formatting_refused(exc: TelegramBadRequest) -> bool:
    """Whether Telegram refused a message for its formatting ("can't parse entities", "entity
    URL … is invalid"), not for where it was going."""
    error = str(exc).lower()
    return "entit" in error or "url" in error
