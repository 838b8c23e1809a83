"""The Slack channel on the real core: HTTP Events API and Socket Mode against the Slack fake."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import (
    FakeSlack,
    app_mention_event,
    block_actions_payload,
    event_body,
    message_event,
    post_signed,
    slash_command_form,
)
from harness import OWNER_SLACK, echo_reply, running_steward, slack_steward, until

from agent.types import Address, ApprovalPrompt
from bot.channels.errors import ChannelStartError
from bot.channels.slack import SlackChannel
from bot.commands import build_commands
from bot.http import HttpServer
from memory.people import Identity

STRANGER = "UMALLORY"
DM = "DOWNER"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def _event(url: str, fake: FakeSlack, event: dict[str, Any], **kw: Any) -> int:
    status, _ = await post_signed(url, fake.signing_secret, json_body=event_body(event), **kw)
    return status


async def test_a_direct_message_is_answered_in_its_thread_in_mrkdwn(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    fake_model.reply_text("**Done**: see [the doc](https://example.com/a?b=1) & <more>")
    async with slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        event = message_event("tidy up", user=OWNER_SLACK, channel=DM)
        assert await _event(url, slack, event) == 200
        (post,) = await slack.wait_for("chat.postMessage")
    assert post.params["channel"] == DM
    assert post.params["thread_ts"] == event["ts"]
    assert (
        post.params["text"]
        == "*Done*: see the doc (<https://example.com/a?b=1>) &amp; &lt;more&gt;"
    )
    assert "tidy up" in fake_model.requests[0].last_user_text


async def test_a_mention_in_a_channel_is_answered_in_the_thread_without_the_mention(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    fake_model.on_request(echo_reply)
    async with slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        root = message_event("x", user=OWNER_SLACK, channel="C9")["ts"]
        event = app_mention_event("<@UBOT> status of <https://x.io|the build>?", user=OWNER_SLACK)
        event["thread_ts"] = root
        event["channel"] = "C9"
        assert await _event(url, slack, event) == 200
        # the same channel message also arrives as a message event: not answered twice
        plain = message_event(event["text"], user=OWNER_SLACK, channel="C9", ts=event["ts"])
        plain["channel_type"] = "channel"
        assert await _event(url, slack, plain) == 200
        (post,) = await slack.wait_for("chat.postMessage")
        await asyncio.sleep(0.3)
    assert post.params["channel"] == "C9" and post.params["thread_ts"] == root
    assert post.params["text"] == "re: status of the build (https://x.io)?"
    assert len(slack.posted()) == 1


async def test_bad_signatures_and_replayed_timestamps_are_refused(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    async with slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        event = message_event("let me in", user=OWNER_SLACK, channel=DM)
        assert await _event(url, slack, event, bad_signature=True) == 401
        assert await _event(url, slack, event, timestamp=int(time.time()) - 600) == 401
        # the check Slack makes when you enter the Request URL in HTTP mode
        challenge = {"token": "t", "challenge": "c4ll3nge", "type": "url_verification"}
        status, text = await post_signed(url, slack.signing_secret, json_body=challenge)
        assert (status, json.loads(text)) == (200, {"challenge": "c4ll3nge"})
        await asyncio.sleep(0.3)
    assert slack.posted() == []
    assert fake_model.requests == []


async def test_a_post_an_app_made_with_the_owners_account_is_not_the_owners_word(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    """R185: an integration posting "as the owner" (a feed relay with a user token) comes
    with the owner's user id and an `app_id`, maybe no `bot_id`: it ran /allow and its words
    were the owner's, unfenced. Such a post is dropped, a DM or a mention."""
    fake_model.on_request(echo_reply)
    async with slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        relayed = message_event("/allow slack:UATTACKER", user=OWNER_SLACK, channel=DM)
        assert await _event(url, slack, relayed | {"app_id": "AZAPIER"}) == 200
        mention = app_mention_event("<@UBOT> tidy the workspace", user=OWNER_SLACK)
        profile = {"bot_profile": {"id": "B9", "app_id": "AZAPIER", "name": "Relay"}}
        assert await _event(url, slack, mention | profile) == 200
        typed = message_event("hello", user=OWNER_SLACK, channel=DM)  # the owner, typing
        assert await _event(url, slack, typed) == 200
        await slack.wait_for("chat.postMessage", timeout=10)
        await asyncio.sleep(0.3)
        people = [await h.steward.stores.people.resolve(Identity("slack", "UATTACKER"))]
        assert people == [None]
        stored = [m.text for m in await h.steward.stores.messages.recent(1, limit=20)]
    assert [p.params["text"] for p in slack.posted(DM)] == ["re: hello"]
    assert "tidy the workspace" not in " ".join(stored) and "/allow" not in " ".join(stored)
    assert len(fake_model.requests) == 1


