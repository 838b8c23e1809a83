"""The Slack channel (slack-bolt AsyncApp): Socket Mode, or the HTTP Events API.

- Socket Mode when an app-level token is given (no public URL needed); the connection is pinged
  and replaced when it goes quiet or drops.
- Otherwise HTTP mode with the signing secret: events, slash commands and interactivity all
  arrive at `/slack/events` on the shared webhook server; bolt verifies each signature and
  refuses stale timestamps.

Direct messages and @mentions reach the router (replies go in the thread of the message they
answer); slash commands (`/goal …`, `/steward goal …`) are acknowledged at once and run in the
background, as a `CommandCall` built from Slack's own split (never text parsed again); approval
buttons are acknowledged and dispatched as a typed `Press` from the presser, carrying the ts of
the message pressed. Slack's retries of an event are dropped by event id, and messages carry
`platform_message_id = "<channel>:<ts>"`, which the router dedupes. A message or mention is
acknowledged once it is stored (bolt's `process_before_response`), or after `STORE_WAIT` seconds
if storing takes longer (Slack waits 3 s): acknowledged at once, an event that Steward died
before storing was lost, never delivered again. What is asked of Slack before storing (files.info,
users.info with the profile's time zone, conversations.replies) shares `LOOKUP_WAIT` seconds,
well within that, and waits out no rate limit: a message goes on without what has not come by
then (a time zone is adopted once Slack answers), so a slow Slack never holds it unstored past
its acknowledgement (R202: a rate-limited thread kept it 8 s, and a Steward that died meanwhile
lost it).

Every post and update goes out with `unfurl_links` and `unfurl_media` false, so Slack never
fetches a URL the model wrote (a zero-click way to carry data out); Slack's streaming methods (a
direct message's preview, live_reply.py) take no such flags, but show each link's URL too
(slack_stream.py, R202). A post whose answer was lost once its request had gone (the connection
broke or timed out) may be in the chat: it is posted again after `SENT_AGAIN`, never silently
twice (R198); only a connection never made is retried without a word.

(Over 400 lines: Socket Mode and HTTP mode, events, slash commands, buttons and files are one bolt
app's handlers.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from agent.approvals import DECIDING
from agent.attachments import MediaRef, ReplyRef
from agent.delivery import SENT_AGAIN, Resumed
from agent.outbox import DeliveryError, parts_of
from agent.types import Address, ApprovalPrompt, ChatKind, CommandCall, IncomingMessage, Press
from bot.channels.base import BackgroundTasks, Dispatch
from bot.channels.cards import SLACK_ACTIONS, slack_card, slack_marked
from bot.channels.errors import ChannelStartError
from bot.channels.formatting import Chunk, slack_chunks, slack_to_plain
from bot.channels.live_reply import SlackLive
from bot.channels.media import slack_fetch, slack_files, unopened_files
from bot.channels.slack_threads import (
    app_of,
    share_author,
    share_words,
    shares_of,
    thread_before,
)
from bot.channels.slack_working import WorkingMarks
from bot.http import HttpServer
from bot.throttled_log import ThrottledLog
from memory.people import Identity

__all__ = ["EVENTS_PATH", "LOOKUP_WAIT", "STORE_WAIT", "SlackChannel", "SlackUnreachable"]

log = logging.getLogger(__name__)


EVENTS_PATH = "/slack/events"
STORE_WAIT = 2.0
"""Seconds an event's acknowledgement waits for the message to be stored: Slack retries after 3."""
LOOKUP_WAIT = 1.0
"""Seconds, all told, the Slack lookups made before a message is stored may take (R202): the rest
of `STORE_WAIT` is the store's."""
_NO_UNFURL = {"unfurl_links": False, "unfurl_media": False}
_GONE = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
    }
)
"""Slack errors after which sending to that chat again cannot succeed."""
_ACTION = re.compile(r"^approval_(approve|deny|always)$")
_APPROVAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ACCEPTED_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}
_NETWORK = (aiohttp.ClientError, OSError, asyncio.TimeoutError)
_SERVER_TROUBLE = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
"""Slack errors that say nothing of the token: Slack itself is in trouble for now."""
POST_TRIES = 3
"""Posts of one message whose answer was lost, each after SENT_AGAIN, before the courier's
redelivery takes over."""
LOOKUP_BACKOFF = 60.0
"""Seconds after a failed users.info before that person's profile is asked for again."""

KnownHook = Callable[[Identity], Awaitable[bool]]
ZoneHook = Callable[[Identity, str], Awaitable[bool]]
"""Gives a person their Slack profile's time zone (an IANA name) where they have none; True
once that is settled for them (False: not yet, e.g. a stranger who may be admitted later)."""


