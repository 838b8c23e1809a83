"""A loopback fake of the Anthropic Messages API for the real `anthropic` SDK.

    async with FakeAnthropic() as fake:
        client = AsyncAnthropic(base_url=fake.base_url, api_key="test-key", max_retries=1)
        fake.reply_tool_use("search", {"query": "x"})
        fake.reply_text("done")

Replies are served from a FIFO queue; when it is empty the `on_request` responder (if any) is
called, else the fake echoes "(fake model) " + the last user text. Every POST /v1/messages is
recorded in `requests`. Usage figures are estimated (ceil(chars / 4)) and prompt caching is
simulated from the request's `cache_control` breakpoints. Wire format: see
/work/shared/notes/wire-protocols.md.

(Over 400 lines: the Messages API's JSON and streamed forms, scripted replies and the recorded
requests are one wire contract.)
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import secrets
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, Self

from aiohttp import web

__all__ = ["FakeAnthropic", "RecordedRequest", "Reply", "Usage"]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_MESSAGES = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}
_CACHE_LOOKBACK = 20  # block boundaries checked before the last breakpoint, like the real API
_MALFORMED_JSON = ('{"path": "notes.txt", ', "oops}")  # second chunk makes the JSON invalid
_CHUNK = 16  # characters per streamed delta


@dataclass(frozen=True)
class Usage:
    """Usage figures for a reply; a field left as None is estimated by the fake."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a message (status 200) or an API error."""

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: Usage | None = None
    status: int = 200
    message: str = ""  # error message
    retry_after: float | None = None  # seconds; sent as retry-after and retry-after-ms
    cut_after_events: int | None = None  # drop the connection after N stream events
    malformed_tool_input: bool = False  # tool_use input: invalid JSON / missing

    @classmethod
    def text(cls, text: str, *, usage: Usage | None = None, stop_reason: str = "end_turn") -> Reply:
        return cls(content=[{"type": "text", "text": text}], stop_reason=stop_reason, usage=usage)

    @classmethod
    def tool_use(
        cls,
        name: str,
        input: dict[str, Any],
        *,
        text: str | None = None,
        usage: Usage | None = None,
    ) -> Reply:
        return cls.tool_uses([(name, input)], text=text, usage=usage)

    @classmethod
    def tool_uses(
        cls,
        calls: list[tuple[str, dict[str, Any]]],
        *,
        text: str | None = None,
        usage: Usage | None = None,
    ) -> Reply:
        """Tool-use blocks (preceded by an optional text block); ids are minted when served."""
        content = [{"type": "text", "text": text}] if text else []
        content += [{"type": "tool_use", "name": n, "input": i} for n, i in calls]
        return cls(content=content, stop_reason="tool_use", usage=usage)

    @classmethod
    def error(
        cls, status: int, retry_after: float | None = None, message: str | None = None
    ) -> Reply:
        message = message or _DEFAULT_MESSAGES.get(status) or ERROR_TYPES.get(status, "api_error")
        return cls(status=status, retry_after=retry_after, message=message)


@dataclass(frozen=True)
class RecordedRequest:
    """A POST /v1/messages as received; header names are lower-cased."""

    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.body.get("messages", [])

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def system_text(self) -> str:
        system = self.body.get("system") or ""
        return system if isinstance(system, str) else _join_text(system)

    @property
    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools") or []]

    @property
    def last_user_text(self) -> str:
        content = self._last_user_content()
        return content if isinstance(content, str) else _join_text(content)

    @property
    def images(self) -> list[dict[str, Any]]:
        """The image blocks of the last user message."""
        content = self._last_user_content()
        return [b for b in content if b.get("type") == "image"] if content else []

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        content = self._last_user_content()
        return [b for b in content if b.get("type") == "tool_result"] if content else []

    def _last_user_content(self) -> str | list[dict[str, Any]]:
        users = [m for m in self.messages if m.get("role") == "user"]
        return users[-1].get("content", "") if users else ""


Responder = Callable[[RecordedRequest], Reply | Awaitable[Reply]]


