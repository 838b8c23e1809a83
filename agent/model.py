"""The one model interface the turn loop uses, and its Anthropic adapter.

`anthropic` is imported on first use (or warmed in the background at start-up): it takes about
1.5 s to import and start-up must not wait for it.

A call goes through the SDK's client (`post`: its headers, timeouts, retries, `retry-after`,
errors) but not through `messages.create` / `messages.stream`, whose per-call work was most of
the event loop's CPU for a call: the prompt is already plain API-form data, so it is encoded
once here (the SDK copies and walks the whole body first), and the answer is read as plain JSON
(the SDK builds a pydantic model of the message, and of every streamed event, then a snapshot).

(Over 400 lines: the interface, its one adapter, and how the adapter turns the SDK's errors,
streams and JSON into what the turn loop reads: split, each part would reach into the others'
private helpers.)
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal, Protocol

from agent.errors import ModelUnavailable
from agent.model_events import accumulate
from agent.well_formed import well_formed
from memory.turns import TokenUsage

if TYPE_CHECKING:
    import anthropic

__all__ = [
    "AnthropicModel",
    "BilledUnavailable",
    "Model",
    "ModelReply",
    "ModelUnavailable",
    "StreamBroken",
    "StreamSink",
    "TextBlock",
    "ToolCall",
    "warm_up",
]

_PATH = "/v1/messages"
_FILE_HEADS = ("A document: ", "A recording, transcribed: ")
"""How agent/media/blocks.py heads a file's text in the prompt (`_carries_files`)."""
# the headers `messages.stream` adds to the client's (`messages.create` adds none)
_STREAM_HEADERS = {"x-stainless-helper-method": "stream", "x-stainless-stream-helper": "messages"}


def _jsonable(value: object) -> Any:
    """What the SDK's encoder makes of a value JSON has no form for (a prompt is plain data)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(exclude_unset=True, mode="json", by_alias=True)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# The SDK's own settings (anthropic/_utils/_json.py): the same bytes as `messages.create` sends.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_jsonable
)

StopReason = Literal[
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
]


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ModelReply:
    content: tuple[TextBlock | ToolCall, ...]
    stop_reason: str
    usage: TokenUsage
    model: str = ""

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.content if isinstance(b, TextBlock)).strip()

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [b for b in self.content if isinstance(b, ToolCall)]

    def as_message(self) -> dict[str, Any]:
        """The assistant message to send back on the next step, in the Messages API form."""
        blocks: list[dict[str, Any]] = []
        for block in self.content:
            if isinstance(block, TextBlock):
                if block.text:
                    blocks.append({"type": "text", "text": block.text})
            else:
                blocks.append(
                    {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
                )
        return {"role": "assistant", "content": blocks}


class StreamSink(Protocol):
    """Where a streamed answer goes as it grows (agent/streaming.py): called synchronously from
    the SDK's event loop, so it only buffers."""

    def text(self, delta: str) -> None: ...

    def tool(self, name: str) -> None: ...


class StreamBroken(Exception):
    """A streamed answer broke off after it had started (connection dropped, `error` event):
    the step is asked again without streaming. `usage` is what the stream had reported before
    it broke (message_start's input and cache tokens, the output tokens counted so far): the
    API bills the broken call too, so it counts in the turn's usage."""

    def __init__(self, message: str, usage: TokenUsage | None = None) -> None:
        super().__init__(message)
        self.usage = usage if usage is not None else TokenUsage()


@dataclass
class BilledUnavailable(ModelUnavailable):
    """The model gave no answer, after the API had billed part of one: a stream that broke off
    and whose unstreamed retry failed too, or one that ran past STEWARD_MODEL_TIMEOUT. `usage`
    is what was billed, counted in the turn all the same (R199: 50,000 billed input tokens
    read as 0 in /usage and the budget). `retried`: False when no try was made again."""

    usage: TokenUsage = field(default_factory=TokenUsage)
    retried: bool = True

    @classmethod
    def after(cls, exc: ModelUnavailable, usage: TokenUsage) -> BilledUnavailable:
        """`exc`, with `usage` billed before it (added to what it holds already)."""
        before = exc.usage if isinstance(exc, BilledUnavailable) else TokenUsage()
        retried = exc.retried if isinstance(exc, BilledUnavailable) else True
        return cls(exc.reason, exc.status, exc.detail, usage=before + usage, retried=retried)