class SlackUnreachable(ChannelStartError):
    """Slack could not be reached, or answered with a server error: unlike a refused token this
    may pass, so the channel is started again later (bot/channel_start.py)."""

    may_pass = True


def _error_of(exc: SlackApiError) -> str:
    """Slack's error code, or the HTTP status when the answer is not Slack's JSON (a 502 page)."""
    data = exc.response.data
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {exc.response.status_code}"


def _by_an_app(event: dict[str, Any]) -> bool:
    """A post an app made (`slack_threads.app_of`), also with a person's own account (R185: such
    a post in the owner's name wrote a file unasked and ran /allow). The thread reader reads
    them as an app's too."""
    return bool(app_of(event))


def _chunks(text: str) -> list[Chunk]:
    """The messages that post `text`: one that renders to nothing (a link reference definition
    alone, `#`, `&nbsp;`) is posted as "(empty)", as on Telegram, never marked sent unposted."""
    return slack_chunks(text) or [Chunk("(empty)", "(empty)")]


class _Unanswered(DeliveryError):
    """A post whose request went and whose answer never came: Slack may have posted it."""


_LOOKUPS_BY: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "slack_lookups_by", default=None
)
"""Set while a message's lookups run before it is stored: when they must end (the loop's clock)."""


class _RateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """The SDK's wait out of a rate limit (Retry-After, a second at least), except for a lookup
    made before a message is stored: it would outlast `LOOKUP_WAIT`, so it fails at once and the
    message goes on without it (R202)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _LOOKUPS_BY.get() is not None:
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


class _ConnectRetry(AsyncConnectionErrorRetryHandler):
    """The SDK's retry of a call whose connection failed; for a post, only a connection never
    made: once its request went, Slack may have posted it, and an unmarked second post was a
    duplicate nobody could tell from a new message (R198)."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.endswith("/chat.postMessage") and not isinstance(
            error, aiohttp.ClientConnectorError
        ):
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def _may_pass(exc: SlackApiError) -> bool:
    status = exc.response.status_code
    return status >= 500 or status == 429 or _error_of(exc) in _SERVER_TROUBLE