class FakeAnthropic:
    """The fake server; an async context manager bound to 127.0.0.1 on a random port."""

    def __init__(self, *, min_cache_tokens: int = 0, strict: bool = True) -> None:
        """`strict` answers 400 to requests the real API rejects (missing fields, unpaired
        tool_use / tool_result, empty text). Prefixes shorter than `min_cache_tokens` are
        not cached."""
        self.requests: list[RecordedRequest] = []
        self.latency: float = 0.0
        self.stream_delay: float = 0.0
        """Seconds between two events of a streamed answer (a model writing as it thinks)."""
        self.first_token_at: list[float] = []
        """`time.perf_counter()` when each streamed answer's first text delta was written."""
        self.min_cache_tokens = min_cache_tokens
        self.strict = strict
        self._queue: deque[Reply] = deque()
        self._responder: Responder | None = None
        self._cache: set[str] = set()
        self._runner: web.AppRunner | None = None
        self._base_url = ""

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self._base_url:
            raise RuntimeError("FakeAnthropic is not started")
        return self._base_url

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        self._base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- scripting -------------------------------------------------------------------------

    def reply(self, reply: Reply) -> None:
        """Queue any Reply (e.g. `Reply.text("...", stop_reason="max_tokens")`)."""
        self._queue.append(reply)

    def reply_text(self, text: str, *, usage: Usage | None = None) -> None:
        self.reply(Reply.text(text, usage=usage))

    def reply_tool_use(
        self,
        name: str,
        input: dict[str, Any],
        *,
        text: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.reply(Reply.tool_use(name, input, text=text, usage=usage))

    def reply_tool_uses(
        self,
        calls: list[tuple[str, dict[str, Any]]],
        *,
        text: str | None = None,
        usage: Usage | None = None,
    ) -> None:
        self.reply(Reply.tool_uses(calls, text=text, usage=usage))

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Queue `times` error answers (429 rate_limit_error, 529 overloaded_error, ...)."""
        for _ in range(times):
            self.reply(Reply.error(status, retry_after, message))

    def cut_stream(self, after_events: int = 2, *, text: str = "(fake model) cut short") -> None:
        """The next answer drops the connection: a stream after `after_events` events, a
        non-streamed request before any response."""
        self.reply(replace(Reply.text(text), cut_after_events=after_events))

    def malformed_tool_call(self, name: str = "read_file") -> None:
        """Queue a tool_use whose input is invalid JSON (streaming) or missing (non-streaming)."""
        self.reply(replace(Reply.tool_use(name, {}), malformed_tool_input=True))

    def on_request(self, fn: Responder | None) -> None:
        """Responder used when the queue is empty; may be sync or async."""
        self._responder = fn

    def reset(self) -> None:
        """Forget the queue, requests, prompt cache, responder and latency."""
        self._queue.clear()
        self.requests.clear()
        self._cache.clear()
        self._responder = None
        self.latency = 0.0

    # -- handlers --------------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error_response(400, "invalid_request_error", "request body is not valid JSON")
        recorded = RecordedRequest(
            body=body, headers={k.lower(): v for k, v in request.headers.items()}
        )
        self.requests.append(recorded)
        if self.latency:
            await asyncio.sleep(self.latency)
        if not _authorized(request):
            return _error_response(401, "authentication_error", "invalid x-api-key")
        if self.strict and (problem := _validate(body)):
            return _error_response(400, "invalid_request_error", problem)
        try:
            reply = await self._next_reply(recorded)
        except Exception as exc:  # a broken responder: fail the call at once, no SDK retries
            return _error_response(500, "api_error", f"fake responder raised {exc!r}", retry=False)
        if reply.status != 200:
            return _error_response(
                reply.status,
                ERROR_TYPES.get(reply.status, "api_error"),
                reply.message,
                retry_after=reply.retry_after,
            )
        message = self._message(reply, body)
        if recorded.stream:
            return await self._stream(request, message, reply)
        if reply.cut_after_events is not None:
            _drop_connection(request)
        return web.json_response(message, headers=_request_id())

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        if not _authorized(request):
            return _error_response(401, "authentication_error", "invalid x-api-key")
        body = await request.json()
        total = _tokens(sum(len(text) for text, _, _ in _segments(body)))
        return web.json_response({"input_tokens": total}, headers=_request_id())

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return _error_response(404, "not_found_error", f"Not found: {request.path}")

    async def _next_reply(self, recorded: RecordedRequest) -> Reply:
        if self._queue:
            return self._queue.popleft()
        if self._responder is None:
            return Reply.text("(fake model) " + recorded.last_user_text)
        result = self._responder(recorded)
        return await result if inspect.isawaitable(result) else result

    # -- message building ------------------------------------------------------------------

    def _message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        content = []
        for scripted in reply.content:
            block = dict(scripted)
            if block["type"] == "tool_use":
                block.setdefault("id", f"toolu_{secrets.token_hex(12)}")
                if reply.malformed_tool_input:
                    block.pop("input", None)
            content.append(block)
        return {
            "id": f"msg_{secrets.token_hex(12)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": self._usage(body, content, reply.usage),
        }

    def _usage(
        self, body: dict[str, Any], content: list[dict[str, Any]], given: Usage | None
    ) -> dict[str, int]:
        out_chars = sum(
            len(b["text"]) if b["type"] == "text" else len(json.dumps(b.get("input", {})))
            for b in content
        )
        fresh, created, read = self._cache_usage(body)
        usage = {
            "input_tokens": fresh,
            "output_tokens": max(1, _tokens(out_chars)),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": read,
        }
        for f in fields(Usage):
            if given is not None and (value := getattr(given, f.name)) is not None:
                usage[f.name] = value
        return usage

    def _cache_usage(self, body: dict[str, Any]) -> tuple[int, int, int]:
        """(input, cache_creation, cache_read) tokens; records this request's cache writes.

        The prefix up to the last cache_control breakpoint is cached. A cache hit is the
        longest already-cached prefix ending at one of the block boundaries up to 20 blocks
        before that breakpoint (an identical request reads the whole prefix)."""
        segments = _segments(body)
        digest = hashlib.sha256(str(body.get("model")).encode())
        chars, cumulative, hashes = 0, [], []
        for text, key, _ in segments:
            chars += len(text)
            digest.update(key.encode() + b"\x00")
            cumulative.append(chars)
            hashes.append(digest.hexdigest())
        total = _tokens(chars)
        breakpoints = [i for i, (_, _, bp) in enumerate(segments) if bp]
        if not breakpoints:
            return total, 0, 0
        last = breakpoints[-1]
        prefix = _tokens(cumulative[last])
        if prefix == 0 or prefix < self.min_cache_tokens:
            return total, 0, 0
        lookback = range(last, max(-1, last - _CACHE_LOOKBACK), -1)
        hit = next((i for i in lookback if hashes[i] in self._cache), None)
        read = _tokens(cumulative[hit]) if hit is not None else 0
        self._cache.update(
            hashes[i] for i in breakpoints if _tokens(cumulative[i]) >= self.min_cache_tokens
        )
        return total - prefix, prefix - read, read

    # -- streaming -------------------------------------------------------------------------

    async def _stream(
        self, request: web.Request, message: dict[str, Any], reply: Reply
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
            | _request_id()
        )
        await response.prepare(request)
        first_text = True
        for n, (event, data) in enumerate(_stream_events(message, reply.malformed_tool_input)):
            if n == reply.cut_after_events:
                _drop_connection(request)
                return response
            if self.stream_delay and n > 1:
                await asyncio.sleep(self.stream_delay)
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
            if first_text and data.get("delta", {}).get("type") == "text_delta":
                first_text = False
                self.first_token_at.append(time.perf_counter())
        await response.write_eof()
        return response


def _stream_events(
    message: dict[str, Any], malformed: bool
) -> Iterator[tuple[str, dict[str, Any]]]:
    usage = message["usage"]
    start = message | {"content": [], "stop_reason": None, "usage": usage | {"output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            first = block | {"input": {}}
            raw = json.dumps(block.get("input", {}))
            deltas = [
                {"type": "input_json_delta", "partial_json": part}
                for part in (_MALFORMED_JSON if malformed else ["", *_chunks(raw)])
            ]
        else:
            first = block | {"text": ""}
            deltas = [{"type": "text_delta", "text": part} for part in _chunks(block["text"])]
        yield (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": first,
            },
        )
        for delta in deltas:
            yield (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield "message_stop", {"type": "message_stop"}


# -- helpers --------------------------------------------------------------------------------


def _segments(body: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The request as (counted text, cache key, is-breakpoint), in cache order:
    tools, then system, then message content blocks."""

    def block(kind: str, b: Any) -> tuple[str, str, bool]:
        if not isinstance(b, dict):
            return str(b), json.dumps([kind, b]), False
        bare = {k: v for k, v in b.items() if k != "cache_control"}
        text = b["text"] if b.get("type") == "text" else json.dumps(bare, sort_keys=True)
        return text, json.dumps([kind, bare], sort_keys=True), bool(b.get("cache_control"))

    segments = [block("tool", t) for t in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, list):
        segments += [block("system", b) for b in system]
    elif system:
        segments.append(block("system", {"type": "text", "text": system}))
    for m in body.get("messages") or []:
        content = m.get("content", "")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        segments += [block(str(m.get("role")), b) for b in blocks]
    return segments


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


def _chunks(text: str) -> list[str]:
    return [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)]


