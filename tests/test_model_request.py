"""AnthropicModel sends what `messages.create` / `messages.stream` would, byte for byte, and reads
the answer as they would: it skips the SDK's per-call copy and models (agent/model.py), so
nothing else holds the two equal."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import pytest
from aiohttp import web
from fakes.anthropic import FakeAnthropic, Reply, Usage

from agent.model import (
    AnthropicModel,
    ModelReply,
    StreamBroken,
    TextBlock,
    ToolCall,
)
from memory.turns import TokenUsage

CACHE = {"type": "ephemeral"}
MODEL = "claude-sonnet-4-5"


class RawFake(FakeAnthropic):
    """Keeps each request's bytes as they came, next to the parsed body."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[tuple[bytes, dict[str, str]]] = []
        self.peers: list[tuple[str, int]] = []
        """The client's address and port of each request: one per connection it came on."""

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        self.raw.append((await request.read(), {k.lower(): v for k, v in request.headers.items()}))
        self.peers.append(request.transport.get_extra_info("peername")[:2])
        return await super()._messages(request)


def _prompt() -> dict[str, Any]:
    """An API-form prompt with what the turn loop sends: cache breakpoints in tools, system and
    history, a tool call and its result, an image, text that is not ASCII."""
    tools = [
        {
            "name": f"tool_{i}",
            "description": f"Tool {i} — does things «quoted»",
            "input_schema": {
                "type": "object",
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                "required": ["query"],
            },
        }
        for i in range(3)
    ]
    tools[-1]["cache_control"] = CACHE
    system = [
        {"type": "text", "text": "You are Steward."},
        {"type": "text", "text": "Memory: the owner likes café au lait 😀", "cache_control": CACHE},
    ]
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "find my trip notes"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Looking."},
                {"type": "tool_use", "id": "toolu_1", "name": "tool_0", "input": {"query": "trip"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Paris, 3 days"},
                {"type": "text", "text": "and the hotel?", "cache_control": CACHE},
            ],
        },
    ]
    return {"system": system, "messages": messages, "tools": tools}


def _answers() -> list[Reply]:
    usage = Usage(
        input_tokens=11, output_tokens=7, cache_creation_input_tokens=5, cache_read_input_tokens=3
    )
    return [
        Reply.text("The hotel is the Hôtel du Nord, booked for three nights.", usage=usage),
        Reply(
            content=[
                {"type": "text", "text": "Let me check two things."},
                {"type": "tool_use", "id": "toolu_a", "name": "tool_1", "input": {"query": "x"}},
                {
                    "type": "tool_use",
                    "id": "toolu_b",
                    "name": "tool_2",
                    "input": {"query": "y", "limit": 3, "nested": {"a": [1, 2.5, None, True]}},
                },
            ],
            stop_reason="tool_use",
            usage=usage,
        ),
        Reply.text("cut short", usage=usage, stop_reason="max_tokens"),
    ]


def _from_sdk(message: Any) -> ModelReply:
    """What the SDK's parsed message says, in the turn loop's terms."""
    content: list[TextBlock | ToolCall] = []
    for block in message.content:
        if block.type == "text":
            content.append(TextBlock(block.text))
        elif block.type == "tool_use":
            content.append(ToolCall(block.id, block.name, block.input))
    u = message.usage
    return ModelReply(
        content=tuple(content),
        stop_reason=message.stop_reason,
        usage=TokenUsage(
            input_tokens=u.input_tokens or 0,
            output_tokens=u.output_tokens or 0,
            cache_read_input_tokens=u.cache_read_input_tokens or 0,
            cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
        ),
        model=message.model,
    )


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def text(self, delta: str) -> None:
        self.events.append(("text", delta))

    def tool(self, name: str) -> None:
        self.events.append(("tool", name))


@pytest.fixture
async def fake() -> Any:
    async with RawFake() as server:
        yield server


def _clients(base_url: str) -> tuple[AnthropicModel, anthropic.AsyncAnthropic]:
    model = AnthropicModel(api_key="test-key", model=MODEL, base_url=base_url, max_retries=0)
    sdk = anthropic.AsyncAnthropic(
        api_key="test-key", base_url=base_url, max_retries=0, timeout=120.0
    )
    return model, sdk


