"""A fake Slack (Web API + Socket Mode + response_url) for the real slack_sdk / slack-bolt clients.

`FakeSlack` serves on 127.0.0.1 at a random port. Point clients at it with
`AsyncWebClient(token=..., base_url=fake.api_url)`; Socket Mode clients get `fake.socket_url` from
`apps.connections.open`. Module-level helpers build Events API payloads and send them, signed, to an
app's HTTP endpoint (bolt's `/slack/events`).

(Over 400 lines: the Web API, Socket Mode and response_url are one fake Slack, which the real
clients talk to at once.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web

JSON_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "unfurls", "user_auth_blocks", "options"}
)
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

Handler = Callable[["ApiCall"], dict[str, Any]]


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    result: dict[str, Any] | None = None
    """What the fake answered (e.g. the `ts` of a posted message)."""


@dataclass
class _Injection:
    status: int
    body: dict[str, Any] | str
    """Slack's JSON, or a page (a load balancer's 503) as text."""
    headers: dict[str, str] = field(default_factory=dict)


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    for key in JSON_FIELDS & params.keys():
        value = params[key]
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


class FakeSlack:
    """Async context manager serving a fake Slack on 127.0.0.1.

    `socket_silent = True` makes the server stop answering websocket pings and stop sending
    automatic frames (hello on new connections); explicit `send_envelope` calls still go out.
    `port` serves on that port (Slack coming back where a client was pointed); 0: any free one.
    """

    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T0001",
        signing_secret: str = "test-signing-secret",
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        port: int = 0,
    ) -> None:
        self.port = port
        self.bot_user_id, self.bot_id, self.team_id = bot_user_id, bot_id, team_id
        self.signing_secret, self.bot_token, self.app_token = signing_secret, bot_token, app_token
        self.calls: list[ApiCall] = []
        self.responses: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}  # per-user overrides merged into users.info
        self.handlers: dict[str, Handler] = {}  # extra / overriding Web API methods
        self.files: dict[str, tuple[bytes, str]] = {}  # file id -> (content, mimetype)
        self.file_objects: dict[str, dict[str, Any]] = {}  # file id -> what files.info says
        self.file_requests: list[tuple[str, str]] = []  # (file id, Authorization header)
        self.acks: dict[str, dict[str, Any]] = {}
        self.socket_messages: list[dict[str, Any]] = []  # every text frame the client sent
        self.socket_connections = 0  # total websocket connections accepted
        self.socket_silent = False
        self._sockets: dict[web.WebSocketResponse, asyncio.Transport | None] = {}
        self._injections: dict[str, deque[_Injection]] = {}
        self.streams: dict[str, dict[str, Any]] = {}
        """chat.startStream messages by ts: channel, thread_ts, text so far, state."""
        self.deleted: list[tuple[str, str]] = []
        """(channel, ts) of every chat.delete."""
        self.update_interval = 0.0
        """When set: chat.update / chat.appendStream of the same message sooner than this many
        seconds after the last one are answered 429 `ratelimited` (Retry-After: 1)."""
        self._paced: dict[tuple[str, str], float] = {}
        self._ts = itertools.count(100, 100)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.history: dict[str, dict[str, dict[str, Any]]] = {}
        """What was said in each channel, by ts: every message event delivered (signed or
        through Socket Mode), every post of the bot, and `remember`ed ones; it answers
        conversations.replies."""

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/response/{rid}", self._response)
        app.router.add_get("/files-pri/{team}-{fid}/{name}", self._file)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        _OPEN.append(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            _OPEN.remove(self)
        await self.drop_socket()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    @property
    def socket_url(self) -> str:
        return f"{self.base_url.replace('http', 'ws', 1)}/socket"

    def response_url(self) -> str:
        return f"{self.base_url}/response/{uuid.uuid4().hex[:12]}"

    # ------------------------------------------------------------------ inspection
    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None) -> list[ApiCall]:
        return [
            c
            for c in self.calls_to("chat.postMessage")
            if channel is None or c.params.get("channel") == channel
        ]

    async def _wait(
        self, predicate: Callable[[], bool], seconds: float, what: Callable[[], str]
    ) -> None:
        try:
            async with asyncio.timeout(seconds):
                while not predicate():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(what()) from None

    def _notify(self) -> None:
        self._changed.set()

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[ApiCall]:  # noqa: ASYNC109
        await self._wait(
            lambda: len(self.calls_to(method)) >= count,
            timeout,
            lambda: (
                f"expected {count} x {method}, got {len(self.calls_to(method))}; "
                f"methods seen: {[c.method for c in self.calls]}"
            ),
        )
        return self.calls_to(method)

    async def wait_responses(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        await self._wait(
            lambda: len(self.responses) >= count,
            timeout,
            lambda: f"expected {count} response_url posts, got {len(self.responses)}",
        )
        return self.responses

    # ------------------------------------------------------------------ failure injection
    def rate_limit_next(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        inj = _Injection(
            429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        )
        self._injections.setdefault(method, deque()).extend([inj] * times)

    def fail_next(self, method: str, error: str, times: int = 1) -> None:
        inj = _Injection(200, {"ok": False, "error": error})
        self._injections.setdefault(method, deque()).extend([inj] * times)

    def server_error_next(self, method: str, *, status: int = 503, times: int = 1) -> None:
        """Answer `method` with an HTML error page, as Slack's edge does when it is down."""
        inj = _Injection(status, "<html><body>Service Unavailable</body></html>")
        self._injections.setdefault(method, deque()).extend([inj] * times)

    # ------------------------------------------------------------------ Web API
    def next_ts(self) -> str:
        n = next(self._ts)
        return f"{1700000000 + n // 1_000_000}.{n % 1_000_000:06d}"

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items()})
        auth = request.headers.get("Authorization", "")
        token = (
            auth.removeprefix("Bearer ")
            if auth.startswith("Bearer ")
            else params.pop("token", None)
        )
        call = ApiCall(method, _decode_json_fields(params), dict(request.headers), token)
        self.calls.append(call)
        self._notify()

        queue = self._injections.get(method)
        if queue:
            inj = queue.popleft()
            if isinstance(inj.body, str):
                return web.Response(
                    text=inj.body, status=inj.status, headers=inj.headers, content_type="text/html"
                )
            return web.json_response(inj.body, status=inj.status, headers=inj.headers)
        expected = self.app_token if method in APP_TOKEN_METHODS else self.bot_token
        if token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self._too_soon(method, call.params):
            call.result = {"ok": False, "error": "ratelimited"}
            return web.json_response(call.result, status=429, headers={"Retry-After": "1"})
        handler = self.handlers.get(method) or self._builtin(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        call.result = handler(call)
        return web.json_response(call.result)

    def _builtin(self, method: str) -> Handler | None:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": lambda c: {"ok": True, "message_ts": self.next_ts()},
            "chat.delete": self._chat_delete,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "files.info": self._files_info,
            "apps.connections.open": lambda c: {"ok": True, "url": self.socket_url},
            "reactions.add": lambda c: {"ok": True},
            "reactions.remove": lambda c: {"ok": True},
            "views.publish": lambda c: {
                "ok": True,
                "view": {"id": "V1", **(c.params.get("view") or {})},
            },
        }.get(method)

    def _auth_test(self, call: ApiCall) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake-team.slack.com/",
            "team": "Fake Team",
            "user": "steward",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, call: ApiCall) -> dict[str, Any]:
        ts = self.next_ts()
        p = call.params
        message = {
            "type": "message",
            "text": p.get("text", ""),
            "ts": ts,
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "team": self.team_id,
        }
        for key in ("blocks", "thread_ts", "attachments", "metadata"):
            if p.get(key) is not None:
                message[key] = p[key]
        self.remember({**message, "channel": p.get("channel")})
        return {"ok": True, "channel": p.get("channel"), "ts": ts, "message": message}

    def _chat_update(self, call: ApiCall) -> dict[str, Any]:
        p = call.params
        message = {"text": p.get("text", ""), "user": self.bot_user_id, "bot_id": self.bot_id}
        if p.get("blocks") is not None:
            message["blocks"] = p["blocks"]
        return {
            "ok": True,
            "channel": p.get("channel"),
            "ts": p.get("ts"),
            "text": p.get("text", ""),
            "message": message,
        }

    def _too_soon(self, method: str, params: dict[str, Any]) -> bool:
        if not self.update_interval or method not in ("chat.update", "chat.appendStream"):
            return False
        key = (str(params.get("channel")), str(params.get("ts")))
        now = time.perf_counter()
        last = self._paced.get(key)
        if last is not None and now - last < self.update_interval:
            return True
        self._paced[key] = now
        return False

    def _chat_delete(self, call: ApiCall) -> dict[str, Any]:
        channel, ts = str(call.params.get("channel")), str(call.params.get("ts"))
        self.deleted.append((channel, ts))
        self.streams.pop(ts, None)
        return {"ok": True, "channel": channel, "ts": ts}

    def _start_stream(self, call: ApiCall) -> dict[str, Any]:
        """chat.startStream: thread_ts is required; in channels (not DMs) the recipient too."""
        p = call.params
        channel = str(p.get("channel") or "")
        if not channel or not p.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        recipient = p.get("recipient_user_id") and p.get("recipient_team_id")
        if not channel.startswith("D") and not recipient:
            return {"ok": False, "error": "missing_recipient_user_id"}
        text = str(p.get("markdown_text") or "")
        if len(text) > 12_000:
            return {"ok": False, "error": "msg_too_long"}
        ts = self.next_ts()
        self.streams[ts] = {
            "channel": channel,
            "thread_ts": p["thread_ts"],
            "text": text,
            "state": "streaming",
        }
        return {"ok": True, "channel": channel, "ts": ts}

    def _streaming(self, call: ApiCall) -> dict[str, Any] | None:
        stream = self.streams.get(str(call.params.get("ts")))
        if stream is None or stream["channel"] != call.params.get("channel"):
            return None
        return stream

    def _append_stream(self, call: ApiCall) -> dict[str, Any]:
        stream = self._streaming(call)
        if stream is None:
            return {"ok": False, "error": "message_not_found"}
        if stream["state"] != "streaming":
            return {"ok": False, "error": "message_not_in_streaming_state"}
        stream["text"] += str(call.params.get("markdown_text") or "")
        return {"ok": True, "channel": stream["channel"], "ts": call.params.get("ts")}

    def _stop_stream(self, call: ApiCall) -> dict[str, Any]:
        stream = self._streaming(call)
        if stream is None:
            return {"ok": False, "error": "message_not_found"}
        if stream["state"] != "streaming":
            return {"ok": False, "error": "message_not_in_streaming_state"}
        stream["text"] += str(call.params.get("markdown_text") or "")
        stream["state"] = "stopped"
        message = {"text": stream["text"], "user": self.bot_user_id, "bot_id": self.bot_id}
        ts = call.params.get("ts")
        return {"ok": True, "channel": stream["channel"], "ts": ts, "message": message}

    def _conversations_info(self, call: ApiCall) -> dict[str, Any]:
        cid = str(call.params.get("channel", ""))
        channel: dict[str, Any] = {
            "id": cid,
            "name": cid.lower(),
            "is_im": cid.startswith("D"),
            "is_channel": cid.startswith("C"),
            "is_group": cid.startswith("G"),
            "is_private": not cid.startswith("C"),
        }
        if cid.startswith("D"):
            channel["user"] = "U" + cid[1:]
        return {"ok": True, "channel": channel}

    def remember(self, event: dict[str, Any]) -> None:
        """Keep a message (an event's `message` / `app_mention`, a post) in its channel's
        history, as Slack keeps what it delivered; its first copy wins."""
        channel, ts = str(event.get("channel") or ""), str(event.get("ts") or "")
        if event.get("type") not in ("message", "app_mention") or not channel or not ts:
            return
        kept = {k: v for k, v in event.items() if k not in ("channel", "channel_type", "event_ts")}
        kept["type"] = "message"
        self.history.setdefault(channel, {}).setdefault(ts, kept)

    def _conversations_replies(self, call: ApiCall) -> dict[str, Any]:
        """A thread, as Slack gives it: the parent then its replies, oldest first, within
        `oldest`/`latest` (each excluded unless `inclusive`), `limit` a page (cursor: offset)."""
        p = call.params
        channel = self.history.get(str(p.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        root = str(p.get("ts", ""))
        if root not in channel:
            return {"ok": False, "error": "thread_not_found"}
        inclusive = str(p.get("inclusive", "")).lower() in ("1", "true")
        latest, oldest = p.get("latest"), p.get("oldest")

        def within(ts: str) -> bool:
            if latest and (
                float(ts) > float(latest) or (float(ts) == float(latest) and not inclusive)
            ):
                return False
            return not (
                oldest
                and (float(ts) < float(oldest) or (float(ts) == float(oldest) and not inclusive))
            )

        thread = sorted(
            (
                m
                for ts, m in channel.items()
                if (ts == root or m.get("thread_ts") == root) and within(ts)
            ),
            key=lambda m: float(m["ts"]),
        )
        start = int(p.get("cursor") or 0)
        limit = int(p.get("limit") or 1000)
        page = thread[start : start + limit]
        more = start + limit < len(thread)
        return {
            "ok": True,
            "messages": [dict(m) for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _conversations_open(self, call: ApiCall) -> dict[str, Any]:
        users = call.params.get("users") or ""
        first = str(users).split(",")[0]
        cid = "D" + first.removeprefix("U") if first else "D" + uuid.uuid4().hex[:8].upper()
        return {"ok": True, "channel": {"id": cid, "is_im": True, "user": first}}

    def _users_info(self, call: ApiCall) -> dict[str, Any]:
        uid = str(call.params.get("user", ""))
        user = {
            "id": uid,
            "team_id": self.team_id,
            "name": uid.lower(),
            "real_name": f"User {uid}",
            "tz": "UTC",
            "tz_label": "Coordinated Universal Time",
            "tz_offset": 0,
            "is_bot": False,
            "deleted": False,
            "profile": {"display_name": uid.lower(), "real_name": f"User {uid}"},
        }
        return {"ok": True, "user": {**user, **self.users.get(uid, {})}}

    def add_file(
        self, content: bytes, *, name: str, mimetype: str, size: int | None = None, **more: Any
    ) -> dict[str, Any]:
        """Serve `content` as a shared file; returns the file object a `file_share` event
        carries (`size` claims another size, e.g. 60 MB). Downloads need the bot token."""
        file_id = f"F{len(self.files) + 1:08d}"
        self.files[file_id] = (content, mimetype)
        url = f"{self.base_url}/files-pri/{self.team_id}-{file_id}/{name}"
        self.file_objects[file_id] = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "size": len(content) if size is None else size,
            "url_private": url,
            "url_private_download": url + "?download=1",
            **more,
        }
        return dict(self.file_objects[file_id])

    def _files_info(self, call: ApiCall) -> dict[str, Any]:
        """files.info: the whole file object, links included (a Slack Connect share's event
        carries only a stub, `"file_access": "check_file_info"`)."""
        found = self.file_objects.get(str(call.params.get("file", "")))
        return {"ok": True, "file": found} if found else {"ok": False, "error": "file_not_found"}

    async def _file(self, request: web.Request) -> web.Response:
        """GET url_private(_download): the bytes with the bot token; Slack's sign-in page
        (HTML, 200) without it, as the real file host answers."""
        file_id = request.match_info["fid"]
        auth = request.headers.get("Authorization", "")
        self.file_requests.append((file_id, auth))
        self._notify()
        if auth != f"Bearer {self.bot_token}":
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        if file_id not in self.files:
            return web.Response(status=404, text="file_not_found")
        content, mimetype = self.files[file_id]
        return web.Response(body=content, content_type=mimetype)

    async def _response(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = await request.json()
        else:
            body = dict(await request.post())
        self.responses.append(body)
        self._notify()
        return web.Response(text="ok")

    # ------------------------------------------------------------------ Socket Mode
    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        transport = request.transport
        await ws.prepare(request)
        self.socket_connections += 1
        if not self.socket_silent:
            hello = {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A1"},
            }
            await ws.send_json(hello)
        self._sockets[ws] = transport  # type: ignore[assignment]
        self._notify()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    if not self.socket_silent:
                        await ws.pong(msg.data)
                elif msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    self.socket_messages.append(data)
                    if "envelope_id" in data:
                        self.acks[data["envelope_id"]] = data
                    self._notify()
        finally:
            self._sockets.pop(ws, None)
            self._notify()
        return ws

    @property
    def connected_sockets(self) -> int:
        return sum(1 for ws in self._sockets if not ws.closed)

    async def wait_socket_connected(self, timeout: float = 5.0, *, count: int = 1) -> None:  # noqa: ASYNC109
        """Wait for an open socket, and for `count` connections accepted in total (reconnects)."""
        await self._wait(
            lambda: self.connected_sockets > 0 and self.socket_connections >= count,
            timeout,
            lambda: (
                f"socket not connected (open={self.connected_sockets}, "
                f"total={self.socket_connections}, wanted total>={count}); "
                f"methods seen: {[c.method for c in self.calls]}"
            ),
        )

    async def send_envelope(
        self, type: str, payload: dict[str, Any], *, retry_attempt: int = 0
    ) -> str:
        sockets = [ws for ws in self._sockets if not ws.closed]
        if not sockets:
            raise RuntimeError("no Socket Mode client connected")
        if type == "events_api" and isinstance(payload.get("event"), dict):
            self.remember(payload["event"])
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": payload,
            "accepts_response_payload": type != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        for ws in sockets:
            await ws.send_json(envelope)
        return envelope_id

    async def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        await self._wait(
            lambda: envelope_id in self.acks,
            timeout,
            lambda: f"no ack for {envelope_id}; acks: {list(self.acks)}",
        )
        return self.acks[envelope_id]

    async def drop_socket(self, *, graceful: bool = False) -> None:
        """Close sockets: abruptly (TCP abort, no close frame) or with a close frame."""
        for ws, transport in list(self._sockets.items()):
            if graceful:
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY)
            elif transport is not None:
                transport.abort()
        self._sockets.clear()
        self._notify()


# ---------------------------------------------------------------------- signed requests
_seq = itertools.count(1)


_OPEN: list[FakeSlack] = []
"""The fakes serving now: a signed event posted to an app is remembered by the one it is
signed for (Slack keeps the messages it delivers)."""


def _now_ts() -> str:
    return f"{int(time.time())}.{next(_seq) % 1_000_000:06d}"


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    content_type = (
        "application/json" if body.startswith("{") else "application/x-www-form-urlencoded"
    )
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


def event_body(
    event: dict[str, Any],
    *,
    team_id: str = "T0001",
    event_id: str | None = None,
    api_app_id: str = "A1",
) -> dict[str, Any]:
    return {
        "token": "verification-token",
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [
            {"team_id": team_id, "user_id": "UBOT", "is_bot": True, "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }


def message_event(
    text: str,
    *,
    user: str = "U123",
    channel: str = "D123",
    channel_type: str = "im",
    ts: str | None = None,
    thread_ts: str | None = None,
    files: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    ts = ts or _now_ts()
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "channel_type": channel_type,
        "team": "T0001",
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    if files:
        event |= {"subtype": "file_share", "files": files, "upload": False}
    return event


def app_mention_event(
    text: str, *, user: str, channel: str = "C123", ts: str | None = None
) -> dict[str, Any]:
    ts = ts or _now_ts()
    return {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel": channel,
        "team": "T0001",
    }


_UNSET_RESPONSE_URL = "http://127.0.0.1:9/response/unset"  # loopback, refused: pass a real one


def slash_command_form(
    command: str,
    text: str,
    *,
    user_id: str,
    channel_id: str = "D123",
    response_url: str = _UNSET_RESPONSE_URL,
) -> dict[str, str]:
    return {
        "token": "verification-token",
        "team_id": "T0001",
        "team_domain": "fake-team",
        "channel_id": channel_id,
        "channel_name": "directmessage" if channel_id.startswith("D") else channel_id.lower(),
        "user_id": user_id,
        "user_name": user_id.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": f"{uuid.uuid4().int % 10**10}.1.{uuid.uuid4().hex[:8]}",
    }


def block_actions_payload(
    action_id: str,
    value: str,
    *,
    user_id: str,
    channel_id: str = "D123",
    message_ts: str = "1700000000.000100",
    response_url: str = _UNSET_RESPONSE_URL,
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": "T0001",
        },
        "api_app_id": "A1",
        "token": "verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        },
        "trigger_id": f"{uuid.uuid4().int % 10**10}.1.{uuid.uuid4().hex[:8]}",
        "team": {"id": "T0001", "domain": "fake-team"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": "directmessage"},
        "message": {
            "type": "message",
            "ts": message_ts,
            "user": "UBOT",
            "bot_id": "BBOT",
            "text": "",
            "blocks": [],
        },
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "text": {"type": "plain_text", "text": value, "emoji": True},
                "value": value,
                "action_ts": _now_ts(),
            }
        ],
    }


async def post_signed(
    url: str,
    secret: str,
    *,
    json_body: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    timestamp: int | None = None,
    retry_num: int | None = None,
    bad_signature: bool = False,
) -> tuple[int, str]:
    """POST a signed Slack request (JSON event, or form: slash command / `payload=` actions)."""
    if (json_body is None) == (form is None):
        raise ValueError("pass exactly one of json_body / form")
    body = json.dumps(json_body) if json_body is not None else urlencode(form or {})
    if json_body is not None and isinstance(json_body.get("event"), dict):
        for fake in _OPEN:
            if fake.signing_secret == secret:
                fake.remember(json_body["event"])
    headers = sign(secret, body, timestamp)
    if bad_signature:
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body.encode(), headers=headers) as resp,
    ):
        return resp.status, await resp.text()