def _join_text(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(b.get("text", "") for b in blocks if b.get("type") == "text")


def _authorized(request: web.Request) -> bool:
    bearer = request.headers.get("Authorization", "")
    return bool(request.headers.get("x-api-key")) or (
        bearer.startswith("Bearer ") and len(bearer) > len("Bearer ")
    )


def _validate(body: dict[str, Any]) -> str | None:
    """The message the real API would answer with a 400, or None."""
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            return f"{key}: Field required"
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    pending: set[str] = set()  # tool_use ids of the previous assistant message
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        blocks = content if isinstance(content, list) else []
        last_assistant = i == len(messages) - 1 and role == "assistant"
        empty = content == "" or any(b.get("type") == "text" and not b.get("text") for b in blocks)
        if (empty or content == []) and not last_assistant:
            return (
                f"messages.{i}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        for j, block in enumerate(b for b in blocks if b.get("type") == "image"):
            if problem := _image_problem(block):
                return f"messages.{i}.content.{j}.image.source: {problem}"
        results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if missing := pending - results:
            return (
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(missing))}. Each `tool_use` block must "
                "have a corresponding `tool_result` block in the next message."
            )
        if unexpected := results - pending:
            return (
                f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(sorted(map(str, unexpected)))}. Each `tool_result` block must have "
                "a corresponding `tool_use` block in the previous message."
            )
        pending = (
            {b["id"] for b in blocks if b.get("type") == "tool_use"}
            if role == "assistant"
            else set()
        )
    return None