async def test_complete_sends_and_reads_what_messages_create_does(fake: RawFake) -> None:
    model, sdk = _clients(fake.base_url)
    prompt = _prompt()
    try:
        for answer in _answers():
            fake.reply(answer)
            ours = await model.complete(**prompt)
            fake.reply(answer)
            theirs = await sdk.messages.create(model=MODEL, max_tokens=2048, **prompt)
            assert ours == _from_sdk(theirs)
            (our_bytes, our_headers), (sdk_bytes, sdk_headers) = fake.raw[-2:]
            assert our_bytes == sdk_bytes
            assert our_headers == sdk_headers
        # what the model received is the API-form prompt itself, breakpoints included
        sent = fake.requests[-2].body
        assert {k: sent[k] for k in ("system", "messages", "tools")} == prompt
        assert "stream" not in sent
    finally:
        await model.close()
        await sdk.close()


async def test_stream_sends_and_reads_what_messages_stream_does(fake: RawFake) -> None:
    model, sdk = _clients(fake.base_url)
    prompt = _prompt()
    try:
        for answer in _answers():
            fake.reply(answer)
            our_sink = Sink()
            ours = await model.stream(**prompt, sink=our_sink)
            fake.reply(answer)
            sdk_sink = Sink()
            async with sdk.messages.stream(model=MODEL, max_tokens=2048, **prompt) as stream:
                async for event in stream:
                    if event.type == "text":
                        sdk_sink.text(event.text)
                    elif (
                        event.type == "content_block_start"
                        and event.content_block.type == "tool_use"
                    ):
                        sdk_sink.tool(event.content_block.name)
                theirs = await stream.get_final_message()
            assert ours == _from_sdk(theirs)
            assert our_sink.events == sdk_sink.events and our_sink.events
            (our_bytes, our_headers), (sdk_bytes, sdk_headers) = fake.raw[-2:]
            assert our_bytes == sdk_bytes
            assert our_headers == sdk_headers
        assert fake.requests[-1].body["stream"] is True
    finally:
        await model.close()
        await sdk.close()


async def test_a_broken_stream_and_bad_tool_json_raise_stream_broken(fake: RawFake) -> None:
    model, _ = _clients(fake.base_url)
    try:
        fake.cut_stream(after_events=4)
        with pytest.raises(StreamBroken):
            await model.stream(**_prompt(), sink=Sink())
        fake.malformed_tool_call("tool_0")
        with pytest.raises(StreamBroken):
            await model.stream(**_prompt(), sink=Sink())
        fake.reply_text("fine again")
        assert (await model.stream(**_prompt(), sink=Sink())).text == "fine again"
    finally:
        await model.close()


async def test_errors_keep_the_sdk_retries(fake: RawFake) -> None:
    model = AnthropicModel(api_key="k", model=MODEL, base_url=fake.base_url, max_retries=2)
    try:
        fake.fail(529, retry_after=0.01)
        fake.fail(429, retry_after=0.01)
        fake.reply_text("made it")
        assert (await model.complete(**_prompt())).text == "made it"
        retries = [h["x-stainless-retry-count"] for _, h in fake.raw]
        assert retries == ["0", "1", "2"]
        fake.fail(500, times=3, retry_after=0.01)
        with pytest.raises(Exception, match="having trouble"):
            await model.stream(**_prompt(), sink=Sink())
        assert len(fake.raw) == 6
    finally:
        await model.close()


async def test_a_burst_of_calls_keeps_its_connections_for_the_next(fake: RawFake) -> None:
    """150 calls at once (a burst of chats) open at most 150 connections, and the next 150
    reuse them: none is closed after its call. httpx's pool, which the SDK uses by default, kept
    100 idle and opened (and closed) one per call beyond them: a TLS handshake each against the
    real API. The calls go through aiohttp (the SDK's transport for it; see `_get_client`)."""
    model, _ = _clients(fake.base_url)
    fake.latency = 0.2  # long enough that the 150 are in flight together
    fake.on_request(lambda _: Reply.text("ok"))
    try:
        for wave in range(2):
            replies = await asyncio.gather(*(model.complete(**_prompt()) for _ in range(150)))
            assert {r.text for r in replies} == {"ok"}
            if wave == 0:
                opened = set(fake.peers)
                assert 100 < len(opened) <= 150
        assert set(fake.peers) == opened, "the second wave opened connections of its own"
        assert len(fake.peers) == 300
        transport = model._client._client._transport  # type: ignore[union-attr]
        assert type(transport).__name__ == "AiohttpTransport"
    finally:
        await model.close()
