"""The Telegram channel (aiogram 3): long polling with a stall watchdog, or a webhook.

Incoming: each update is translated into an `IncomingMessage` and handed to the router, in the
order Telegram numbered them (`update_id`); an update seen before is dropped, also across a
restart (the highest handled id is kept in the state store, and text messages carry
`platform_message_id = "<chat>:<message>"`, which the router dedupes). What an update says is
read in `telegram_updates.py`: in groups only messages that mention the bot, reply to it, or are
commands for it get through; a press on an approval button is answered at once and dispatched
as a typed `Press` from the presser, carrying the id of the message pressed.

Outgoing (`telegram_send.py`): Telegram HTML in parts below 4096 characters, flood control and
retries, `DeliveryError` for what still fails; every message is sent and edited with link
previews off (the default of the Bot too): Telegram's preview fetcher would otherwise request
any URL the model writes (a zero-click way to carry data out).

(Over 400 lines: polling with its watchdog and status, the webhook and start/stop are one
channel's lifecycle; what updates say and how sends go are already in modules of their own.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from collections import deque
from collections.abc import Sequence

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates
from aiogram.types import BotCommand, CallbackQuery, Message, Update
from aiogram.utils.token import TokenValidationError
from aiohttp import web
from pydantic import ValidationError

from agent.attachments import MediaRef
from agent.delivery import is_private_chat
from agent.outbox import DeliveryError
from agent.types import Address, ApprovalPrompt, IncomingMessage
from bot.channels.base import BackgroundTasks, Dispatch
from bot.channels.errors import ChannelStartError
from bot.channels.live_reply import TelegramLive
from bot.channels.media import telegram_fetch
from bot.channels.telegram_cards import ApprovalButton
from bot.channels.telegram_send import NO_PREVIEW, TelegramSender
from bot.channels.telegram_updates import message_in, press_in, pressed_button
from bot.http import HttpServer
from memory.state import StateStore

__all__ = ["WEBHOOK_PATH", "ApprovalButton", "TelegramChannel", "webhook_secret_for"]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
STATE_KEY = "telegram.last_update_id"
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_TRANSIENT = (TelegramNetworkError, TelegramServerError, TelegramRetryAfter, OSError)


def webhook_secret_for(token: str) -> str:
    """The webhook secret when TELEGRAM_WEBHOOK_SECRET is not set: derived from the bot token,
    so it is stable across restarts and known to nobody without the token."""
    return hmac.new(token.encode(), b"steward-telegram-webhook", hashlib.sha256).hexdigest()


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
        self._backoff = backoff
        self.finished = asyncio.Event()
        self.poll_restarts = 0
        self.status = "up"
        """How the channel is doing, for `/status` and the web console: `up`, `reconnecting: why`
        (getUpdates failing or stalled; it keeps trying) or `error: why` (it stopped)."""
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
        self._out = TelegramSender(
            self._require_bot,
            attempts=send_attempts,
            backoff=backoff,
            max_retry_after=max_retry_after,
        )
        self._persist_lock = asyncio.Lock()
        self._drafts = True  # until the Bot API server says it has no sendMessageDraft

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
                default=DefaultBotProperties(link_preview=NO_PREVIEW),
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
                    self.status = "reconnecting: polling stalled"
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
                self.status = "reconnecting: polling crashed"
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
                self.status = "error: the bot token was refused"
                return
            except (TelegramAPIError, AiogramError, OSError, ValidationError) as exc:
                self._last_poll = loop.time()
                kind = "conflict" if isinstance(exc, TelegramConflictError) else "error"
                log.warning("Telegram getUpdates %s: %s; retrying in %.0f s", kind, exc, delay)
                self.status = f"reconnecting: getUpdates {kind}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._last_poll = loop.time()
            self.status = "up"
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
        return message_in(message, self._username, self._bot_id)

    def _pressed(self, query: CallbackQuery) -> IncomingMessage | None:
        """An approval button press: answered at once, then dispatched as a typed `Press`."""
        button = pressed_button(query)
        if button is None:
            self._background.spawn(self._answer(query.id, "This button is no longer active."))
            return None
        self._background.spawn(self._answer(query.id, None))
        return press_in(query, button)

    async def _answer(self, query_id: str, text: str | None) -> None:
        with contextlib.suppress(TelegramAPIError, AiogramError, OSError):
            await self._require_bot().answer_callback_query(query_id, text=text)

    # -- outgoing (telegram_send.py) --------------------------------------------------------

    async def send_text(self, address: Address, text: str) -> str | None:
        return await self._out.send_text(address, text)

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        return await self._out.send_approval(address, prompt)

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        await self._out.mark_approval(address, platform_message_id, text)

    async def show_typing(self, address: Address) -> None:
        await self._out.show_typing(address)

    async def fetch_file(self, ref: MediaRef, max_bytes: int) -> bytes:
        """A file a message carries, through getFile, capped (media.py)."""
        return await telegram_fetch(self._require_bot(), ref, max_bytes)

    def open_live(self, address: Address) -> TelegramLive | None:
        """A reply shown as it grows (live_reply.py): a draft in a private chat, else an edited
        message; None before the channel started."""
        if self._bot is None:
            return None

        def no_drafts() -> None:
            self._drafts = False

        private = is_private_chat("telegram", address.chat_id)
        return TelegramLive(
            self._require_bot,
            self._out,
            address,
            drafts=private and self._drafts,
            on_no_drafts=no_drafts,
        )
