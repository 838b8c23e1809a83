"""The Telegram channel: long polling with a stall watchdog, or a webhook.

The Bot API client is our own (`telegram_api.py`, over aiohttp) and updates are read into
the few typed values Steward looks at (`telegram_types.py`); an update that does not parse is
skipped with a log line, and polling goes on.

Incoming: each update is translated into an `IncomingMessage` and handed to the router, in the
order Telegram numbered them (`update_id`); an update seen before is dropped, also across a
restart (the highest handled id is kept in the state store, and text messages carry
`platform_message_id = "<chat>:<message>"`, which the router dedupes). What an update says is
read in `telegram_updates.py`: in groups only messages that mention the bot, reply to it, or are
commands for it get through; a press on an approval button is dispatched as a typed `Press`
from the presser, carrying the id of the message pressed. In a private chat it is answered at
once; in a group, what its handling says before it decides anything (a refusal, "already
decided") is its answer, an alert to the presser alone, never a post to the group (R201). The
parts of an album (photos sent together) are gathered into one message first
(`telegram_albums.py`).

Start: the first getUpdates waits only for deleteWebhook (a webhook left set would refuse it);
getMe and setMyCommands run alongside it. The bot's id is the token's first part, so private
messages and button presses need nothing more; a group message waits for getMe's username (its
mentions are read with it) and, updates being handled in order, so does what comes after it.

Outgoing (`telegram_send.py`): Telegram HTML in parts below 4096 characters, flood control and
retries, `DeliveryError` for what still fails; every message is sent and edited with link
previews off: Telegram's preview fetcher would otherwise request any URL the model writes (a
zero-click way to carry data out).

(Over 400 lines: polling with its watchdog and status, the webhook, start/stop and getMe beside
the first poll are one channel's lifecycle; what updates say, how sends go and the Bot API
client are already in modules of their own.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from agent.approvals import DECIDING
from agent.attachments import MediaRef
from agent.delivery import is_private_chat
from agent.outbox import DeliveryError
from agent.types import Address, ApprovalPrompt, ChatKind, IncomingMessage
from bot.channels.base import BackgroundTasks, Dispatch
from bot.channels.errors import ChannelStartError
from bot.channels.live_reply import TelegramLive
from bot.channels.media import telegram_fetch
from bot.channels.telegram_albums import Album, AlbumCollector
from bot.channels.telegram_api import (
    TelegramApi,
    TelegramConflict,
    TelegramError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorized,
    valid_token,
)
from bot.channels.telegram_cards import ApprovalButton
from bot.channels.telegram_send import PRESS, PressAnswer, TelegramSender
from bot.channels.telegram_types import CallbackQuery, MalformedUpdate, Message, Update
from bot.channels.telegram_updates import (
    album_in,
    message_in,
    moved_chat,
    press_in,
    pressed_button,
)
from bot.http import HttpServer
from bot.throttled_log import ThrottledLog
from memory.state import StateStore

__all__ = [
    "WEBHOOK_PATH",
    "ApprovalButton",
    "ChatMoved",
    "TelegramChannel",
    "webhook_secret_for",
]

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
STATE_KEY = "telegram.{bot}.last_update"
"""Per bot: `<update id> <when, ISO>`. One key for every bot had a new bot's lower ids dropped
as seen, and its first poll confirm (delete) them at Telegram (R179)."""
STALE_OFFSET = timedelta(days=6)
"""After a week without updates Telegram picks the next id at random: an offset this old is
not carried into the first poll."""
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_TRANSIENT = (TelegramNetworkError, TelegramServerError, TelegramRetryAfter)
_GROUPS = ("group", "supergroup")
ChatMoved = Callable[[str, str], Awaitable[None]]
"""The core's hook for a group that became a supergroup: (old id, new id)."""
PRESS_WAIT = 10.0
"""Seconds a press in a group waits for its handling to say something before it is answered
with nothing said (its button spins until then; a later word goes to the group, as before)."""


def _fresh_id(stored: str | None) -> int:
    """The update id a stored `<id> <when>` names, or 0 when there is none or it is a week
    old (Telegram may have started its ids anew: R179)."""
    number, _, when = (stored or "").partition(" ")
    try:
        if datetime.now(UTC) - datetime.fromisoformat(when) > STALE_OFFSET:
            return 0
        return int(number)
    except ValueError:
        return 0


def _stored_at(stored: str | None) -> float | None:
    """When a stored `<id> <when>` was written (a POSIX time), or None."""
    try:
        return datetime.fromisoformat((stored or "").partition(" ")[2]).timestamp()
    except ValueError:
        return None