class Model(Protocol):
    name: str

    async def complete(
        self,
        *,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> ModelReply: ...


async def warm_up() -> None:
    """Import the SDK in a worker thread so the first turn does not pay for it."""
    await asyncio.to_thread(importlib.import_module, "anthropic")


class AnthropicModel:
    """Anthropic's Messages API. The SDK retries 408/409/429/5xx (529 included) with backoff and
    honours `retry-after`; what is left when it gives up becomes ModelUnavailable."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        max_tokens: int = 2048,
        max_retries: int = 4,
        timeout: float = 120.0,
    ) -> None:
        self.name = model
        self._max_tokens = max_tokens
        self._timeout = timeout
        self._client_args: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "max_retries": max_retries,
            "timeout": timeout,
        }
        self._client: anthropic.AsyncAnthropic | None = None
        self._stream_cls: Any = None
        self._building: asyncio.Future[None] | None = None  # the one first build

    async def _sdk(self) -> Any:
        """The SDK module, its client built: the first import (about 1.5 s) and the first
        client (its transport's imports, httpcore2, trio and truststore, and the trust store
        loaded: ~0.2 s more) in a worker thread, not here (R260: on the loop, the first
        turn after a start froze every chat for 120-260 ms)."""
        if self._client is None:
            if self._building is None or self._building.cancelled():
                self._building = asyncio.ensure_future(self._build())
            # every first call waits on the one build, and all go on together once it is
            # done (a lock let them through one by one: a burst's calls were not all in flight
            # at once, and fewer connections were opened for it)
            await asyncio.shield(self._building)
        return importlib.import_module("anthropic")

    async def _build(self) -> None:
        try:
            await warm_up()
            sdk = importlib.import_module("anthropic")
            await asyncio.to_thread(self._get_client, sdk)
        except BaseException:
            self._building = None  # the next call tries again
            raise

    def _get_client(self, sdk: Any) -> anthropic.AsyncAnthropic:
        if self._client is None:
            # Through aiohttp (the SDK's own transport for it), not httpcore: per call it is
            # ~1 ms less of the event loop, and with 200 connections open after a burst of
            # chats httpcore's pool walked them all at every call's start and end (bench: 200
            # chats x 3, all replies 6.6 -> 5.9 s). aiohttp keeps every connection it opened
            # idle (up to `max_connections`, for `keepalive_expiry`); httpx kept 100 of them and
            # past 100 calls at once opened a new one per call (a TLS handshake) and closed it.
            http = sdk.DefaultAioHttpClient()
            self._client = sdk.AsyncAnthropic(**self._client_args, http_client=http)
            # streamed events as plain dicts (`object`: the SDK leaves the JSON as it is)
            self._stream_cls = sdk.AsyncStream[object]
            _warn_if_deprecated(self.name)
        return self._client

    def _body(
        self,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        *,
        stream: bool,
    ) -> bytes:
        """The request body as `messages.create` / `messages.stream` would send it: same keys in
        the same order, encoded as the SDK encodes (tests/test_model_request.py holds the two
        equal)."""
        body: dict[str, Any] = {
            "max_tokens": self._max_tokens,
            "messages": messages,
            "model": self.name,
            "system": system,
        }
        if tools:
            body["tools"] = tools
        if stream:
            body["stream"] = True
        return _ENCODER.encode(body).encode()

    async def complete(
        self,
        *,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> ModelReply:
        sdk = await self._sdk()
        client = self._get_client(sdk)
        body = self._body(system, messages, tools, stream=False)
        try:
            message = await client.post(
                _PATH, cast_to=object, content=body, options={"headers": {}}
            )
        except sdk.APIError as exc:
            raise _unavailable(sdk, exc, messages) from exc
        if not isinstance(message, dict):  # a 200 whose body is not a JSON object
            raise ModelUnavailable("I could not reach the model API", None, str(message)[:200])
        return _reply(message)

    async def stream(
        self,
        *,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        sink: StreamSink,
    ) -> ModelReply:
        """`complete`, streamed (as `messages.stream`): text deltas and the names of tool calls go
        to `sink` as they arrive. Opening the stream is retried by the SDK like `complete`;
        what breaks once it has started raises StreamBroken (the SDK does not retry it).

        The whole answer, from the stream's start to its last event, must come within the
        timeout, as an unstreamed answer must (R199: the SDK's timeout is per read, so a model
        writing a word a second held the chat for 40 s with a 3 s timeout, and could for hours):
        past it, BilledUnavailable, with what the stream had been billed."""
        sdk = await self._sdk()
        client = self._get_client(sdk)
        body = self._body(system, messages, tools, stream=True)
        seen: dict[str, Any] = {}  # the usage reported so far, kept if the stream breaks off
        events = await self._open(sdk, client, body, messages)
        try:
            async with asyncio.timeout(self._timeout) as bound:
                message = await self._read(events, sink, seen)
        except TimeoutError:
            if not bound.expired():
                raise
            seconds = f"{self._timeout:g} second" + ("" if self._timeout == 1 else "s")
            raise BilledUnavailable(
                f"the model took longer than {seconds} to answer (STEWARD_MODEL_TIMEOUT)",
                usage=_usage(seen),
                retried=False,
            ) from None
        if message is None or message.get("stop_reason") is None:
            raise StreamBroken("the model's stream ended before its last event", _usage(seen))
        return _reply(message)

    async def _open(
        self, sdk: Any, client: Any, body: bytes, messages: list[dict[str, Any]]
    ) -> Any:
        """The stream of events, opened (the SDK retries what fails before it opens)."""
        try:
            return await client.post(
                _PATH,
                cast_to=object,
                content=body,
                options={"headers": dict(_STREAM_HEADERS)},
                stream=True,
                stream_cls=self._stream_cls,
            )
        except sdk.APIError as exc:
            raise _unavailable(sdk, exc, messages) from exc

    @staticmethod
    async def _read(events: Any, sink: StreamSink, seen: dict[str, Any]) -> dict[str, Any] | None:
        """The message an opened stream builds; what breaks it raises StreamBroken."""
        try:
            try:
                return await accumulate(events, sink, seen)
            finally:
                await events.close()
        except Exception as exc:  # the SDK's or httpx's errors mid-stream, an unparsable input
            raise StreamBroken(f"the model's stream broke off: {exc}", _usage(seen)) from exc

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def _unavailable(sdk: Any, exc: Exception, messages: list[dict[str, Any]]) -> ModelUnavailable:
    """What the SDK raised when it gave up, as the reason told to the owner (`messages`: the
    prompt, whose files and tool results say what made it too long)."""
    if isinstance(exc, sdk.AuthenticationError):
        return ModelUnavailable(
            "the model API refused the API key (check ANTHROPIC_API_KEY)", 401, str(exc)
        )
    if isinstance(exc, sdk.RateLimitError):
        return ModelUnavailable("the model API is rate-limiting me", 429, str(exc))
    if isinstance(exc, sdk.APIStatusError):
        if exc.status_code == 529:
            reason = "the model API is overloaded"
        elif exc.status_code >= 500:
            reason = "the model API is having trouble"
        else:
            reason = _rejected(
                exc.status_code, _api_message(exc), _carries_files(messages), _past_first(messages)
            )
        return ModelUnavailable(reason, exc.status_code, _api_message(exc) or str(exc))
    if isinstance(exc, sdk.APITimeoutError):
        return ModelUnavailable("the model API did not answer in time", None, str(exc))
    return ModelUnavailable("I could not reach the model API", None, str(exc))


def _carries_files(messages: list[dict[str, Any]]) -> bool:
    """Whether the turn's message carries files, as agent/media/blocks.py gives them: an image,
    or a text block headed "A document: " or "A recording, transcribed: " (R211). Only the
    turn's own message (the last user message that is not tool results): an earlier one typed
    "A document: …" in the history made a conversation too long ask for fewer files (R214)."""
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        kinds = {block.get("type") for block in content if isinstance(block, dict)}
        if kinds <= {"tool_result"}:
            continue  # a step's results: the message is further back
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind in ("image", "document"):
                return True
            if kind == "text" and str(block.get("text", "")).startswith(_FILE_HEADS):
                return True
        return False
    return False


def _past_first(messages: list[dict[str, Any]]) -> bool:
    """Whether the prompt ends on a step's tool results: the turn is past its first step, and
    what it read is part of the prompt (R261: a prompt too long from this turn's own reads was
    told to send /new and lower STEWARD_HISTORY_TOKENS)."""
    last = messages[-1] if messages else {}
    content = last.get("content")
    if last.get("role") != "user" or not isinstance(content, list) or not content:
        return False
    return all(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _api_message(exc: Any) -> str:
    """The API's own words for a refusal (`error.message` of its body), one line, capped."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return " ".join(str(message).split())[:300] if message else ""


def _rejected(status: int, message: str, files: bool, past_first: bool = False) -> str:
    """A refusal as the owner can act on it (R179: "rejected the request (404)", the API's
    reason thrown away, was all a mistyped STEWARD_MODEL or an empty account said).
    `past_first`: the turn had read things already (tool results end the prompt)."""
    said = message.lower()
    too_long = status == 400 and ("too long" in said or "context limit" in said)
    if too_long and past_first and not files:
        # R261: what this turn read (files, pages, searches) filled it, not the conversation
        return (
            "what I read for this request was too much for the model at once (the model API "
            f"said: {message}). Ask for less at a time, e.g. one file or one part of it per "
            "message"
        )
    if too_long and not files:
        # R211: a long conversation (a high STEWARD_HISTORY_TOKENS) was told to send fewer files
        return (
            f"this conversation is too long for the model (the model API said: {message}). "
            "Send /new to start a new one here: what we said stays saved, and I can still look "
            "it up. If it happens again, lower STEWARD_HISTORY_TOKENS in Steward's settings (how "
            "much of the conversation goes with each message), e.g. to half its value"
        )
    if too_long:
        # R197: an album of files past the model's context was "rejected the request (400)"
        # ("prompt is too long: 250000 tokens > 200000 maximum"; with max_tokens: "input
        # length and `max_tokens` exceed context limit")
        return (
            "this message, with its files and what I read for it, is too long for the model "
            f"(the model API said: {message}). Send fewer or smaller files, or ask about one "
            "at a time"
        )
    if status == 413:
        # a request past the API's size in bytes (32 MB): an album of photos or large PDFs
        # said only "rejected the request (413)" and that trying again would not help
        if files:
            return (
                "this message with its files is larger than the model API takes in one request "
                f"(413; it said: {message}). Send fewer or smaller files, or one at a time"
            )
        return (
            "this request is larger than the model API takes at once (413; it said: "
            f"{message}). Ask for less at a time, or send /new to start a new conversation here"
        )
    if status == 404 and "model" in said:
        return "the model API does not know the model STEWARD_MODEL names (404): check it"
    if "credit" in said or "billing" in said:
        return f"the model API account is out of credit ({status}): check its billing"
    if status == 403:
        return "the model API refused this key access (403): check the key's permissions"
    return f"the model API rejected the request ({status})"


def _warn_if_deprecated(model: str) -> None:
    """The warning `messages.create` gives for a deprecated model (once per client here)."""
    try:
        deprecated = importlib.import_module("anthropic._data").DEPRECATED_MODELS
    except (ImportError, AttributeError):
        return
    if model in deprecated:
        warnings.warn(
            f"The model '{model}' is deprecated and will reach end-of-life on {deprecated[model]}.",
            DeprecationWarning,
            stacklevel=4,
        )


def _well_formed(value: Any) -> Any:
    """`value` with every lone surrogate replaced by U+FFFD. JSON may carry one (`"\\ud83d"`)
    and Python decodes it, but it cannot be encoded as UTF-8: stored, sent or written into the
    policy file, it would fail the turn half-way. A number too large for a float (`1e999`,
    read as infinity) becomes its text ("inf"): sent back to the API in the next request it
    failed the turn, and as a tool's argument it was shown as Infinity and sent as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return well_formed(value)
    if isinstance(value, list):
        return [_well_formed(v) for v in value]
    if isinstance(value, dict):
        return {_well_formed(k): _well_formed(v) for k, v in value.items()}
    return value


def _reply(message: dict[str, Any]) -> ModelReply:
    """A Messages API message (plain JSON) as the turn loop's reply."""
    content: list[TextBlock | ToolCall] = []
    message = {**message, "content": _well_formed(message.get("content") or [])}
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            content.append(TextBlock(block.get("text") or ""))
        elif kind == "tool_use":
            tool_input = block.get("input")
            content.append(
                ToolCall(
                    block["id"], block["name"], tool_input if isinstance(tool_input, dict) else {}
                )
            )
    return ModelReply(
        content=tuple(content),
        stop_reason=message.get("stop_reason") or "end_turn",
        usage=_usage(message.get("usage") or {}),
        model=message.get("model") or "",
    )


def _usage(usage: Mapping[str, Any]) -> TokenUsage:
    """A Messages API `usage` object (plain JSON) as TokenUsage; a missing figure counts 0."""
    return TokenUsage(
        input_tokens=usage.get("input_tokens") or 0,
        output_tokens=usage.get("output_tokens") or 0,
        cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
        cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
    )
