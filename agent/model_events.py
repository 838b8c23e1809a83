"""A streamed Messages API answer, from its raw events (plain dicts) to the final message.

`AnthropicModel.stream` reads the event stream through the SDK's `post` (its SSE decoding, its
errors) but builds the message here rather than with the SDK's `MessageStream`, which makes a
pydantic model of every event and then a snapshot of the whole message at each one: most of a
streamed call's CPU on the event loop. What it builds is what `MessageStream` builds (joined
text, tool inputs parsed with jiter in partial mode, usage from `message_delta`);
tests/test_model_request.py compares the two.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Sink", "accumulate"]

_TRACKS_TOOL_INPUT = frozenset({"tool_use", "server_tool_use"})


class Sink(Protocol):
    """Where text deltas and tool-call names go as they arrive (agent.model.StreamSink)."""

    def text(self, delta: str) -> None: ...

    def tool(self, name: str) -> None: ...


async def accumulate(
    events: Any, sink: Sink, usage: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The message a stream of raw events (dicts) builds, as the SDK's `MessageStream` builds
    its snapshot; text deltas and tool calls go to `sink` on the way. None: no message_start.

    `usage`, when given, is kept up to date with the usage reported so far (message_start's,
    then each message_delta's): a stream that breaks off part-way has been billed for it."""
    message: dict[str, Any] | None = None
    content: list[dict[str, Any]] = []
    texts: dict[int, list[str]] = {}
    inputs: dict[int, list[str]] = {}
    usage = {} if usage is None else usage
    async for event in events:
        kind = event.get("type")
        if kind == "content_block_start":
            block = dict(event["content_block"])
            if block.get("type") == "tool_use":
                sink.tool(block.get("name", ""))
            if message is not None:
                if block.get("type") == "text":
                    texts[len(content)] = [block.get("text") or ""]
                content.append(block)
        elif message is None:
            if kind == "message_start":
                message = dict(event["message"])
                usage.clear()
                usage.update(message.get("usage") or {})
                content = [dict(b) for b in message.get("content") or ()]
        elif kind == "content_block_delta":
            index = event["index"]
            delta = event["delta"]
            delta_type = delta.get("type")
            if delta_type == "text_delta":
                if content[index].get("type") == "text":
                    texts.setdefault(index, []).append(delta["text"])
                    sink.text(delta["text"])
            elif delta_type == "input_json_delta" and content[index].get("type") in (
                _TRACKS_TOOL_INPUT
            ):
                inputs.setdefault(index, []).append(delta.get("partial_json") or "")
        elif kind == "content_block_stop":
            _tool_input(content, inputs, event["index"])
        elif kind == "message_delta":
            delta = event.get("delta") or {}
            message["stop_reason"] = delta.get("stop_reason")
            message["stop_sequence"] = delta.get("stop_sequence")
            given = event.get("usage") or {}
            usage["output_tokens"] = given.get("output_tokens")
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
                if given.get(key) is not None:
                    usage[key] = given[key]
    if message is None:
        return None
    for index in list(inputs):
        _tool_input(content, inputs, index)
    for index, parts in texts.items():
        content[index]["text"] = "".join(parts)
    message["content"] = content
    message["usage"] = dict(usage)
    return message


def _tool_input(content: list[dict[str, Any]], inputs: dict[int, list[str]], index: int) -> None:
    """A tool call's input from its JSON deltas, parsed as the SDK does (jiter, partial mode:
    the same value, and the same ValueError for JSON that is not)."""
    parts = inputs.pop(index, None)
    if not parts:
        return
    raw = "".join(parts).encode()
    if not raw:
        return
    from jiter import from_json

    try:
        content[index]["input"] = from_json(raw, partial_mode=True)
    except ValueError as exc:
        raise ValueError(f"Unable to parse tool parameter JSON from model: {exc}") from exc