_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _image_problem(block: dict[str, Any]) -> str | None:
    """What the real API says about a base64 image block it rejects (type, data, 5 MB,
    8000 px), or None."""
    import base64
    import binascii
    import io

    from PIL import Image

    source = block.get("source") or {}
    if source.get("type") != "base64":
        return None  # url / file sources are not checked here
    if source.get("media_type") not in _IMAGE_TYPES:
        return f"Input should be {', '.join(repr(t) for t in _IMAGE_TYPES)}"
    try:
        raw = base64.b64decode(source.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        return "invalid base64 data"
    if len(source.get("data") or "") > 5 * 1024 * 1024:
        return "image exceeds 5 MB maximum"
    try:
        with Image.open(io.BytesIO(raw)) as image:
            width, height = image.size
            actual = Image.MIME.get(image.format or "", "")
    except OSError:
        return "Could not process image"
    if actual != source.get("media_type"):
        return f"Image does not match the provided media type {source.get('media_type')}"
    if max(width, height) > 8000:
        return "image dimensions exceed max allowed size: 8000 pixels"
    return None


def _request_id() -> dict[str, str]:
    return {"request-id": f"req_{secrets.token_hex(12)}"}


def _error_response(
    status: int,
    error_type: str,
    message: str,
    *,
    retry_after: float | None = None,
    retry: bool | None = None,
) -> web.Response:
    headers = _request_id()
    if retry_after is not None:
        headers |= {"retry-after": str(retry_after), "retry-after-ms": str(retry_after * 1000)}
    if retry is not None:
        headers["x-should-retry"] = str(retry).lower()
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.json_response(body, status=status, headers=headers)


def _drop_connection(request: web.Request) -> None:
    """Close the socket mid-answer; aiohttp then skips the rest of the response quietly."""
    if request.transport is not None:
        request.transport.abort()
