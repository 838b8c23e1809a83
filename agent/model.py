"""The one model interface the turn loop uses, and its Anthropic adapter.

`anthropic` is imported on first use (or warmed in the background at start-up): it takes about
1.5 s to import and start-up must not wait for it.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from agent.errors import ModelUnavailable
from memory.turns import TokenUsage

if TYPE_CHECKING:
    import anthropic

__all__ = [
    "AnthropicModel",
    "Model",
    "ModelReply",
    "ModelUnavailable",
    "StreamBroken",
    "StreamSink",
    "TextBlock",
    "ToolCall",
    "warm_up",
]

StopReason = Literal["end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal"]


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
    the step is asked again without streaming."""


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
        self._client_args: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "max_retries": max_retries,
            "timeout": timeout,
        }
        self._client: anthropic.AsyncAnthropic | None = None

    async def _sdk(self) -> Any:
        """The SDK module; its first import (about 1.5 s) runs in a worker thread, not here."""
        if self._client is None:
            await warm_up()
        return importlib.import_module("anthropic")

    def _get_client(self, sdk: Any) -> anthropic.AsyncAnthropic:
        if self._client is None:
            # The SDK keeps at most 100 idle connections (of 1,000): past 100 calls at once
            # (a burst of chats) every call beyond them opened a new connection (a TLS
            # handshake against the real API) and closed it after. Keep as many as may open.
            limits = sdk.DEFAULT_CONNECTION_LIMITS
            pooled = type(limits)(
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_connections,
                keepalive_expiry=limits.keepalive_expiry,
            )
            http = sdk.DefaultAsyncHttpxClient(limits=pooled)
            self._client = sdk.AsyncAnthropic(**self._client_args, http_client=http)
        return self._client

    async def complete(
        self,
        *,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> ModelReply:
        sdk = await self._sdk()
        request: dict[str, Any] = {
            "model": self.name,
            "max_tokens": self._max_tokens,
            "system": system,
            "messages": messages,
        }
        if tools:
            request["tools"] = tools
        try:
            message = await self._get_client(sdk).messages.create(**request)
        except sdk.APIError as exc:
            raise _unavailable(sdk, exc) from exc
        return _reply(message)

    async def stream(
        self,
        *,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        sink: StreamSink,
    ) -> ModelReply:
        """`complete`, streamed (`messages.stream`): text deltas and the names of tool calls go
        to `sink` as they arrive. Opening the stream is retried by the SDK like `complete`;
        what breaks once it has started raises StreamBroken (the SDK does not retry it)."""
        sdk = await self._sdk()
        request: dict[str, Any] = {
            "model": self.name,
            "max_tokens": self._max_tokens,
            "system": system,
            "messages": messages,
        }
        if tools:
            request["tools"] = tools
        opened = False
        try:
            async with self._get_client(sdk).messages.stream(**request) as stream:
                opened = True
                async for event in stream:
                    if event.type == "text":
                        sink.text(event.text)
                    elif event.type == "content_block_start" and (
                        event.content_block.type == "tool_use"
                    ):
                        sink.tool(event.content_block.name)
                message = await stream.get_final_message()
        except sdk.APIError as exc:
            if not opened:
                raise _unavailable(sdk, exc) from exc
            raise StreamBroken(f"the model's stream broke off: {exc}") from exc
        except Exception as exc:  # httpx's errors mid-stream, an unparsable tool input
            if not opened:
                raise
            raise StreamBroken(f"the model's stream broke off: {exc}") from exc
        if message.stop_reason is None:
            raise StreamBroken("the model's stream ended before its last event")
        return _reply(message)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def _unavailable(sdk: Any, exc: Exception) -> ModelUnavailable:
    """What the SDK raised when it gave up, as the reason told to the owner."""
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
            reason = f"the model API rejected the request ({exc.status_code})"
        return ModelUnavailable(reason, exc.status_code, str(exc))
    if isinstance(exc, sdk.APITimeoutError):
        return ModelUnavailable("the model API did not answer in time", None, str(exc))
    return ModelUnavailable("I could not reach the model API", None, str(exc))


def _reply(message: Any) -> ModelReply:
    content: list[TextBlock | ToolCall] = []
    for block in message.content:
        if block.type == "text":
            content.append(TextBlock(block.text))
        elif block.type == "tool_use":
            tool_input = block.input if isinstance(block.input, dict) else {}
            content.append(ToolCall(block.id, block.name, tool_input))
    usage = message.usage
    return ModelReply(
        content=tuple(content),
        stop_reason=message.stop_reason or "end_turn",
        usage=TokenUsage(
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            cache_read_input_tokens=usage.cache_read_input_tokens or 0,
            cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        ),
        model=message.model,
    )