async def _file_info(client: AsyncWebClient, stub: dict[str, Any], by: float) -> dict[str, Any]:
    """A file stub's whole file (files.info), or the stub when Slack gives none by `by`."""
    if asyncio.get_running_loop().time() >= by:
        return stub  # the time for lookups is up: not even asked
    try:
        async with asyncio.timeout_at(by):
            info = await client.files_info(file=str(stub.get("id", "")))
    except (SlackApiError, SlackClientError, TimeoutError, *_NETWORK) as exc:
        why = _error_of(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
        log.info("Slack: files.info for a shared file failed (%s)", why)
        return stub
    found = info.get("file")
    return found if isinstance(found, dict) else stub


@dataclass
class _PressAnswer:
    """A press on a card in a shared channel while the router handles it: until that press
    decides something (the card is marked), what goes back to its thread answers the press
    (a refusal, a wrong card, already decided) and is for the presser alone."""

    address: Address
    user: str
    response_url: str
    decided: bool = False
    done: bool = False

    def claims(self, address: Address) -> bool:
        return not (self.done or self.decided) and address == self.address

    def decide(self) -> None:
        """The press decided an approval: what the approved call and the resumed turn send is
        for the chat (R223: a card at a channel's top level has the address of the channel
        itself, so its approved post to the channel went to the presser alone)."""
        self.decided = True


_PRESS: contextvars.ContextVar[_PressAnswer | None] = contextvars.ContextVar(
    "slack_press", default=None
)
"""Set in the task that dispatches a press (tasks it starts get a copy of the same answer)."""


class _QuietBolt(logging.Filter):
    """bolt warns that SLACK_BOT_TOKEN (read from the environment) goes unused beside `client`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be unused" not in record.getMessage()


_BOLT_LOG = logging.getLogger("slack_bolt.steward")
_BOLT_LOG.addFilter(_QuietBolt())


class SlackChannel:
    name = "slack"

    def __init__(
        self,
        *,
        bot_token: str,
        app_token: str | None = None,
        signing_secret: str | None = None,
        api_url: str | None = None,
        http: HttpServer | None = None,
        ping_interval: float = 10.0,
        lookup_backoff: float = LOOKUP_BACKOFF,
    ) -> None:
        self._bot_token = bot_token
        self._lookup_backoff = lookup_backoff
        self._app_token = app_token
        self._signing_secret = signing_secret
        self._api_url = api_url
        self._http = http
        self._refusals = ThrottledLog(log)  # unsigned requests anyone can send
        self._ping_interval = ping_interval
        self.finished = asyncio.Event()
        self.bot_user_id = ""
        self.bot_id = ""  # its app's bot id: a post of Steward's may carry only that
        self._client: AsyncWebClient | None = None
        self._previews: AsyncWebClient | None = None  # no rate-limit retry (R228)
        self._app: AsyncApp | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._dispatch: Dispatch | None = None
        self._seen: deque[str] = deque(maxlen=2000)
        self._seen_set: set[str] = set()
        self._names: dict[str, asyncio.Future[str]] = {}
        self._lookup_failed: dict[str, float] = {}  # user -> when users.info last failed
        self._dms: dict[str, str] = {}  # user -> Steward's DM channel with them
        self._command_locks: dict[str, asyncio.Lock] = {}
        self._background = BackgroundTasks("Slack event handling")
        self._streams = True  # chat.startStream for direct messages (live_reply.py)
        self._partial: dict[tuple[Address, str], int] = {}  # parts of a long reply posted
        # posts that may have gone unanswered, by (channel, thread, text): SENT_AGAIN owed
        self._unsure: dict[tuple[str, Any, str], bool] = {}
        self._zones: dict[str, str] = {}  # user -> their profile's tz (users.info)
        self._zoned: set[str] = set()  # users whose time zone is settled
        self.working = WorkingMarks(lambda: self._client)
        """The ⏳ on a message while its turn runs (Slack has no typing indicator for bots)."""
        self.adopt_timezone: ZoneHook | None = None
        """Set by the composition root: a person with no time zone gets their profile's."""
        self.known: KnownHook | None = None
        """Set by the composition root: whether someone is allowed to talk to Steward (a
        stranger's mention fetches no thread: it is refused, and Slack's rate limit is the
        owner's)."""

    @property
    def mode(self) -> str:
        return "socket" if self._app_token else "http"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, dispatch: Dispatch) -> None:
        self._dispatch = dispatch
        if not self._app_token and not self._signing_secret:
            raise ChannelStartError(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
                "SLACK_SIGNING_SECRET (HTTP mode)"
            )
        if not self._app_token and self._http is None:
            raise ChannelStartError("Slack HTTP mode needs the webhook server")
        handlers = [
            _ConnectRetry(max_retry_count=3),
            _RateLimitRetry(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ]
        kwargs: dict[str, Any] = {"base_url": self._api_url} if self._api_url else {}
        self._client = AsyncWebClient(
            token=self._bot_token, retry_handlers=handlers, timeout=30, **kwargs
        )
        # previews (live_reply.py) are told a 429 at once and go quiet: slept out inside
        # chat.update, it held the final reply back by the stream's halt timeout (R228)
        self._previews = AsyncWebClient(
            token=self._bot_token,
            retry_handlers=[_ConnectRetry(max_retry_count=3)],
            timeout=30,
            **kwargs,
        )
        try:
            auth = await self._client.auth_test()
        except SlackApiError as exc:
            if _may_pass(exc):
                raise SlackUnreachable(f"Slack's Web API answered {_error_of(exc)}") from None
            raise ChannelStartError(f"Slack refused SLACK_BOT_TOKEN ({_error_of(exc)})") from None
        except (*_NETWORK, SlackClientError) as exc:
            raise SlackUnreachable(f"cannot reach Slack's Web API: {exc}") from None
        self.bot_user_id = str(auth.get("user_id") or "")
        self.bot_id = str(auth.get("bot_id") or "")
        self._app = self._build_app()
        if self._app_token:
            await self._connect_socket()
        else:
            assert self._http is not None
            self._http.unmount(EVENTS_PATH)
            self._http.mount(EVENTS_PATH, self._on_http)
            try:
                await self._http.start()
            except Exception as exc:
                raise ChannelStartError(f"Slack HTTP mode: {exc}") from None
        log.info("Slack: bot user %s (%s mode)", self.bot_user_id, self.mode)

    async def _connect_socket(self) -> None:
        assert self._client is not None and self._app is not None and self._app_token
        try:
            await self._client.apps_connections_open(app_token=self._app_token)
        except SlackApiError as exc:
            if _may_pass(exc):
                raise SlackUnreachable(f"Slack Socket Mode answered {_error_of(exc)}") from None
            raise ChannelStartError(
                f"Slack refused SLACK_APP_TOKEN ({_error_of(exc)}); it needs "
                "the connections:write scope"
            ) from None
        except (*_NETWORK, SlackClientError) as exc:
            raise SlackUnreachable(f"cannot reach Slack for Socket Mode: {exc}") from None
        self._socket = AsyncSocketModeHandler(
            self._app, self._app_token, ping_interval=self._ping_interval
        )
        try:
            async with asyncio.timeout(30):
                await self._socket.connect_async()
        except (TimeoutError, *_NETWORK, SlackClientError) as exc:
            with contextlib.suppress(Exception):  # nothing left running: it is started again
                await self._socket.close_async()
            self._socket = None
            if isinstance(exc, TimeoutError):
                raise SlackUnreachable("Slack Socket Mode did not connect within 30 s") from None
            raise SlackUnreachable(f"cannot connect to Slack Socket Mode: {exc}") from None

    async def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
        if self._http is not None and not self._app_token:
            self._http.unmount(EVENTS_PATH)
        await self._background.drain()
        self.finished.set()

    def _build_app(self) -> AsyncApp:
        app = AsyncApp(
            client=self._client,
            signing_secret=self._signing_secret or "",
            request_verification_enabled=not self._app_token,
            process_before_response=True,  # each listener returns when Slack may be told
            logger=_BOLT_LOG,
        )
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_mention)
        app.command(re.compile(r"^/"))(self._on_command)
        app.action(_ACTION)(self._on_action)
        return app

    async def _on_http(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405)
        assert self._app is not None
        try:  # read as text before Bolt checks the signature: anyone can send this
            bolt_request = await to_bolt_request(request)
        except (ValueError, LookupError, web.RequestPayloadError) as exc:  # not UTF-8, …
            self._refusals.warning(
                "Slack: a request whose body could not be read (%s)", type(exc).__name__
            )
            return web.Response(status=400, text="bad request")
        response = await self._app.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    # -- incoming ----------------------------------------------------------------------------

    def _first_time(self, key: str | None) -> bool:
        """False for an event (or press) Slack delivered before (its retries carry the same id)."""
        if not key:
            return True
        if key in self._seen_set:
            log.info("Slack event %s delivered again; dropped", key)
            return False
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(key)
        self._seen_set.add(key)
        return True

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if not self._first_time(body.get("event_id")):
            return
        if event.get("subtype") not in _ACCEPTED_SUBTYPES or _by_an_app(event):
            return
        if not event.get("user"):
            return
        if event.get("channel_type") != "im":
            # a thread reply without a mention: followed where Steward already answered
            thread, text = event.get("thread_ts"), str(event.get("text") or "")
            mentioned = self.bot_user_id and f"<@{self.bot_user_id}" in text
            if not thread or thread == event.get("ts") or mentioned:
                return  # other channel traffic reaches Steward through app_mention
            await self._until_stored(event, ChatKind.GROUP, unaddressed=True)
            return
        await self._until_stored(event, ChatKind.PRIVATE)

    async def _on_mention(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if not self._first_time(body.get("event_id")) or _by_an_app(event):
            return
        if not event.get("user"):
            return
        kind = ChatKind.PRIVATE if str(event.get("channel", "")).startswith("D") else ChatKind.GROUP
        await self._until_stored(event, kind)

    async def _until_stored(
        self, event: dict[str, Any], kind: ChatKind, *, unaddressed: bool = False
    ) -> None:
        """Deliver `event` in the background and return once it is stored (or, at the latest,
        after `STORE_WAIT` s): bolt acknowledges the event when this returns."""
        stored = asyncio.Event()
        by = asyncio.get_running_loop().time() + LOOKUP_WAIT  # the lookups' one deadline (R202)
        self._background.spawn(
            self._deliver_event(event, kind, stored, by, unaddressed=unaddressed)
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STORE_WAIT):
                await stored.wait()

    async def _deliver_event(
        self,
        event: dict[str, Any],
        kind: ChatKind,
        stored: asyncio.Event,
        by: float,
        *,
        unaddressed: bool = False,
    ) -> None:
        try:
            await self._deliver_stored(event, kind, stored, by, unaddressed=unaddressed)
        finally:
            stored.set()  # nothing stored (a file without a word) or a failure: no wait

    async def _deliver_stored(
        self,
        event: dict[str, Any],
        kind: ChatKind,
        stored: asyncio.Event,
        by: float,
        *,
        unaddressed: bool,
    ) -> None:
        """Hand `event` to the router, which stores it first; the lookups before that end at
        `by` (the loop's clock), and what they have not given by then is done without."""
        known = await self._known(str(event["user"]))
        lookups = _LOOKUPS_BY.set(by)
        try:
            message = await self._message_of(event, kind, by, known=known, unaddressed=unaddressed)
        finally:
            _LOOKUPS_BY.reset(lookups)  # the turn's own calls to Slack wait out rate limits
        if message is None:
            return
        # a stranger's message is refused at once: it earns no mark (nor a call to Slack)
        ts = str(event.get("ts") or "") if known else ""
        async with self.working.around(message.address.chat_id, ts):
            await self._dispatch_in(message, stored)

    async def _message_of(
        self,
        event: dict[str, Any],
        kind: ChatKind,
        by: float,
        *,
        known: bool,
        unaddressed: bool,
    ) -> IncomingMessage | None:
        """The message `event` carries, with what Slack tells of it by `by`; None for one with
        nothing to answer (a file shared without a word)."""
        text = str(event.get("text") or "")
        if self.bot_user_id:
            text = re.sub(rf"<@{re.escape(self.bot_user_id)}(\|[^>]*)?>", "", text)
        text = slack_to_plain(text).strip(" ,:\n")
        if known:  # a stranger's costs no call to Slack
            event = await self._files_looked_up(event, by)
        media = slack_files(event)
        if unopened := unopened_files(event):  # said, so the message is answered, not lost
            note = f"[{', '.join(unopened)}, which I cannot open]"
            text = f"{text}\n{note}" if text else note
        shared = shares_of(event)  # "Forward message": someone else's words, as on Telegram
        if shared:
            mine = (self.bot_user_id, self.bot_id)  # Steward's own: never its words (R257)
            words = [share_words(share, mine) for share in shared]
            text = "\n\n".join([*([text] if text else []), *words])
            media += tuple(m for share in shared for m in slack_files(share, shared=True))
        if not text and not media:
            if event.get("type") != "app_mention":
                return None  # e.g. a file shared without a word
            text = "hello"
        channel = str(event["channel"])
        ts = str(event.get("ts") or "")
        user = str(event["user"])
        asked = kind is ChatKind.GROUP and not unaddressed and known  # its thread is fetched
        name, thread = await asyncio.gather(  # side by side: one slow, the other still comes
            self._named(user, by),
            self._thread_of(channel, str(event.get("thread_ts") or "") if asked else "", ts, by),
        )
        return IncomingMessage(
            sender=Identity("slack", user),
            address=Address("slack", channel, str(event.get("thread_ts") or ts) or None),
            text=text,
            platform_message_id=f"{channel}:{ts}" if ts else None,
            sender_name=name,
            chat_kind=kind,
            forwarded_from=share_author(shared[0]) if shared else None,
            media=media,
            replying_to=thread,
            unaddressed=unaddressed,
        )

    async def _named(self, user: str, by: float) -> str:
        """The sender's name, their time zone settled, as far as Slack answers by `by` (its
        lookup goes on after: the name is there for the next message, R202)."""
        name = ""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(by):
                name = await self._name_of(user)
        await self._settle_zone(user, by=by)
        return name

    async def _known(self, user: str) -> bool:
        return self.known is None or await self.known(Identity("slack", user))

    async def _thread_of(self, channel: str, thread_ts: str, ts: str, by: float) -> ReplyRef | None:
        """A mention inside a thread (not the thread's first message): its earlier messages
        (slack_threads.py), if Slack gives them by `by`; the core leaves them out where Steward
        already follows it."""
        if not thread_ts or not ts or thread_ts == ts or self._client is None:
            return None
        return await thread_before(
            self._client, channel, thread_ts, ts, bot_user_id=self.bot_user_id, by=by
        )

    async def _on_command(self, ack: Any, command: dict[str, Any]) -> None:
        """A slash command is seen by no one but who typed it, wherever it was typed (a
        channel, a DM with a colleague that Steward is not in): it is answered in that
        person's direct messages with Steward, never where it was typed. Acknowledged at
        once (Slack waits 3 s); the DM is opened after, with Slack's retries."""
        user = str(command.get("user_id", ""))
        where = str(command.get("channel_id", ""))
        if not user or not where:
            await ack()
            return
        known = self._dms.get(user)
        told = not (known == where or (known is None and where.startswith("D")))
        if told:
            await ack("I answer in our direct messages.")
        else:
            await ack()  # most likely typed in our DM: told later if it was not
        name = str(command.get("command", "")).lstrip("/").lower()
        args = slack_to_plain(str(command.get("text") or "")).strip()
        call: CommandCall | None
        if name == "steward":  # `/steward goal add x` → `/goal add x`, typed: parsed once, here
            text = args if args.startswith("/") else (f"/{args}" if args else "/help")
            call = CommandCall.parse(text)
            if call is None:  # `/steward 1 2 3` went to the model as "/1 2 3" (R186)
                text = f"/steward {args}"
                call = CommandCall("help", args)  # "There is no command /1 2 3", with usage
        else:
            call = CommandCall(name, args)
            text = call.text
        if (  # "here" is where it was typed, though the answer goes to the DM
            call is not None
            and call.name == "briefing"
            and re.fullmatch(r"to\s+here", call.args.strip(), re.I)
            and not where.startswith("D")
        ):
            call = CommandCall("briefing", f"to {where}")
            text = call.text
        self._background.spawn(self._command_in(command, user, text, call, told=told))

    async def _command_in(
        self,
        command: dict[str, Any],
        user: str,
        text: str,
        call: CommandCall | None,
        *,
        told: bool,
    ) -> None:
        # one person's commands in the order typed: the first may wait on Slack for the DM;
        # no await between the lock's release and the router taking the command's place
        where = str(command.get("channel_id", ""))
        if not where.startswith("D") and not await self._known(user):
            # a stranger's command in a channel: refused to them alone, where they typed it
            # (R174: a DM was opened with them, and the owner told they wrote "privately")
            who = Identity("slack", user)
            refusal = (
                "Sorry, I'm a personal assistant and only talk to the people my owner allows. "
                f"Your id is {who}; my owner can admit you with /allow {who}."
            )
            await self._privately(command, refusal)
            return
        async with self._command_locks.setdefault(user, asyncio.Lock()):
            dm = await self._dm_of(user, wait=30.0)
            if dm is None:
                await self._privately(command, "I could not open our direct messages to "
                                      "answer there; please write to me there.")  # fmt: skip
                return
            if dm != where and not told:
                await self._privately(command, "I answer in our direct messages.")
            await self._settle_zone(user)
        trigger = command.get("trigger_id")
        await self._dispatch_in(
            IncomingMessage(
                sender=Identity("slack", user),
                address=Address("slack", dm),
                text=text,
                platform_message_id=f"cmd:{trigger}" if trigger else None,
                sender_name=str(command.get("user_name") or ""),
                chat_kind=ChatKind.PRIVATE,
                command=call,
            )
        )

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        approval_id = str(action.get("value") or "")
        choice = SLACK_ACTIONS.get(str(action.get("action_id")))
        user = str((body.get("user") or {}).get("id") or "")
        channel = str(
            (body.get("channel") or {}).get("id")
            or (body.get("container") or {}).get("channel_id")
            or ""
        )
        if choice is None or not _APPROVAL_ID.match(approval_id) or not user or not channel:
            return
        trigger = str(body.get("trigger_id") or action.get("action_ts") or "")
        if not self._first_time(f"cb:{trigger}" if trigger else None):
            return
        message = body.get("message") or {}
        thread = message.get("thread_ts")
        pressed = message.get("ts") or (body.get("container") or {}).get("message_ts")
        press = Press(approval_id, choice, str(pressed) if pressed else None)
        address = Address("slack", channel, str(thread) if thread else None)
        message_in = IncomingMessage(
            sender=Identity("slack", user),
            address=address,
            text=press.text,
            platform_message_id=f"cb:{trigger}" if trigger else None,
            sender_name=str((body.get("user") or {}).get("name") or ""),
            chat_kind=ChatKind.PRIVATE if channel.startswith("D") else ChatKind.GROUP,
            press=press,
        )
        if channel.startswith("D"):  # our direct messages: every answer is theirs alone
            self._background.spawn(self._dispatch_in(message_in))
            return
        answer = _PressAnswer(address, user, str(body.get("response_url") or ""))
        self._background.spawn(self._press_in(message_in, answer))

    async def _press_in(self, message: IncomingMessage, answer: _PressAnswer) -> None:
        """Dispatch a press in a shared channel with its answer claimed for the presser: a
        refusal posted in the thread would show everyone who pressed what, and why not."""
        _PRESS.set(answer)  # this task's own context
        DECIDING.set(answer.decide)  # before the approved call runs, as on Telegram (R203)
        try:
            await self._dispatch_in(message)
        finally:
            answer.done = True

    async def _dispatch_in(
        self, message: IncomingMessage, stored: asyncio.Event | None = None
    ) -> None:
        assert self._dispatch is not None
        await self._dispatch(message, stored=stored)

    async def _answer_presser(self, answer: _PressAnswer, text: str) -> None:
        """`text` to the presser alone: through the press's response_url, else
        chat.postEphemeral; never posted for all (a failure is logged and dropped: queued, it
        would be redelivered in the open)."""
        for chunk in _chunks(text):
            if not await self._ephemeral(answer, chunk):
                log.warning("Slack: the answer to %s's press could not be sent", answer.user)
                return

    async def _ephemeral(self, answer: _PressAnswer, chunk: Chunk) -> bool:
        if answer.response_url:
            with contextlib.suppress(SlackApiError, SlackClientError, *_NETWORK):
                sent = await AsyncWebhookClient(answer.response_url).send(
                    text=chunk.markup,
                    response_type="ephemeral",
                    replace_original=False,
                    **_NO_UNFURL,
                )
                if sent.status_code == 200:
                    return True
        try:
            await self._require_client().chat_postEphemeral(
                channel=answer.address.chat_id,
                user=answer.user,
                text=chunk.markup,
                thread_ts=answer.address.thread_id,
                mrkdwn=True,
            )
        except (DeliveryError, SlackApiError, SlackClientError, *_NETWORK):
            return False
        return True

    async def _privately(self, command: dict[str, Any], text: str) -> None:
        """A word to the typer alone, where the command was typed (its response_url)."""
        url = str(command.get("response_url") or "")
        if url:
            with contextlib.suppress(SlackApiError, SlackClientError, *_NETWORK):
                await AsyncWebhookClient(url).send(text=text, response_type="ephemeral")

    async def _dm_of(self, user: str, *, wait: float = 10.0) -> str | None:
        """Steward's own direct-message channel with `user` (conversations.open, asked once
        per user); None when Slack would not open it within `wait` seconds."""
        known = self._dms.get(user)
        if known is not None:
            return known
        if self._client is None:
            return None
        try:
            async with asyncio.timeout(wait):
                opened = await self._client.conversations_open(users=user)
        except (SlackApiError, SlackClientError, TimeoutError, *_NETWORK):
            return None
        channel = str((opened.get("channel") or {}).get("id") or "")
        if not channel:
            return None
        self._dms[user] = channel
        return channel

    async def _settle_zone(self, user: str, *, by: float | None = None) -> None:
        """A person with no time zone gets their Slack profile's (`user.tz`, fetched with the
        name), through `adopt_timezone`, before their message is handled: "tomorrow 9:00" is
        then their 9:00. One they set is kept; a stranger's is settled once admitted. A profile
        Slack has not given by `by` is settled once it does, the message going on (R202)."""
        hook = self.adopt_timezone
        if hook is None or user in self._zoned:
            return
        try:
            async with asyncio.timeout_at(by):
                await self._name_of(user)
        except TimeoutError:
            self._background.spawn(self._settle_zone(user))
            return
        zone = self._zones.get(user)
        if not zone:
            return
        try:
            settled = await hook(Identity("slack", user), zone)
        except Exception:
            log.exception("Slack: adopting %s's profile time zone failed", user)
            return
        if settled:
            self._zoned.add(user)

    async def _files_looked_up(self, event: dict[str, Any], by: float) -> dict[str, Any]:
        """A Slack Connect share's files come as stubs (`"file_access": "check_file_info"`,
        no link): files.info gives the file whole. One it does not (by `by`) is left a stub
        (named to the person as a file Steward cannot open)."""
        files = event.get("files")
        if not isinstance(files, list) or self._client is None:
            return event
        filled = []
        for item in files:
            if isinstance(item, dict) and item.get("file_access") == "check_file_info":
                item = await _file_info(self._client, item, by)
            filled.append(item)
        return {**event, "files": filled}

    async def _name_of(self, user: str) -> str:
        """The user's display name (users.info, asked once per user, which also gives their
        profile's time zone); "" when unknown. A failed lookup is not kept as the answer: it is
        asked again at a later message, `lookup_backoff` seconds after the failure at least."""
        known = self._names.get(user)
        if known is None:
            failed = self._lookup_failed.get(user)
            if (
                failed is not None
                and asyncio.get_running_loop().time() - failed < self._lookup_backoff
            ):
                return ""
            known = self._names[user] = asyncio.ensure_future(self._lookup_name(user))
        return await asyncio.shield(known)

    async def _lookup_name(self, user: str) -> str:
        try:
            if self._client is None:
                raise SlackClientError("the Slack channel has not started")
            async with asyncio.timeout(5):
                info = await self._client.users_info(user=user)
        except (SlackApiError, SlackClientError, TimeoutError, *_NETWORK) as exc:
            why = _error_of(exc) if isinstance(exc, SlackApiError) else str(exc) or repr(exc)
            log.info("Slack: users.info for %s failed (%s); asked again later", user, why)
            self._names.pop(user, None)  # this lookup's own entry: none other is made meanwhile
            self._lookup_failed[user] = asyncio.get_running_loop().time()
            return ""
        self._lookup_failed.pop(user, None)
        data = info.get("user") or {}
        if isinstance(data.get("tz"), str) and data["tz"]:
            self._zones[user] = data["tz"]
        profile = data.get("profile") or {}
        return str(profile.get("display_name") or data.get("real_name") or data.get("name") or "")

    # -- outgoing ----------------------------------------------------------------------------

    def _require_client(self) -> AsyncWebClient:
        if self._client is None:
            raise DeliveryError("the Slack channel has not started")
        return self._client

    async def _post(self, **kwargs: Any) -> str:
        """Post one message; its ts. After a post whose answer was lost, the next (here, or the
        courier's redelivery) goes after SENT_AGAIN."""
        key = (str(kwargs["channel"]), kwargs.get("thread_ts"), str(kwargs.get("text")))
        for attempt in range(1, POST_TRIES + 1):
            try:
                if self._unsure.get(key):
                    await self._post_once(
                        channel=kwargs["channel"],
                        thread_ts=kwargs.get("thread_ts"),
                        text=SENT_AGAIN,
                    )
                    self._unsure[key] = False
                ts = await self._post_once(**kwargs)
            except _Unanswered as exc:
                self._unsure[key] = True
                if attempt == POST_TRIES:
                    raise DeliveryError(str(exc), unsure=True) from exc
                await asyncio.sleep(0.5 * attempt)
                continue
            except DeliveryError as exc:
                if exc.permanent:
                    self._unsure.pop(key, None)
                else:  # an earlier try's answer was lost: the channel may have the post
                    exc.unsure = bool(self._unsure.get(key))
                raise
            self._unsure.pop(key, None)
            return ts
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post_once(self, **kwargs: Any) -> str:
        client = self._require_client()
        try:
            response = await client.chat_postMessage(**kwargs, **_NO_UNFURL)
        except SlackApiError as exc:
            error = _error_of(exc)
            # the channel or person is gone, or the bot is out of it: trying again cannot help
            raise DeliveryError(f"Slack: {error}", permanent=error in _GONE) from exc
        except (aiohttp.ClientConnectorError, SlackClientError) as exc:  # nothing went
            raise DeliveryError(f"Slack: {exc}") from exc
        except _NETWORK as exc:
            raise _Unanswered(f"Slack: no answer to a post ({type(exc).__name__})") from exc
        return str(response.get("ts") or "")

    async def send_text(self, address: Address, text: str) -> str | None:
        """Post `text`, in several messages when long; a failure part-way is resumed by the
        redelivery from the part that failed (the parts before it are not posted twice, after a
        restart too where the courier keeps count of them with the message: `Parts`). The
        courier's note for a resumed message goes just before the first part left, and not
        at all when none is (`Resumed`, R189)."""
        answer = _PRESS.get()
        if answer is not None and answer.claims(address):
            await self._answer_presser(answer, text)
            return None
        chunks = _chunks(text)
        key = (address, text)
        kept = parts_of(text)
        # parts a failed earlier attempt already posted
        done = kept.done if kept is not None else self._partial.get(key, 0)
        last: str | None = None
        try:
            for index, chunk in enumerate(chunks[done:], start=done):
                if isinstance(kept, Resumed):
                    await kept.head()
                last = await self._post(
                    channel=address.chat_id,
                    text=chunk.markup,
                    thread_ts=address.thread_id,
                    mrkdwn=True,
                )
                self._partial[key] = index + 1
                if kept is not None:
                    await kept.delivered(index + 1)
        except DeliveryError as exc:
            if exc.permanent:  # never tried again
                self._partial.pop(key, None)
            raise
        self._partial.pop(key, None)
        return last

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        text, blocks = slack_card(prompt)
        return await self._post(
            channel=address.chat_id, text=text, blocks=blocks, thread_ts=address.thread_id
        )

    async def mark_approval(self, address: Address, platform_message_id: str, text: str) -> None:
        answer = _PRESS.get()
        if answer is not None:  # the press decided: what follows (the resumed turn) is for all
            answer.decided = True
        client = self._require_client()
        try:
            await client.chat_update(
                channel=address.chat_id,
                ts=platform_message_id,
                text=text,
                blocks=slack_marked(text),
                **_NO_UNFURL,
            )
        except SlackApiError as exc:
            raise DeliveryError(f"Slack: {_error_of(exc)}") from exc
        except (*_NETWORK, SlackClientError) as exc:
            raise DeliveryError(f"Slack: {exc}") from exc

    async def show_typing(self, address: Address) -> None:
        return None  # Slack has no typing indicator for bots: `self.working` marks the message

    async def fetch_file(self, ref: MediaRef, max_bytes: int) -> bytes:
        """A shared file (its url_private_download), with the bot token, capped (media.py)."""
        return await slack_fetch(self._bot_token, ref, max_bytes, api_url=self._api_url)

    def open_live(self, address: Address) -> SlackLive | None:
        """A reply shown as it grows (live_reply.py): a stream in a direct message's thread,
        else a posted and updated message; None before the channel started."""
        if self._previews is None:
            return None
        stream = self._streams and address.chat_id.startswith("D")
        return SlackLive(
            self._previews, self.send_text, address, stream=stream, takes_down=self._client
        )
