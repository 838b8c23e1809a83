"""The fake Slack works with the real slack_sdk / slack-bolt async clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from fakes.slack import (
    FakeSlack,
    app_mention_event,
    block_actions_payload,
    event_body,
    message_event,
    post_signed,
    slash_command_form,
)
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as f:
        yield f


def make_app(fake: FakeSlack) -> AsyncApp:
    # Only `client=`: passing `token=` as well just logs "token will be unused".
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    app = AsyncApp(client=client, signing_secret=fake.signing_secret)

    @app.event("message")
    async def on_message(event: dict[str, Any], say: Any) -> None:
        await say(f"echo: {event['text']}")

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text=f"mention: {event['text']}", thread_ts=event["ts"])

    @app.action("approve")
    async def on_approve(ack: Any, action: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(f"approved {action['value']}")

    @app.command("/remember")
    async def on_remember(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"saved: {command['text']}")

    return app


@asynccontextmanager
async def serve(app: AsyncApp) -> AsyncIterator[str]:
    runner = web.AppRunner(app.web_app(path="/slack/events"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- HTTP mode
async def test_signed_message_event_reaches_listener(fake: FakeSlack) -> None:
    async with serve(make_app(fake)) as url:
        body = event_body(message_event("hello", user="U42", channel="D42"))
        status, _ = await post_signed(url, fake.signing_secret, json_body=body)
        assert status == 200
        (post,) = await fake.wait_for("chat.postMessage")
    assert post.params["channel"] == "D42"
    assert post.params["text"] == "echo: hello"
    assert post.headers["Authorization"] == "Bearer xoxb-test"
    assert fake.calls_to("auth.test"), "bolt calls auth.test lazily on the first event"
    assert fake.posted("D42") == [post]


async def test_app_mention_replies_in_thread(fake: FakeSlack) -> None:
    async with serve(make_app(fake)) as url:
        event = app_mention_event("<@UBOT> hi", user="U42", channel="C9")
        await post_signed(url, fake.signing_secret, json_body=event_body(event), retry_num=1)
        (post,) = await fake.wait_for("chat.postMessage")
    assert post.params["thread_ts"] == event["ts"]


@pytest.mark.parametrize("kwargs", [{"bad_signature": True}, {"timestamp": int(time.time()) - 600}])
async def test_bad_or_stale_signature_is_rejected(fake: FakeSlack, kwargs: dict[str, Any]) -> None:
    async with serve(make_app(fake)) as url:
        body = event_body(message_event("hello"))
        status, _ = await post_signed(url, fake.signing_secret, json_body=body, **kwargs)
    assert status == 401
    assert fake.calls == []


async def test_block_actions_reach_action_listener(fake: FakeSlack) -> None:
    async with serve(make_app(fake)) as url:
        payload = block_actions_payload(
            "approve", "42", user_id="U42", response_url=fake.response_url()
        )
        form = {"payload": json.dumps(payload)}
        status, _ = await post_signed(url, fake.signing_secret, form=form)
        assert status == 200
        (response,) = await fake.wait_responses()
    assert response["text"] == "approved 42"


async def test_slash_command_is_acked_within_the_request(fake: FakeSlack) -> None:
    async with serve(make_app(fake)) as url:
        form = slash_command_form("/remember", "milk", user_id="U42")
        status, text = await post_signed(url, fake.signing_secret, form=form)
    assert (status, text) == (200, "saved: milk")  # a text-only ack() is sent as text/plain


# ---------------------------------------------------------------- Socket Mode
async def test_socket_mode_event_is_delivered_and_acked(fake: FakeSlack) -> None:
    app = make_app(fake)
    handler = AsyncSocketModeHandler(app, fake.app_token)
    received: list[dict[str, Any]] = []

    async def capture(_client: Any, message: dict[str, Any], _raw: str | None) -> None:
        received.append(message)

    handler.client.message_listeners.append(capture)
    try:
        async with asyncio.timeout(10):
            await handler.connect_async()
            await fake.wait_socket_connected()
            (conn,) = fake.calls_to("apps.connections.open")
            assert conn.token == fake.app_token
            envelope_id = await fake.send_envelope("events_api", event_body(message_event("yo")))
            ack = await fake.wait_ack(envelope_id)
            (post,) = await fake.wait_for("chat.postMessage")
    finally:
        await handler.close_async()
    assert ack == {"envelope_id": envelope_id}
    assert post.params["text"] == "echo: yo"
    assert received[0]["type"] == "hello"


async def test_socket_mode_slash_command_ack_carries_payload(fake: FakeSlack) -> None:
    handler = AsyncSocketModeHandler(make_app(fake), fake.app_token)
    try:
        async with asyncio.timeout(10):
            await handler.connect_async()
            await fake.wait_socket_connected()
            form = slash_command_form("/remember", "eggs", user_id="U42")
            envelope_id = await fake.send_envelope("slash_commands", form)
            ack = await fake.wait_ack(envelope_id)
    finally:
        await handler.close_async()
    assert ack["payload"]["text"] == "saved: eggs"


@pytest.mark.parametrize("graceful", [False, True])
async def test_socket_mode_reconnects_after_drop(fake: FakeSlack, graceful: bool) -> None:
    handler = AsyncSocketModeHandler(make_app(fake), fake.app_token, ping_interval=0.5)
    try:
        async with asyncio.timeout(15):
            await handler.connect_async()
            await fake.wait_socket_connected()
            await fake.drop_socket(graceful=graceful)
            await fake.wait_socket_connected(count=2)
            envelope_id = await fake.send_envelope("events_api", event_body(message_event("x")))
            await fake.wait_ack(envelope_id)
    finally:
        await handler.close_async()
    assert len(fake.calls_to("apps.connections.open")) >= 2


async def test_socket_mode_detects_silent_connection(fake: FakeSlack) -> None:
    handler = AsyncSocketModeHandler(make_app(fake), fake.app_token, ping_interval=0.5)
    try:
        async with asyncio.timeout(15):
            await handler.connect_async()
            await fake.wait_socket_connected()
            fake.socket_silent = True
            await fake.wait_socket_connected(count=2)
            fake.socket_silent = False
            while True:  # the client may still replace a connection it judged stale
                envelope_id = await fake.send_envelope("events_api", event_body(message_event("z")))
                try:
                    await fake.wait_ack(envelope_id, timeout=1.0)
                    break
                except TimeoutError:
                    await fake.wait_socket_connected()
    finally:
        await handler.close_async()


# ---------------------------------------------------------------- Web API
async def test_web_api_methods_and_errors(fake: FakeSlack) -> None:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    first = await client.chat_postMessage(channel="C1", text="hi", blocks=blocks)
    second = await client.chat_postMessage(channel="C1", text="again", thread_ts=first["ts"])
    assert first["ts"] < second["ts"]
    assert second["message"]["thread_ts"] == first["ts"]
    assert fake.posted("C1")[0].params["blocks"] == blocks
    assert (await client.chat_update(channel="C1", ts=first["ts"], text="edited"))[
        "text"
    ] == "edited"
    assert (await client.conversations_open(users="U42"))["channel"]["id"].startswith("D")
    fake.users["U42"] = {"tz": "Europe/Berlin"}
    assert (await client.users_info(user="U42"))["user"]["tz"] == "Europe/Berlin"
    # form-encoded JSON fields are decoded too
    await client.api_call(
        "chat.postEphemeral", data={"channel": "C1", "user": "U42", "blocks": json.dumps(blocks)}
    )
    assert fake.calls_to("chat.postEphemeral")[0].params["blocks"] == blocks

    fake.fail_next("reactions.add", "already_reacted")
    with pytest.raises(SlackApiError) as err:
        await client.reactions_add(channel="C1", timestamp=first["ts"], name="eyes")
    assert err.value.response["error"] == "already_reacted"
    await client.reactions_add(channel="C1", timestamp=first["ts"], name="eyes")

    with pytest.raises(SlackApiError, match="invalid_auth"):
        await client.apps_connections_open(app_token="xapp-wrong")
    with pytest.raises(SlackApiError, match="unknown_method"):
        await client.api_call("no.such_method")
    with pytest.raises(TimeoutError, match="methods seen"):
        await fake.wait_for("views.publish", timeout=0.05)


async def test_rate_limit_is_visible_to_slack_sdk(fake: FakeSlack) -> None:
    # Default retry handlers only retry connection errors: a 429 raises SlackApiError.
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    fake.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] in ("7", ["7"])

    # With AsyncRateLimitErrorRetryHandler it sleeps Retry-After + random() s and retries.
    retrying = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.rate_limit_next("chat.postMessage", retry_after=0)
    assert (await retrying.chat_postMessage(channel="C1", text="hi"))["ok"]
    assert len(fake.calls_to("chat.postMessage")) == 3
