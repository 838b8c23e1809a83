"""The fake Messages API, exercised through the real anthropic SDK."""

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply, Usage

MODEL = "claude-test"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def client(fake: FakeAnthropic) -> AsyncIterator[AsyncAnthropic]:
    async with AsyncAnthropic(base_url=fake.base_url, api_key="test-key", max_retries=2) as c:
        yield c


async def create(client: AsyncAnthropic, **kwargs: Any) -> anthropic.types.Message:
    return await client.messages.create(
        **{"model": MODEL, "max_tokens": 100, "messages": HELLO} | kwargs
    )


async def test_text_reply_is_a_complete_message(fake: FakeAnthropic, client: AsyncAnthropic):
    fake.reply_text("hi there")
    message = await create(client, system="be brief")

    assert message.id.startswith("msg_")
    assert (message.role, message.model, message.stop_reason) == ("assistant", MODEL, "end_turn")
    assert message.content[0].type == "text" and message.content[0].text == "hi there"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    (request,) = fake.requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert (request.system_text, request.last_user_text) == ("be brief", "hello")


async def test_default_reply_echoes_last_user_text(client: AsyncAnthropic):
    message = await create(client)
    assert message.content[0].text == "(fake model) hello"


async def test_tool_use_round_trip(fake: FakeAnthropic, client: AsyncAnthropic):
    tools = [{"name": "search", "description": "Search.", "input_schema": {"type": "object"}}]
    fake.reply_tool_use("search", {"query": "cats"}, text="Let me look.")
    fake.reply_text("Cats are mammals.")

    first = await create(client, tools=tools)
    assert first.stop_reason == "tool_use"
    text, call = first.content
    assert text.type == "text" and call.type == "tool_use"
    assert (call.name, call.input, call.id[:6]) == ("search", {"query": "cats"}, "toolu_")
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "mammals"}
    history = [
        *HELLO,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [result]},
    ]
    second = await create(client, tools=tools, messages=history)

    assert second.content[0].text == "Cats are mammals."
    assert fake.requests[1].tool_names == ["search"]
    assert fake.requests[1].tool_results == [result]


async def test_several_tool_uses_get_unique_ids(fake: FakeAnthropic, client: AsyncAnthropic):
    fake.reply_tool_uses([("a", {}), ("a", {})])
    message = await create(client)
    ids = {b.id for b in message.content if b.type == "tool_use"}
    assert len(ids) == 2


async def test_unpaired_tool_use_is_rejected(client: AsyncAnthropic):
    call = {"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}}
    history = [*HELLO, {"role": "assistant", "content": [call]}, *HELLO]
    with pytest.raises(anthropic.BadRequestError, match="without `tool_result`"):
        await create(client, messages=history)


async def test_missing_credentials_get_401(fake: FakeAnthropic, client: AsyncAnthropic):
    with pytest.raises(anthropic.AuthenticationError):
        await create(client, extra_headers={"Authorization": anthropic.Omit()})


async def test_429_is_retried_after_retry_after(fake: FakeAnthropic, client: AsyncAnthropic):
    fake.fail(429, retry_after=0.001)
    fake.reply_text("ok")
    message = await create(client)
    assert message.content[0].text == "ok"
    assert len(fake.requests) == 2
    assert fake.requests[1].headers["x-stainless-retry-count"] == "1"


async def test_529_exhausted_raises_overloaded(fake: FakeAnthropic, client: AsyncAnthropic):
    fake.fail(529, times=3, retry_after=0.001)
    with pytest.raises(anthropic.OverloadedError) as info:
        await create(client)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert len(fake.requests) == 3  # first try + max_retries


async def test_prompt_caching_figures(fake: FakeAnthropic, client: AsyncAnthropic):
    system = [{"type": "text", "text": "x" * 400, "cache_control": {"type": "ephemeral"}}]
    first = await create(client, system=system)
    second = await create(client, system=system)

    assert first.usage.cache_creation_input_tokens == 100
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == 100
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens > 0


async def test_given_usage_overrides_estimate(fake: FakeAnthropic, client: AsyncAnthropic):
    fake.reply_text("hi", usage=Usage(output_tokens=4096))
    usage = (await create(client)).usage
    assert usage.output_tokens == 4096 and usage.input_tokens > 0


async def test_streaming_text(fake: FakeAnthropic, client: AsyncAnthropic):
    fake.reply_text("a streamed answer that spans several deltas")
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "messages": HELLO}
    async with client.messages.stream(**kwargs) as stream:
        chunks = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert len(chunks) > 1
    assert "".join(chunks) == final.content[0].text == "a streamed answer that spans several deltas"
    assert final.usage.output_tokens > 0 and final.stop_reason == "end_turn"
    assert fake.requests[0].stream


async def test_streaming_tool_use_and_malformed_input(fake: FakeAnthropic, client: AsyncAnthropic):
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "messages": HELLO}
    fake.reply_tool_use("search", {"query": "a fairly long query string"})
    async with client.messages.stream(**kwargs) as stream:
        final = await stream.get_final_message()
    assert final.content[0].input == {"query": "a fairly long query string"}  # type: ignore[union-attr]

    fake.malformed_tool_call()
    with pytest.raises(ValueError, match="Unable to parse tool parameter JSON"):
        async with client.messages.stream(**kwargs) as stream:
            await stream.get_final_message()


async def test_cut_stream_raises_mid_stream(fake: FakeAnthropic, client: AsyncAnthropic):
    fake.cut_stream(after_events=2)
    kwargs: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "messages": HELLO}
    # A connection dropped mid-stream surfaces as the HTTP library's error, not an anthropic one.
    with pytest.raises(Exception, match="incomplete chunked read"):
        async with client.messages.stream(**kwargs) as stream:
            async for _ in stream:
                pass
    assert len(fake.requests) == 1  # not retried


async def test_on_request_responder_reads_the_request(fake: FakeAnthropic, client: AsyncAnthropic):
    async def model(request: RecordedRequest) -> Reply:
        return Reply.text(request.last_user_text.upper())

    fake.on_request(model)
    assert (await create(client)).content[0].text == "HELLO"


async def test_count_tokens(client: AsyncAnthropic):
    count = await client.messages.count_tokens(model=MODEL, messages=HELLO)
    assert count.input_tokens == 2