async def test_a_retried_event_is_answered_once(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    fake_model.latency = 1.5  # the turn runs long after Slack got its ack
    fake_model.on_request(echo_reply)
    async with slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        body = event_body(message_event("once", user=OWNER_SLACK, channel=DM))
        started = time.monotonic()
        status, _ = await post_signed(url, slack.signing_secret, json_body=body)
        assert time.monotonic() - started < 1.0
        retried, _ = await post_signed(url, slack.signing_secret, json_body=body, retry_num=1)
        assert (status, retried) == (200, 200)
        await slack.wait_for("chat.postMessage", timeout=10)
        knock = event_body(message_event("let me in", user=STRANGER, channel="DMAL"))
        for retry in (None, 1, 2):
            await post_signed(url, slack.signing_secret, json_body=knock, retry_num=retry)
        await asyncio.sleep(0.5)
        knocks = await h.steward.stores.audit.recent(kind="stranger.refused")
    assert len(knocks) == 1, "Slack's retries of one event are dropped by event id"
    texts = [p.params["text"] for p in slack.posted(DM)]
    assert texts.count("re: once") == 1
    assert len(texts) == 2 and "/allow slack:UMALLORY" in texts[1]  # the owner told once
    assert len(fake_model.requests) == 1


async def test_slash_commands_are_acknowledged_at_once_and_answered_in_the_background(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    fake_model.on_request(echo_reply)
    async with slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        form = slash_command_form("/status", "", user_id=OWNER_SLACK, channel_id=DM)
        started = time.monotonic()
        status, _ = await post_signed(url, slack.signing_secret, form=form)
        acked_in = time.monotonic() - started
        assert status == 200 and acked_in < 3
        form = slash_command_form("/steward", "help link", user_id=OWNER_SLACK, channel_id=DM)
        assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        await slack.wait_for("chat.postMessage", 2)
        # plain text starting with / in a DM is a command too
        await _event(url, slack, message_event("/usage", user=OWNER_SLACK, channel=DM))
        await slack.wait_for("chat.postMessage", 3)
    texts = [p.params["text"] for p in slack.posted(DM)]
    assert any(t.startswith("Up ") for t in texts)
    assert any(t.startswith("/link — ") for t in texts)
    assert any(t.startswith("Today") for t in texts)
    assert fake_model.requests == []


async def test_words_after_steward_that_are_no_command_get_usage_not_the_model(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    """R186: `/steward 1 2 3` reached the model as "/1 2 3", a paid turn on altered words."""
    fake_model.on_request(echo_reply)
    async with slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        for words in ("1 2 3", "\U0001f600"):
            form = slash_command_form("/steward", words, user_id=OWNER_SLACK, channel_id=DM)
            assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        await until(lambda: len(slack.posted(DM)) >= 2, "both answered")
    texts = [p.params["text"] for p in slack.posted(DM)]
    assert texts[0].startswith("There is no command /1 2 3."), texts
    assert "/steward help" in texts[0] and "Example" in texts[0], texts
    assert texts[1].startswith("There is no command /\U0001f600."), texts
    assert fake_model.requests == []


async def test_a_slash_command_is_answered_in_the_typers_dm_wherever_it_was_typed(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    """Slack shows a slash command to no one but its typer: its answer went to the channel
    for everyone (`/remember the safe code is 4711`), and one typed in a DM with a colleague
    (which Steward is not in) made that DM the owner's "private chat" for notices."""
    async with slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        for channel, command, text in (
            ("C0PUBLIC", "/remember", "the safe code is 4711"),
            ("DOWNERMAL", "/goal", "add find a new job"),
        ):
            form = slash_command_form(command, text, user_id=OWNER_SLACK, channel_id=channel)
            status, body = await post_signed(url, slack.signing_secret, form=form)
            assert status == 200 and "I answer in our direct messages." in body
        await until(lambda: len(slack.posted(DM)) >= 2, "both answers in the DM")
        chats = {c.platform_chat_id for c in await h.steward.stores.people.private_chats(1)}
    assert slack.posted("C0PUBLIC") == [] and slack.posted("DOWNERMAL") == []
    texts = [p.params["text"] for p in slack.posted(DM)]
    assert any("4711" in t for t in texts) and any("new job" in t for t in texts)
    assert chats == {DM}


async def test_a_strangers_slash_command_in_a_channel_is_refused_to_them_alone(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    """R174: a stranger's `/goal list` typed in a channel opened a DM with them for the
    refusal, and the owner was told they had written "privately"."""
    async with slack_steward(tmp_path, fake_model, slack) as (h, channel, url):

        async def known(identity: Identity) -> bool:  # as `steward run` wires it
            return await h.steward.stores.people.resolve(identity) is not None

        channel.known = known
        form = slash_command_form(
            "/goal", "list", user_id="UMALLORY", channel_id="C9", response_url=slack.response_url()
        )
        assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        [refusal] = await slack.wait_responses(1)
    assert "/allow slack:UMALLORY" in refusal["text"]
    assert refusal.get("response_type") == "ephemeral"
    assert slack.calls_to("conversations.open") == [] and slack.posted() == []


async def test_a_slow_dm_opening_loses_no_command_and_here_is_where_it_was_typed(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    """conversations.open rate-limited for 3 s (the first command after a start): the ack
    waited for it past Slack's 3 s and the command was dropped. "/briefing to here" typed in
    a channel meant the DM once answers went there."""
    slack.rate_limit_next("conversations.open", retry_after=3)
    async with slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        form = slash_command_form("/remember", "the boiler code is 22", user_id=OWNER_SLACK,
                                  channel_id="C0PUBLIC")  # fmt: skip
        started = time.monotonic()
        status, body = await post_signed(url, slack.signing_secret, form=form)
        assert status == 200 and time.monotonic() - started < 3
        assert "I answer in our direct messages." in body
        await until(lambda: slack.posted(DM), "the answer once the DM opened", timeout=20)
        form = slash_command_form("/briefing", "to here", user_id=OWNER_SLACK,
                                  channel_id="C0PUBLIC")  # fmt: skip
        assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        await until(lambda: len(slack.posted(DM)) >= 2, "the briefing's answer")
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        prefs = await h.steward.stores.feeds.prefs(owner.id)
    assert "boiler code" in slack.posted(DM)[0].params["text"]
    assert prefs.destination == {"channel": "slack", "chat_id": "C0PUBLIC", "thread_id": None}
    assert slack.posted("C0PUBLIC") == []


async def test_one_persons_commands_run_in_the_order_typed_and_a_colleague_dm_is_told(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    """The first command's DM lookup, rate-limited, let the second (looked up at once) run
    first ("Goal #1 added: second"); typed in a DM with a colleague before the DM was known,
    the command was acknowledged without a word there."""
    slack.rate_limit_next("conversations.open", retry_after=2)
    async with slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        for text in ("add first", "add second"):
            form = slash_command_form("/goal", text, user_id=OWNER_SLACK, channel_id="DCOLLEAGUE",
                                      response_url=slack.response_url())  # fmt: skip
            assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        await until(lambda: len(slack.posted(DM)) >= 2, "both answers", timeout=20)
    answers = [p.params["text"] for p in slack.posted(DM)]
    assert answers[0].startswith("Goal #1 added: first") and answers[1].startswith("Goal #2")
    assert [r.get("text") for r in slack.responses] == ["I answer in our direct messages."] * 2


async def test_approval_prompts_are_block_kit_buttons_and_a_press_is_a_command(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    async with slack_steward(tmp_path, fake_model, slack) as (h, channel, url):
        address = Address("slack", DM, "1700000000.000100")
        prompt = ApprovalPrompt("k3f9", "send_message", "Post to telegram:\nhi", "acts outside")
        ts = await channel.send_approval(address, prompt)
        (post,) = slack.posted(DM)
        actions = next(b for b in post.params["blocks"] if b["type"] == "actions")
        assert [(e["action_id"], e["value"]) for e in actions["elements"]] == [
            ("approval_approve", "k3f9"),
            ("approval_deny", "k3f9"),
            ("approval_always", "k3f9"),
        ]
        assert post.params["thread_ts"] == "1700000000.000100"

        for user, action in ((OWNER_SLACK, "approval_deny"), (STRANGER, "approval_approve")):
            payload = block_actions_payload(
                action, "k3f9", user_id=user, channel_id=DM, message_ts=ts or ""
            )
            form = {"payload": json.dumps(payload)}
            assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        await slack.wait_for("chat.postMessage", 3)
        refusals = await h.steward.stores.audit.recent(kind="stranger.refused")
        assert ts is not None
        await channel.mark_approval(address, ts, "k3f9 denied (decided by slack:UOWNER)")
    with sqlite3.connect(tmp_path / "steward.db") as db:
        pressed = db.execute(
            "SELECT messages.text, identities.platform_user_id FROM messages"
            " JOIN identities ON identities.user_id = messages.user_id"
            " WHERE direction = 'in' AND identities.channel = 'slack'"
        ).fetchall()
    assert pressed == [("/deny k3f9", OWNER_SLACK)]
    assert [e.actor for e in refusals] == [f"slack:{STRANGER}"]
    assert any(f"slack:{STRANGER}" in p.params["text"] for p in slack.posted(DM))
    (update,) = slack.calls_to("chat.update")
    assert update.params["ts"] == ts
    assert update.params["text"] == "k3f9 denied (decided by slack:UOWNER)"
    assert all(b["type"] != "actions" for b in update.params["blocks"])


async def test_socket_mode_events_are_acked_answered_and_a_quiet_socket_is_replaced(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    fake_model.on_request(echo_reply)
    async with slack_steward(tmp_path, fake_model, slack, socket=True, ping_interval=0.5):
        await slack.wait_socket_connected()
        assert slack.calls_to("apps.connections.open")[0].token == slack.app_token
        event = message_event("over the socket", user=OWNER_SLACK, channel=DM)
        envelope = await slack.send_envelope("events_api", event_body(event))
        assert await slack.wait_ack(envelope) == {"envelope_id": envelope}
        await slack.wait_for("chat.postMessage")

        form = slash_command_form("/help", "", user_id=OWNER_SLACK, channel_id=DM)
        await slack.wait_ack(await slack.send_envelope("slash_commands", form))
        await slack.wait_for("chat.postMessage", 2)

        slack.socket_silent = True
        await slack.wait_socket_connected(count=2, timeout=10)
        slack.socket_silent = False
        async with asyncio.timeout(10):
            while True:  # the client may still replace a connection it judged stale
                event = message_event("after the reconnect", user=OWNER_SLACK, channel=DM)
                envelope = await slack.send_envelope("events_api", event_body(event))
                try:
                    await slack.wait_ack(envelope, timeout=1.0)
                    break
                except TimeoutError:
                    await slack.wait_socket_connected()
        await slack.wait_for("chat.postMessage", 3)
    texts = [p.params["text"] for p in slack.posted(DM)]
    assert texts[0] == "re: over the socket"
    assert texts[1].startswith("Commands:")
    assert "re: after the reconnect" in texts


async def test_several_people_in_one_workspace_each_have_their_own_conversation(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    fake_model.on_request(echo_reply)
    async with slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        await h.steward.stores.people.admit(Identity("slack", "UANN"))
        await _event(url, slack, message_event("mine", user=OWNER_SLACK, channel=DM))
        await _event(url, slack, message_event("ann's", user="UANN", channel="DANN"))
        await slack.wait_for("chat.postMessage", 2)
        owner = await h.steward.stores.people.resolve(Identity("slack", OWNER_SLACK))
        ann = await h.steward.stores.people.resolve(Identity("slack", "UANN"))
    assert owner is not None and ann is not None and owner.id != ann.id
    assert {p.params["channel"]: p.params["text"] for p in slack.posted()} == {
        DM: "re: mine",
        "DANN": "re: ann's",
    }
    anns = next(r for r in fake_model.requests if "ann's" in r.last_user_text)
    assert "mine" not in json.dumps(anns.messages)


async def test_start_problems_are_reported_clearly(
    tmp_path: Path, fake_model: FakeAnthropic, slack: FakeSlack
) -> None:
    async with running_steward(tmp_path, fake_model.base_url) as h:
        wrong = SlackChannel(
            bot_token="xoxb-wrong",
            signing_secret="s",
            api_url=slack.api_url,
            http=HttpServer("127.0.0.1", 0),
        )
        with pytest.raises(ChannelStartError, match=r"SLACK_BOT_TOKEN \(invalid_auth\)"):
            await wrong.start(h.router.dispatch)
        bad_app = SlackChannel(
            bot_token=slack.bot_token, app_token="xapp-wrong", api_url=slack.api_url
        )
        with pytest.raises(ChannelStartError, match=r"SLACK_APP_TOKEN \(invalid_auth\)"):
            await bad_app.start(h.router.dispatch)
        neither = SlackChannel(bot_token=slack.bot_token, api_url=slack.api_url)
        with pytest.raises(ChannelStartError, match=r"SLACK_APP_TOKEN.*SLACK_SIGNING_SECRET"):
            await neither.start(h.router.dispatch)


def test_the_manifest_declares_what_the_channel_uses() -> None:
    yaml = pytest.importorskip("yaml")
    root = Path(__file__).resolve().parent.parent
    manifest = yaml.safe_load((root / "slack-manifest.yaml").read_text())
    commands = {c["command"].lstrip("/") for c in manifest["features"]["slash_commands"]}
    known = {c.name for c in build_commands()}
    assert "steward" in commands and commands - {"steward"} <= known
    # what the README tells people to send (a command Slack does not know is refused there)
    assert {"goal", "approve", "memory", "remember", "web", "mail", "mcp"} <= commands
    assert {"remind", "status"}.isdisjoint(commands), "Slack keeps these for itself"
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",
        "message.channels",  # thread replies without a mention (issue 17)
        "message.groups",
    }
    assert settings["interactivity"]["is_enabled"] and settings["socket_mode_enabled"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) >= {
        "app_mentions:read",
        "chat:write",
        "commands",
        "im:history",
        "users:read",
        "files:read",
        "channels:history",
        "reactions:write",  # the "working" mark (slack_working.py)
    }


async def test_two_direct_messages_are_handled_one_after_the_other(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Each message of a Slack direct chat has a thread of its own (its ts), and the line was
    kept by address: the second ran while the first still waited on the model, without it in
    its history."""
    fake_model.latency = 1.5
    fake_model.on_request(echo_reply)
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, _, url):
        for text in ("my timezone is Europe/Paris, remember it", "what time is it for me?"):
            body = event_body(message_event(text, user=OWNER_SLACK, channel="DOWNER"))
            status, _ = await post_signed(url, slack.signing_secret, json_body=body)
            assert status == 200
            await asyncio.sleep(0.1)
        await until(lambda: fake_model.requests, "the first model request")
        await asyncio.sleep(0.6)  # the first turn still waits on the model
        in_flight = len(fake_model.requests)
        await slack.wait_for("chat.postMessage", 2, timeout=10)
    assert in_flight == 1
    assert "Europe/Paris" in str(fake_model.requests[1].messages)  # the first in its history
