"""The Telegram channel (aiogram 3): long polling with a stall watchdog, or a webhook.

Incoming: each update is translated into an `IncomingMessage` and handed to the router, in the
order Telegram numbered them (`update_id`); an update seen before is dropped, also across a
restart (the highest handled id is kept in the state store, and text messages carry
`platform_message_id = "<chat>:<message>"`, which the router dedupes). In groups only messages
that mention the bot, reply to it, or are commands for it get through. A press on an approval
button is answered at once and dispatched as `/approve <id>`, `/deny <id>` or
`/approve <id> always` from the presser, carrying the id of the message pressed.

Outgoing: the model's Markdown becomes Telegram HTML, split on paragraph boundaries below 4096
characters; a part Telegram rejects for its entities is sent again as plain text. 429
`retry_after` is waited out, network and server errors are retried with backoff, and what still
fails raises `DeliveryError` so the courier keeps it for redelivery. Every message is sent and
edited with link previews off: Telegram's preview fetcher would otherwise request any URL the
model writes (a zero-click way to carry data out).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    LinkPreviewOptions,
    Message,
    Update,
)
from aiogram.utils.token import TokenValidationError
from aiohttp import web
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from agent.outbox import DeliveryError
from agent.types import Address, ApprovalPrompt, ChatKind, IncomingMessage
from bot.channels.base import BackgroundTasks, Dispatch
from bot.channels.cards import TELEGRAM_VERBS, ApprovalButton, telegram_card
from bot.channels.errors import ChannelStartError
from bot.channels.formatting import Chunk, split_plain, telegram_chunks, utf16_len
from bot.http import HttpServer
from memory.people import Identity
from memory.state import StateStore

__all__ = ["WEBHOOK_PATH", "ApprovalButton", "TelegramChannel", "webhook_secret_for"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
STATE_KEY = "telegram.last_update_id"
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_APPROVAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_TRANSIENT = (TelegramNetworkError, TelegramServerError, TelegramRetryAfter, OSError)
T = TypeVar("T")


def webhook_secret_for(token: str) -> str:
    """The webhook secret when TELEGRAM_WEBHOOK_SECRET is not set: derived from the bot token,
    so it is stable across restarts and known to nobody without the token."""
    return hmac.new(token.encode(), b"steward-telegram-webhook", hashlib.sha256).hexdigest()


def _chat_id(chat_id: str) -> int | str:
    return int(chat_id) if re.fullmatch(r"-?\d+", chat_id) else chat_id


def _thread(address: Address) -> int | None:
    return int(address.thread_id) if address.thread_id and address.thread_id.isdigit() else None


class TelegramChannel:
    name = "telegram"

    def __init__(
        self,
        *,
        token: str,
        api_base: str | None = None,
        commands: Sequence[tuple[str, str]] = (),
        state: StateStore | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        http: HttpServer | None = None,
        poll_timeout: int = 25,
        stall_after: float = 120.0,
        send_attempts: int = 5,
        backoff: float = 0.5,
        max_retry_after: float = 60.0,
    ) -> None:
        if stall_after <= poll_timeout:
            raise ValueError("stall_after must be longer than one long poll (poll_timeout)")
        if webhook_url and http is None:
            raise ValueError("webhook mode needs the HTTP server")
        self._token = token
        self._api_base = api_base
        self._commands = [
            (name, summary[:256] or name) for name, summary in commands if _COMMAND_NAME.match(name)
        ]
        self._state = state
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret or webhook_secret_for(token)
        self._http = http
        self._poll_timeout = poll_timeout
        self._stall_after = stall_after
        self._send_attempts = send_attempts
        self._backoff = backoff
        self._max_retry_after = max_retry_after
        self.finished = asyncio.Event()
        self.poll_restarts = 0
        self._bot: Bot | None = None
        self._dispatch: Dispatch | None = None
        self._username = ""
        self._bot_id = 0
        self._offset: int | None = None
        self._handled_up_to = 0
        self._recent: deque[int] = deque(maxlen=1000)
        self._last_poll = 0.0
        self._runner: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._background = BackgroundTasks("Telegram update handling")
        self._partial: dict[tuple[Address, str], int] = {}
        self._persist_lock = asyncio.Lock()

    @property
    def mode(self) -> str:
        return "webhook" if self._webhook_url else "polling"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        try:
            session = (
                AiohttpSession(api=TelegramAPIServer.from_base(self._api_base))
                if self._api_base
                else AiohttpSession()
            )
            self._bot = Bot(
                self._token,
                session=session,
                default=DefaultBotProperties(link_preview=_NO_PREVIEW),
            )
        except TokenValidationError:
            raise ChannelStartError(
                "TELEGRAM_BOT_TOKEN is not a bot token (it looks like 123456789:AA…)"
            ) from None
        if self._state is not None:
            stored = await self._state.get(STATE_KEY)
            self._handled_up_to = int(stored) if stored and stored.isdigit() else 0
        try:
            await self._setup()
        except TelegramUnauthorizedError:
            await self._bot.session.close()
            raise ChannelStartError(
                "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): check the token "
                "@BotFather gave you"
            ) from None
        except ChannelStartError:
            await self._bot.session.close()
            raise
        except _TRANSIENT as exc:
            log.warning("Telegram is not reachable yet (%s); I keep trying in the background", exc)
            self._runner = asyncio.create_task(self._set_up_later())
            return
        except (TelegramAPIError, AiogramError) as exc:
            await self._bot.session.close()
            raise ChannelStartError(f"Telegram refused the set-up: {exc}") from None
        self._go()

    async def _setup(self) -> None:
        """getMe, the command menu, and the webhook (set, or deleted for polling)."""
        bot = self._require_bot()
        me = await bot.get_me()
        self._username, self._bot_id = (me.username or "").lower(), me.id
        if self._commands:
            try:
                await bot.set_my_commands(
                    [BotCommand(command=n, description=s) for n, s in self._commands]
                )
            except TelegramAPIError as exc:
                log.warning("Telegram setMyCommands failed: %s", exc)
        if self._webhook_url:
            assert self._http is not None
            self._http.unmount(WEBHOOK_PATH)
            self._http.mount(WEBHOOK_PATH, self._on_webhook)
            try:
                await self._http.start()
            except Exception as exc:
                raise ChannelStartError(f"Telegram webhook: {exc}") from None
            await bot.set_webhook(
                url=self._webhook_url,
                secret_token=self._webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                max_connections=1,  # one at a time, in order
            )
        else:
            await bot.delete_webhook(drop_pending_updates=False)
        log.info("Telegram: @%s (%s mode)", self._username, self.mode)

    async def _set_up_later(self) -> None:
        delay = min(self._backoff * 2, 30.0)
        while True:
            await asyncio.sleep(delay)
            try:
                await self._setup()
            except TelegramUnauthorizedError:
                log.error("Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized); giving up")
                self.finished.set()
                return
            except ChannelStartError as exc:
                log.error("%s", exc)
                self.finished.set()
                return
            except _TRANSIENT as exc:
                delay = min(delay * 2, 60.0)
                log.warning("Telegram still not reachable (%s); next try in %.0f s", exc, delay)
                continue
            except (TelegramAPIError, AiogramError) as exc:
                log.error("Telegram refused the set-up: %s; the channel stops", exc)
                self.finished.set()
                return
            log.info("Telegram reached")
            self._go()
            return

    def _go(self) -> None:
        if not self._webhook_url:
            self._runner = asyncio.create_task(self._poll_with_watchdog())

    async def stop(self) -> None:
        for task in (self._runner, self._poller):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._http is not None and self._webhook_url:
            self._http.unmount(WEBHOOK_PATH)
        await self._background.drain()
        if self._bot is not None:
            await self._bot.session.close()
        self.finished.set()

    def _require_bot(self) -> Bot:
        if self._bot is None:
            raise DeliveryError("the Telegram channel has not started")
        return self._bot

    # -- polling -----------------------------------------------------------------------------

    async def _poll_with_watchdog(self) -> None:
        """Run the long-polling loop; restart it when no getUpdates completed for stall_after."""
        loop = asyncio.get_running_loop()
        check_every = min(5.0, self._stall_after / 4)
        if self._offset is None and self._handled_up_to:
            self._offset = self._handled_up_to + 1
        while True:
            self._last_poll = loop.time()
            self._poller = asyncio.create_task(self._poll())
            while not self._poller.done():
                await asyncio.wait([self._poller], timeout=check_every)
                if self._poller.done():
                    break
                stalled_for = loop.time() - self._last_poll
                if stalled_for > self._stall_after:
                    log.warning(
                        "Telegram polling stalled: no getUpdates completed for %.0f s; "
                        "restarting it",
                        stalled_for,
                    )
                    self._poller.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await self._poller
                    # a fresh connection pool: the stuck one may never answer
                    with contextlib.suppress(Exception):
                        await self._require_bot().session.close()
                    self.poll_restarts += 1
                    break
            else:
                pass
            if self._poller.done() and not self._poller.cancelled():
                if self._poller.exception() is None:
                    self.finished.set()  # the loop ended on purpose (token refused)
                    return
                log.error("Telegram polling crashed", exc_info=self._poller.exception())
                await asyncio.sleep(1.0)

    async def _poll(self) -> None:
        bot = self._require_bot()
        loop = asyncio.get_running_loop()
        first_delay = min(self._backoff * 2, 30.0)
        delay = first_delay
        while True:
            method = GetUpdates(
                offset=self._offset, timeout=self._poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
            try:
                updates = await bot(method, request_timeout=self._poll_timeout + 15)
            except TelegramRetryAfter as exc:
                self._last_poll = loop.time()
                await asyncio.sleep(exc.retry_after)
                continue
            except TelegramUnauthorizedError:
                log.error("Telegram refused the bot token while polling; the channel stops")
                return
            except (TelegramAPIError, AiogramError, OSError, ValidationError) as exc:
                self._last_poll = loop.time()
                kind = "conflict" if isinstance(exc, TelegramConflictError) else "error"
                log.warning("Telegram getUpdates %s: %s; retrying in %.0f s", kind, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._last_poll = loop.time()
            delay = first_delay
            for update in updates:
                self._offset = update.update_id + 1
                self._accept(update)

    # -- webhook -----------------------------------------------------------------------------

    async def _on_webhook(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405)
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            log.warning("Telegram webhook: request without the right secret token refused")
            return web.Response(status=401, text="unauthorized")
        try:
            raw = await request.json()
            update = Update.model_validate(raw, context={"bot": self._bot})
        except (ValueError, ValidationError):
            return web.Response(status=400, text="bad update")
        self._accept(update)
        return web.json_response({})

    # -- incoming ----------------------------------------------------------------------------

    def _accept(self, update: Update) -> None:
        """Translate and dispatch one update, synchronously up to the router's queue."""
        update_id = update.update_id
        if update_id <= self._handled_up_to or update_id in self._recent:
            log.info("Telegram update %s seen before; dropped", update_id)
            return
        self._recent.append(update_id)
        incoming: IncomingMessage | None = None
        if update.message is not None:
            incoming = self._incoming(update.message)
        elif update.callback_query is not None:
            incoming = self._pressed(update.callback_query)
        if incoming is None:
            self._background.spawn(self._remember(update_id))
            return
        self._background.spawn(self._deliver_in(incoming, update_id))

    async def _deliver_in(self, message: IncomingMessage, update_id: int) -> None:
        assert self._dispatch is not None
        try:
            await self._dispatch(message)
        finally:
            await self._remember(update_id)

    async def _remember(self, update_id: int) -> None:
        if self._state is None:
            return
        async with self._persist_lock:
            stored = await self._state.get(STATE_KEY)
            if not stored or not stored.isdigit() or int(stored) < update_id:
                await self._state.set(STATE_KEY, str(update_id))

    def _incoming(self, message: Message) -> IncomingMessage | None:
        sender = message.from_user
        if sender is None or sender.is_bot:
            return None
        text = message.text if message.text is not None else message.caption
        if not text:
            return None
        chat = message.chat
        if chat.type == "private":
            kind = ChatKind.PRIVATE
        elif chat.type in ("group", "supergroup"):
            kind = ChatKind.GROUP
            addressed = self._addressed(message, text)
            if addressed is None:
                return None
            text = addressed
        else:
            return None
        thread = (
            str(message.message_thread_id)
            if message.is_topic_message and message.message_thread_id
            else None
        )
        replied = message.reply_to_message
        return IncomingMessage(
            sender=Identity("telegram", str(sender.id)),
            address=Address("telegram", str(chat.id), thread),
            text=text,
            platform_message_id=f"{chat.id}:{message.message_id}",
            sender_name=sender.full_name,
            chat_kind=kind,
            reply_to_text=(replied.text or replied.caption) if replied else None,
            forwarded_from=_forward_origin(message),
        )

    def _addressed(self, message: Message, text: str) -> str | None:
        """In a group: the text meant for Steward (mention removed), or None when it is not."""
        if text.startswith("/"):
            head = text.split(maxsplit=1)[0]
            _, _, target = head.partition("@")
            return text if not target or target.lower() == self._username else None
        mention = re.compile(rf"(?<!\w)@{re.escape(self._username)}\b[,:]?", re.I)
        if self._username and mention.search(text):
            stripped = re.sub(r"[ \t]{2,}", " ", mention.sub("", text)).strip(" ,:\n")
            return stripped or "hello"
        replied = message.reply_to_message
        if replied and replied.from_user and replied.from_user.id == self._bot_id:
            return text
        for entity in message.entities or []:
            if entity.type == "text_mention" and entity.user and entity.user.id == self._bot_id:
                return text
        return None

    def _pressed(self, query: CallbackQuery) -> IncomingMessage | None:
        """An approval button press: answered at once, then dispatched as a command."""
        try:
            button = ApprovalButton.unpack(query.data or "")
            verb = TELEGRAM_VERBS[button.d]
            if not _APPROVAL_ID.match(button.id):
                raise ValueError(button.id)
        except (ValueError, TypeError, KeyError, ValidationError):
            self._background.spawn(self._answer(query.id, "This button is no longer active."))
            return None
        self._background.spawn(self._answer(query.id, None))
        message = query.message
        if message is None:
            return None
        chat = message.chat
        thread: str | None = None
        if isinstance(message, Message) and message.is_topic_message and message.message_thread_id:
            thread = str(message.message_thread_id)
        return IncomingMessage(
            sender=Identity("telegram", str(query.from_user.id)),
            address=Address("telegram", str(chat.id), thread),
            text=verb.format(id=button.id),
            platform_message_id=f"cb:{query.id}",
            sender_name=query.from_user.full_name,
            chat_kind=ChatKind.PRIVATE if chat.type == "private" else ChatKind.GROUP,
            pressed_message_id=str(message.message_id),
        )

    async def _answer(self, query_id: str, text: str | None) -> None:
        with contextlib.suppress(TelegramAPIError, AiogramError, OSError):
            await self._require_bot().answer_callback_query(query_id, text=text)

    # -- outgoing ----------------------------------------------------------------------------

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
            stop=stop_after_attempt(self._send_attempts),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await make()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, address: Address, text: str, *, html: bool, markup: Any = None
    ) -> Message:
        bot = self._require_bot()
        chat_id: int | str = _chat_id(address.chat_id)
        for _ in range(2):
            try:
                return await self._call(
                    lambda chat_id=chat_id: bot.send_message(  # type: ignore[misc]
                        chat_id=chat_id,
                        text=text,
                        parse_mode="HTML" if html else None,
                        message_thread_id=_thread(address),
                        reply_markup=markup,
                        link_preview_options=_NO_PREVIEW,
                    )
                )
            except TelegramMigrateToChat as exc:
                chat_id = exc.migrate_to_chat_id
        raise DeliveryError(f"Telegram chat {address.chat_id} moved twice")

    async def _send_chunk(self, address: Address, chunk: Chunk) -> str:
        try:
            sent = await self._send(address, chunk.markup, html=True)
            return str(sent.message_id)
        except TelegramBadRequest as exc:
            if "can't parse entities" not in str(exc).lower():
                raise
            log.warning(
                "Telegram rejected a reply's formatting (%s); sending it as plain text", exc
            )
        last = ""
        for piece in split_plain(chunk.source, 4096, utf16_len):
            last = str((await self._send(address, piece, html=False)).message_id)
        return last

    async def send_text(self, address: Address, text: str) -> str | None:
        chunks = telegram_chunks(text) or [Chunk("(empty)", "(empty)")]
        key = (address, text)
        done = self._partial.get(key, 0)  # parts a failed earlier attempt already delivered
        last: str | None = None
        try:
            for index, chunk in enumerate(chunks[done:], start=done):
                last = await self._send_chunk(address, chunk)
                self._partial[key] = index + 1
        except (TelegramAPIError, AiogramError, OSError) as exc:
            raise DeliveryError(f"Telegram: {exc}") from exc
        self._partial.pop(key, None)
        return last

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        body, markup = telegram_card(prompt)
        try:
            sent = await self._send(address, body, html=True, markup=markup)
        except (TelegramAPIError, AiogramError, OSError) as exc:
            raise DeliveryError(f"Telegram: {exc}") from exc
        return str(sent.message_id)

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        bot = self._require_bot()
        try:
            await self._call(
                lambda: bot.edit_message_text(
                    chat_id=_chat_id(address.chat_id),
                    message_id=int(platform_message_id),
                    text=text,
                    reply_markup=None,
                    link_preview_options=_NO_PREVIEW,
                )
            )
        except TelegramBadRequest as exc:
            if "message is not modified" in str(exc).lower():
                return
            raise DeliveryError(f"Telegram: {exc}") from exc
        except (TelegramAPIError, AiogramError, OSError, ValueError) as exc:
            raise DeliveryError(f"Telegram: {exc}") from exc

    async def show_typing(self, address: Address) -> None:
        bot = self._require_bot()
        with contextlib.suppress(TelegramAPIError, AiogramError, OSError):
            await bot.send_chat_action(
                chat_id=_chat_id(address.chat_id),
                action="typing",
                message_thread_id=_thread(address),
            )


def _forward_origin(message: Message) -> str | None:
    """Who wrote a forwarded message, as a source name; None for the sender's own words."""
    origin = message.forward_origin
    if origin is None:
        return None
    user = getattr(origin, "sender_user", None)
    if user is not None:
        return f"telegram:user:{user.id}"
    chat = getattr(origin, "sender_chat", None) or getattr(origin, "chat", None)
    if chat is not None:
        return f"telegram:chat:{chat.id}"
    return "telegram:hidden user"