def _parsed(raw: Any) -> Update | None:
    """The update `raw` as typed values, or None (logged) when it is malformed."""
    try:
        return Update.from_raw(raw)
    except MalformedUpdate as exc:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        log.warning("Telegram update %s is malformed (%s); skipped", update_id, exc)
        return None


def webhook_secret_for(token: str) -> str:
    """The webhook secret when TELEGRAM_WEBHOOK_SECRET is not set: derived from the bot token,
    so it is stable across restarts and known to nobody without the token."""
    return hmac.new(token.encode(), b"steward-telegram-webhook", hashlib.sha256).hexdigest()


class TelegramChannel:
    name = "telegram"

    def __init__(
        self,
        *,
        token: SecretStr | str,
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
        album_wait: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`wall`: the wall clock, in POSIX seconds (a test's stands still or jumps a week)."""
        if stall_after <= poll_timeout:
            raise ValueError("stall_after must be longer than one long poll (poll_timeout)")
        if webhook_url and http is None:
            raise ValueError("webhook mode needs the HTTP server")
        self._wall = wall
        self._refusals = ThrottledLog(log)  # webhook requests anyone can send
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self._api_base = api_base
        self._commands = [
            (name, summary[:256] or name) for name, summary in commands if _COMMAND_NAME.match(name)
        ]
        self._state = state
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret or webhook_secret_for(self._token.get_secret_value())
        self._http = http
        self._poll_timeout = poll_timeout
        self._stall_after = stall_after
        self._backoff = backoff
        self.finished = asyncio.Event()
        self.poll_restarts = 0
        self.status = "up"
        """How the channel is doing, for `/status` and the web console: `up`, `reconnecting: why`
        (getUpdates failing or stalled; it keeps trying) or `error: why` (it stopped)."""
        self._api: TelegramApi | None = None
        self._dispatch: Dispatch | None = None
        self._username = ""
        self._bot_id = 0
        self._me: asyncio.Task[None] | None = None
        self._me_known = False
        self._offset: int | None = None
        self._handled_up_to = 0
        self._last_update_at = self._wall()  # the last update taken (or the stored one's time)
        self._recent: deque[int] = deque(maxlen=1000)
        self._last_poll = 0.0
        self._runner: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._background = BackgroundTasks("Telegram update handling")
        self._out = TelegramSender(
            self._require_api,
            attempts=send_attempts,
            backoff=backoff,
            max_retry_after=max_retry_after,
            on_moved=self._chat_moved,
        )
        self.chat_moved: ChatMoved | None = None
        """Tells the core that a group became a supergroup (old id, new id), so its chat is
        re-pointed (`chat_moved`, wired by bot/channel_start.py; R201)."""
        self._moves: set[tuple[str, str]] = set()  # moves told to the core
        self._persist_lock = asyncio.Lock()
        self._stored_update_id: int | None = None  # STATE_KEY as last read or written
        self._drafts = True  # until the Bot API server says it has no sendMessageDraft
        self._albums = AlbumCollector(state, self._album_ready, wait=album_wait)

    @property
    def _state_key(self) -> str:
        return STATE_KEY.format(bot=self._bot_id)

    @property
    def mode(self) -> str:
        return "webhook" if self._webhook_url else "polling"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        if not valid_token(self._token.get_secret_value()):
            raise ChannelStartError(
                "TELEGRAM_BOT_TOKEN is not a bot token (it looks like 123456789:AA…)"
            )
        self._api = TelegramApi(self._token, self._api_base)
        self._bot_id = self._api.bot_id
        if self._state is not None:
            stored = await self._state.get(self._state_key)
            self._handled_up_to = _fresh_id(stored)
            self._last_update_at = _stored_at(stored) or self._last_update_at
        for update_id in await self._albums.restore():  # an album gathered at the last stop
            self._mark(update_id)  # Telegram may send its parts again: they are had
        try:
            await self._setup()
        except TelegramUnauthorized:
            await self._abort()
            raise ChannelStartError(
                "Telegram refused TELEGRAM_BOT_TOKEN (401 Unauthorized): check the token "
                "@BotFather gave you"
            ) from None
        except ChannelStartError:
            await self._abort()
            raise
        except _TRANSIENT as exc:
            log.warning("Telegram is not reachable yet (%s); I keep trying in the background", exc)
            self._runner = asyncio.create_task(self._set_up_later())
            return
        except TelegramError as exc:
            await self._abort()
            raise ChannelStartError(f"Telegram refused the set-up: {exc}") from None
        self._go()

    async def _abort(self) -> None:
        if self._me is not None:
            self._me.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._me
        await self._require_api().close()

    async def _setup(self) -> None:
        """The webhook deleted (polling: getMe alongside) or set (after getMe); the command
        menu is set in the background."""
        api = self._require_api()
        if self._webhook_url:
            await self._ensure_me()  # the username before the first update can come in
            assert self._http is not None
            self._http.unmount(WEBHOOK_PATH)
            self._http.mount(WEBHOOK_PATH, self._on_webhook)
            try:
                await self._http.start()
            except Exception as exc:
                raise ChannelStartError(f"Telegram webhook: {exc}") from None
            await api.call(
                "setWebhook",
                url=self._webhook_url,
                secret_token=self._webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
                max_connections=1,  # one at a time, in order
            )
        else:
            self._ask_me()
            await api.call("deleteWebhook", drop_pending_updates=False)
        if self._commands:
            self._background.spawn(self._set_commands())

    def _ask_me(self) -> asyncio.Task[None]:
        """getMe, once at a time; a failure is logged and asked again by whoever needs it."""
        if self._me is None or (self._me.done() and not self._me_known):
            self._me = asyncio.create_task(self._get_me())
            self._me.add_done_callback(self._me_done)
        return self._me

    async def _get_me(self) -> None:
        me = await self._require_api().call("getMe")
        username = me.get("username") if isinstance(me, dict) else None
        bot_id = me.get("id") if isinstance(me, dict) else None
        if not isinstance(bot_id, int) or not isinstance(username, str | None):
            raise TelegramNetworkError("getMe: the answer is not a User")
        self._username, self._bot_id, self._me_known = (username or "").lower(), bot_id, True
        log.info("Telegram: @%s (%s mode)", self._username, self.mode)

    @staticmethod
    def _me_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("Telegram getMe failed: %s", exc)

    async def _ensure_me(self) -> None:
        """The bot's username is known (getMe answered); raises what getMe failed with."""
        if not self._me_known:
            await asyncio.shield(self._ask_me())

    async def _set_commands(self) -> None:
        commands = [{"command": n, "description": s} for n, s in self._commands]
        try:
            await self._require_api().call("setMyCommands", commands=commands)
        except TelegramError as exc:
            log.warning("Telegram setMyCommands failed: %s", exc)

    async def _set_up_later(self) -> None:
        delay = min(self._backoff * 2, 30.0)
        while True:
            await asyncio.sleep(delay)
            try:
                await self._setup()
            except TelegramUnauthorized:
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
            except TelegramError as exc:
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
        await self._albums.close()
        for task in (self._runner, self._poller, self._me):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._http is not None and self._webhook_url:
            self._http.unmount(WEBHOOK_PATH)
        await self._background.drain()
        await self._out.close()  # previews still waiting out flood control (R228)
        if self._api is not None:
            await self._api.close()
        self.finished.set()

    def _require_api(self) -> TelegramApi:
        if self._api is None:
            raise DeliveryError("the Telegram channel has not started")
        return self._api

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
                        await self._require_api().close()
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
        api = self._require_api()
        loop = asyncio.get_running_loop()
        first_delay = min(self._backoff * 2, 30.0)
        delay = first_delay
        while True:
            try:
                self._age_out()
                updates = await api.call(
                    "getUpdates",
                    offset=self._offset,
                    timeout=self._poll_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=self._poll_timeout + 15,
                )
                if not isinstance(updates, list):
                    raise TelegramNetworkError("getUpdates: the answer is not a list")
                self._last_poll = loop.time()
                await self._take(updates)
            except TelegramRetryAfter as exc:
                self._last_poll = loop.time()
                await asyncio.sleep(exc.retry_after)
                continue
            except TelegramUnauthorized:
                log.error("Telegram refused the bot token while polling; the channel stops")
                self.status = "error: the bot token was refused"
                return
            except TelegramError as exc:
                self._last_poll = loop.time()
                kind = "conflict" if isinstance(exc, TelegramConflict) else "error"
                log.warning("Telegram getUpdates %s: %s; retrying in %.0f s", kind, exc, delay)
                self.status = f"reconnecting: getUpdates {kind}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self.status = "up"
            delay = first_delay

    async def _take(self, updates: list[Any]) -> None:
        """One getUpdates answer, in order; the offset moves past each update taken (also a
        malformed one). A group message waits for getMe (its failure is raised)."""
        stored: list[asyncio.Event] = []
        for raw in updates:
            update = _parsed(raw)
            if update is None:
                update_id = raw.get("update_id") if isinstance(raw, dict) else None
                if isinstance(update_id, int) and not isinstance(update_id, bool):
                    self._offset = max(self._offset or 0, update_id + 1)
                continue
            if update.message is not None and update.message.chat.type in _GROUPS:
                await self._ensure_me()
            if not self._albums.holds(update):  # a fault reading it skips it, never loops
                self._offset = update.update_id + 1
            if (kept := await self._take_one(update, raw)) is not None:
                stored.append(kept)  # an album's part is persisted first
            self._offset = update.update_id + 1
        # the next poll tells Telegram these were received: not before they are committed
        # (R147: a crash just after it lost them without a trace); a store that takes longer
        # than the poll's watchdog allows (a disk that hangs) is not waited for without end
        if stored:
            waits = [asyncio.ensure_future(kept.wait()) for kept in stored]
            _, late = await asyncio.wait(waits, timeout=min(10.0, self._stall_after / 3))
            for wait in late:
                wait.cancel()

    # -- webhook -----------------------------------------------------------------------------

    async def _on_webhook(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405)
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._webhook_secret.encode()):
            self._refusals.warning(
                "Telegram webhook: requests without the right secret token refused"
            )
            return web.Response(status=401, text="unauthorized")
        try:
            raw = await request.json()
        except (ValueError, LookupError, web.RequestPayloadError):  # not JSON, UTF-8, …
            return web.Response(status=400, text="bad update")
        update = _parsed(raw)
        if update is not None:  # a malformed one is answered too: sent again, it stays so
            self._age_out()  # R236: as a poll does (a week's quiet renumbers updates)
            kept = await self._take_one(update, raw)
            if kept is not None:
                await kept.wait()  # answered once committed: Telegram sends it again if not
        return web.json_response({})

    # -- incoming ----------------------------------------------------------------------------

    async def _take_one(self, update: Update, raw: Any) -> asyncio.Event | None:
        """One update: an album's part waits for the rest of its album (telegram_albums.py);
        anything else is dispatched at once, after an album its chat was sending. Returns
        what is set once the dispatched message is committed."""
        if self._albums.holds(update):
            if not self._seen(update.update_id):
                await self._albums.hold(update, raw)  # persisted, or raises: fetched again
                self._mark(update.update_id)
            return None
        if update.message is not None:  # their album in this chat came before this message
            sender = update.message.from_user
            self._albums.flush_chat(update.message.chat.id, sender.id if sender else None)
            replied = update.message.reply_to_message  # as did an album it answers
            if replied is not None and replied.media_group_id is not None:
                self._albums.flush_album(update.message.chat.id, replied.media_group_id)
        elif update.callback_query is not None and update.callback_query.message is not None:
            chat = update.callback_query.message.chat.id  # or before this press
            self._albums.flush_chat(chat, update.callback_query.from_user.id)
        if (moved := moved_chat(update, raw)) is not None:  # before what the new group says
            await self._chat_moved(*moved)
        return self._accept(update)

    async def _chat_moved(self, old: str, new: str) -> None:
        """A group became a supergroup (its service messages said so, or a send was answered
        with the new id): sends follow it, and the core is told once, so the chat's history,
        memories, reminders and labels carry over (R201)."""
        self._out.follow(old, int(new))
        if (old, new) in self._moves or self.chat_moved is None:
            return
        self._moves.add((old, new))
        try:
            await self.chat_moved(old, new)
        except Exception:
            self._moves.discard((old, new))  # told again at its next word
            log.exception("Telegram: recording that chat %s moved to %s failed", old, new)

    def _age_out(self) -> None:
        """A week with no update while running: Telegram may number the next one anew, lower,
        so neither the offset nor the ids handled may stand in its way (R180: it was dropped as
        seen, then confirmed away by the next poll)."""
        if self._wall() - self._last_update_at > STALE_OFFSET.total_seconds():
            self._offset, self._handled_up_to = None, 0
            self._recent.clear()
            self._last_update_at = self._wall()  # once a week at most

    def _seen(self, update_id: int) -> bool:
        if update_id <= self._handled_up_to or update_id in self._recent:
            log.info("Telegram update %s seen before; dropped", update_id)
            return True
        return False

    def _mark(self, update_id: int) -> None:
        self._recent.append(update_id)
        self._last_update_at = self._wall()

    def _album_ready(self, album: Album) -> None:
        """An album whose parts have all come: delivered in the background, as any message,
        so the stop grace covers it; started now, it takes its place in the chat's line
        before whatever this chat sends next."""
        self._background.spawn(self._deliver_album(album))

    async def _deliver_album(self, album: Album) -> None:
        assert self._dispatch is not None
        try:
            if any(m.chat.type in _GROUPS for m in album.messages):
                await self._ensure_me()  # its mention is read with the bot's name
            incoming = album_in(album.messages, self._username, self._bot_id)
            if incoming is not None:
                await self._dispatch(incoming)
            await self._remember(max(album.update_ids))
        except asyncio.CancelledError:
            raise  # stopped: its parts stay persisted for the next start
        except Exception:
            log.warning("handing on a Telegram album failed; it is tried again", exc_info=True)
            await self._albums.failed(album)
            return
        await self._albums.delivered(album)

    def _accept(self, update: Update) -> asyncio.Event | None:
        """Translate and dispatch one update, synchronously up to the router's queue; what is
        set once the message is committed (None when nothing is dispatched)."""
        update_id = update.update_id
        if self._seen(update_id):
            return None
        self._mark(update_id)
        incoming: IncomingMessage | None = None
        press: PressAnswer | None = None
        if update.message is not None:
            incoming = self._incoming(update.message)
        elif update.callback_query is not None:
            incoming = self._pressed(update.callback_query)
            if incoming is not None and incoming.chat_kind is not ChatKind.PRIVATE:
                press = PressAnswer(update.callback_query.id, incoming.address)
        if incoming is None:
            self._background.spawn(self._remember(update_id))
            return None
        stored = asyncio.Event()
        self._background.spawn(self._deliver_in(incoming, update_id, stored, press))
        return stored

    async def _deliver_in(
        self,
        message: IncomingMessage,
        update_id: int,
        stored: asyncio.Event,
        press: PressAnswer | None = None,
    ) -> None:
        """Dispatch one message; a press in a group with its answer claimed for the presser
        (this task's own context), answered with nothing said once handled, or after
        PRESS_WAIT seconds at most: its button spins until then."""
        assert self._dispatch is not None
        timer: asyncio.TimerHandle | None = None
        if press is not None:
            PRESS.set(press)
            DECIDING.set(press.decide)  # R203: what the approved call sends is for the chat
            timer = asyncio.get_running_loop().call_later(
                PRESS_WAIT, lambda: self._background.spawn(self._out.answer_press(press, None))
            )
        try:
            await self._dispatch(message, stored=stored)
        finally:
            stored.set()  # a dispatch that failed early: never waited on for ever
            if press is not None and timer is not None:
                press.done = True
                timer.cancel()
                await self._out.answer_press(press, None)
            await self._remember(update_id)

    async def _remember(self, update_id: int) -> None:
        if self._state is None:
            return
        async with self._persist_lock:
            if self._stored_update_id is None:  # read once: this channel is its only writer
                self._stored_update_id = _fresh_id(await self._state.get(self._state_key)) or -1
            if self._stored_update_id < update_id:
                now = datetime.now(UTC).isoformat(timespec="seconds")
                await self._state.set(self._state_key, f"{update_id} {now}")
                self._stored_update_id = update_id

    def _incoming(self, message: Message) -> IncomingMessage | None:
        return message_in(message, self._username, self._bot_id)

    def _pressed(self, query: CallbackQuery) -> IncomingMessage | None:
        """An approval button press, dispatched as a typed `Press`; in a private chat answered
        at once (in a group, by its handling: `_deliver_in`)."""
        button = pressed_button(query)
        if button is None:
            self._background.spawn(self._answer(query.id, "This button is no longer active."))
            return None
        incoming = press_in(query, button)
        if incoming is None or incoming.chat_kind is ChatKind.PRIVATE:
            self._background.spawn(self._answer(query.id, None))
        return incoming

    async def _answer(self, query_id: str, text: str | None) -> None:
        with contextlib.suppress(TelegramError):
            await self._require_api().call(
                "answerCallbackQuery", callback_query_id=query_id, text=text
            )

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
        return await telegram_fetch(self._require_api(), ref, max_bytes)

    def open_live(self, address: Address) -> TelegramLive | None:
        """A reply shown as it grows (live_reply.py): a draft in a private chat, else an edited
        message; None before the channel started."""
        if self._api is None:
            return None

        def no_drafts() -> None:
            self._drafts = False

        private = is_private_chat("telegram", address.chat_id)
        return TelegramLive(
            self._require_api,
            self._out,
            address,
            drafts=private and self._drafts,
            on_no_drafts=no_drafts,
        )
