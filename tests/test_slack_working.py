"""Slack's "working on it" mark (bot/channels/slack_working.py): a ⏳ reaction on the message
while its turn runs past a moment, taken off when the answer is out; none for a quick answer
or a stranger; an app without the reactions:write scope answers as before, without marks."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, event_body, message_event, post_signed
from harness import OWNER_SLACK, slack_steward

from bot.channels.slack_working import WORKING_EMOJI
from memory.people import Identity

DM = "DOWNER"


async def _send(url: str, slack: FakeSlack, text: str, user: str = OWNER_SLACK) -> dict:
    event = message_event(text, user=user, channel=DM if user == OWNER_SLACK else "DMAL")
    status, _ = await post_signed(url, slack.signing_secret, json_body=event_body(event))
    assert status == 200
    return event


def _methods(slack: FakeSlack) -> list[str]:
    wanted = ("reactions.add", "reactions.remove", "chat.postMessage", "chat.stopStream")
    return [c.method for c in slack.calls if c.method in wanted]


async def test_a_slow_turn_marks_its_message_until_the_answer_is_out(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.latency = 1.2
    fake_model.reply_text("the long answer")
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, ch, url):
        ch.working.after = 0.3
        event = await _send(url, slack, "think hard about this")
        (added,) = await slack.wait_for("reactions.add")
        assert not slack.posted(DM)  # marked while the model still works
        (removed,) = await slack.wait_for("reactions.remove", timeout=10)
    for call in (added, removed):
        assert call.params["channel"] == DM
        assert call.params["timestamp"] == event["ts"]
        assert call.params["name"] == WORKING_EMOJI
    methods = _methods(slack)
    assert methods.index("reactions.add") < methods.index("chat.postMessage")
    assert methods.index("chat.postMessage") < methods.index("reactions.remove")


async def test_a_quick_answer_and_a_stranger_leave_no_mark(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text("quick")
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, ch, url):

        async def known(identity: Identity) -> bool:
            return identity.platform_user_id == OWNER_SLACK

        ch.known = known
        await _send(url, slack, "hello")
        await slack.wait_for("chat.postMessage")
        ch.working.after = 0.0  # a stranger is not marked however long it takes
        await _send(url, slack, "let me in", user="UMALLORY")
        await slack.wait_for("chat.postMessage", 2)
    assert not slack.calls_to("reactions.add")


async def test_without_the_scope_answers_go_on_and_marks_stop(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.latency = 0.6
    fake_model.reply_text("answer")
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (_, ch, url):
        ch.working.after = 0.1
        slack.fail_next("reactions.add", "missing_scope")
        await _send(url, slack, "first")
        await slack.wait_for("chat.postMessage")
        await _send(url, slack, "second")
        await slack.wait_for("chat.postMessage", 2, timeout=10)
    assert len(slack.calls_to("reactions.add")) == 1  # the second message was not tried
    assert not slack.calls_to("reactions.remove")
    assert not ch.working.enabled
