"""What Steward sends on Slack (review58): a long reply that failed part-way is resumed, not
sent again from the start; a press on a card in a channel is answered to the presser alone;
a person's Slack profile time zone is theirs until they set one."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.slack import (
    ApiCall,
    FakeSlack,
    app_mention_event,
    block_actions_payload,
    event_body,
    message_event,
    post_signed,
    slash_command_form,
)
from harness import OWNER_SLACK, running_steward, slack_steward, started_slack, until

from agent.outbox import DeliveryError
from agent.types import Address
from bot.channels.slack import SlackChannel
from bot.http import HttpServer
from memory.people import Identity

DM = "DOWNER"
OFF = {"STEWARD_STREAMING": "off"}


async def _event(url: str, fake: FakeSlack, event: dict[str, Any]) -> None:
    status, _ = await post_signed(url, fake.signing_secret, json_body=event_body(event))
    assert status == 200


async def test_a_long_reply_that_failed_part_way_is_resumed_where_it_failed(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    para = ("Lorem ipsum dolor sit amet " * 40).strip()
    fake_model.reply_text("\n\n".join(f"Part {i}. {para}" for i in range(12)))
    async with FakeSlack() as slack:
        posts = 0
        post = slack._post_message

        def second_fails(call: ApiCall) -> dict[str, Any]:
            nonlocal posts
            posts += 1
            return {"ok": False, "error": "internal_error"} if posts == 2 else post(call)

        slack.handlers["chat.postMessage"] = second_fails
        async with slack_steward(tmp_path, fake_model, slack, env=OFF) as (h, _, url):
            await _event(url, slack, message_event("write a lot", user=OWNER_SLACK, channel=DM))
            await until(lambda: posts >= 2, "the failing second part")
            await asyncio.sleep(0.3)
            assert await h.steward.courier.redeliver() == 1
    sent = [c.params["text"][:8] for c in slack.posted(DM) if c.result and c.result.get("ok")]
    assert sent == ["Part 0. ", "Part 3. ", "Part 6. ", "Part 9. "]


async def test_a_part_refused_for_good_forgets_what_was_sent(tmp_path: Path) -> None:
    """A message given up (the channel archived) is never resumed: nothing of it is kept."""
    async with FakeSlack() as slack:
        http = HttpServer("127.0.0.1", 0)
        channel = SlackChannel(
            bot_token=slack.bot_token, signing_secret="s", api_url=slack.api_url, http=http
        )
        await channel.start(_nowhere)
        try:
            text = "\n\n".join(f"Part {i}. " + "word " * 700 for i in range(3))
            slack.fail_next("chat.postMessage", "internal_error")
            with pytest.raises(DeliveryError):
                await channel.send_text(Address("slack", "C1"), text)
            assert channel._partial == {}  # the first part failed: nothing to skip
            await channel.send_text(Address("slack", "C1"), text)
            slack.calls.clear()
            post = slack._post_message
            count = 0

            def archived_after_one(call: ApiCall) -> dict[str, Any]:
                nonlocal count
                count += 1
                return post(call) if count == 1 else {"ok": False, "error": "is_archived"}

            slack.handlers["chat.postMessage"] = archived_after_one
            with pytest.raises(DeliveryError) as refused:
                await channel.send_text(Address("slack", "C2"), text)
            assert refused.value.permanent
            assert channel._partial == {}
        finally:
            await channel.stop()
            await http.stop()


async def test_a_refused_press_on_a_card_in_a_channel_is_answered_to_the_presser_alone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_tool_use(
        "send_message", {"channel": "slack", "chat": "C0STATUS", "text": "hi"}
    )
    fake_model.reply_text("Posted it.")
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (h, _, url),
    ):
        await h.steward.stores.people.admit(Identity("slack", "UANN"))
        mention = app_mention_event("<@UBOT> post hi to status", user=OWNER_SLACK, channel="C9")
        await _event(url, slack, mention)
        card = (
            await until(lambda: [p for p in slack.posted("C9") if p.params.get("blocks")], "card")
        )[0]
        approval_id = card.params["blocks"][2]["elements"][0]["value"]

        async def press(user: str) -> None:
            payload = block_actions_payload(
                "approval_approve",
                approval_id,
                user_id=user,
                channel_id="C9",
                message_ts=card.result["ts"],
                response_url=slack.response_url(),
            )
            payload["message"]["thread_ts"] = mention["ts"]
            form = {"payload": json.dumps(payload)}
            assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200

        await press("UANN")  # allowed to talk, not to decide
        await slack.wait_responses(1, timeout=10)
        await press("UMALLORY")  # a stranger
        await slack.wait_responses(2, timeout=10)
        await asyncio.sleep(0.3)
        assert slack.posted("C9") == [card]  # nothing said in the open
        await press(OWNER_SLACK)  # decides: the card shows it, the turn goes on in the thread
        await until(lambda: slack.posted("C0STATUS"), "the approved post")
        await until(lambda: len(slack.posted("C9")) >= 2, "the resumed reply", timeout=15)
        await asyncio.sleep(0.3)
    answers = [(r["response_type"], r["replace_original"], r["text"]) for r in slack.responses]
    assert answers[0] == ("ephemeral", False, "Only the owner can decide approval requests.")
    assert answers[1][:2] == ("ephemeral", False)
    assert "my owner can admit you with /allow slack:UMALLORY" in answers[1][2]
    assert len(answers) == 2  # the owner's press: answered in the open, as before
    assert slack.calls_to("chat.postEphemeral") == []
    public = [p.params["text"] for p in slack.posted("C9")[1:]]
    assert "Posted it." in public
    assert all("Only the owner" not in t and "/allow" not in t for t in public)
    (update,) = slack.calls_to("chat.update")
    assert "decided by the owner" in update.params["text"]


async def test_a_press_without_a_response_url_is_answered_with_chat_post_ephemeral(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (h, _, url),
    ):
        await h.steward.stores.people.admit(Identity("slack", "UANN"))
        payload = block_actions_payload(
            "approval_deny", "k3f9", user_id="UANN", channel_id="C9", message_ts="1.000200"
        )
        payload["message"]["thread_ts"] = "1.000100"
        payload["response_url"] = ""
        form = {"payload": json.dumps(payload)}
        await post_signed(url, slack.signing_secret, form=form)
        (ephemeral,) = await slack.wait_for("chat.postEphemeral", timeout=10)
    assert ephemeral.params["channel"] == "C9"
    assert ephemeral.params["user"] == "UANN"
    assert ephemeral.params["thread_ts"] == "1.000100"
    assert ephemeral.params["text"] == "Only the owner can decide approval requests."
    assert slack.posted("C9") == []


async def test_a_slack_profile_time_zone_is_used_until_the_person_sets_one(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async with FakeSlack() as slack:
        slack.users[OWNER_SLACK] = {"tz": "America/New_York"}
        slack.users["UANN"] = {"tz": "Asia/Tokyo"}
        slack.users["UBEA"] = {"tz": "Europe/Paris"}
        owner = f"test:owner,slack:{OWNER_SLACK}"
        async with running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner, **OFF) as h:
            people = h.steward.stores.people
            ann = await people.admit(Identity("slack", "UANN"))
            bea = await people.admit(Identity("slack", "UBEA"))
            await people.set_timezone(bea.id, "Africa/Cairo")  # her own: kept
            async with started_slack(h, slack) as url:
                await _event(url, slack, message_event("/timezone", user=OWNER_SLACK, channel=DM))
                (shown,) = await until(lambda: slack.posted(DM), "the owner's answer")
                for user, dm in (("UANN", "DANN"), ("UBEA", "DBEA")):
                    form = slash_command_form(
                        "/steward",
                        "remind tomorrow 9:00 standup",
                        user_id=user,
                        channel_id=dm,
                        response_url=slack.response_url(),
                    )
                    assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
                    await until(lambda dm=dm: slack.posted(dm), f"{user}'s answer")
                ann_now, bea_now = await people.get(ann.id), await people.get(bea.id)
    assert shown.params["text"].startswith("Your timezone: America/New_York.")
    assert ann_now is not None and ann_now.timezone == "Asia/Tokyo"
    assert bea_now is not None and bea_now.timezone == "Africa/Cairo"
    with sqlite3.connect(tmp_path / "steward.db") as db:
        runs = dict(db.execute("SELECT user_id, next_run_at FROM schedules").fetchall())
        changed = db.execute("SELECT actor FROM audit_events WHERE kind = 'user.timezone'")
        actors = {actor for (actor,) in changed.fetchall()}
    # 9:00 in Tokyo is midnight UTC; 9:00 in Cairo (winter) 7:00 UTC
    assert datetime.fromisoformat(runs[ann.id]).astimezone(UTC).strftime("%H:%M") == "00:00"
    assert datetime.fromisoformat(runs[bea.id]).astimezone(UTC).strftime("%H:%M") == "07:00"
    assert f"user:{ann.id}" in actors and f"user:{bea.id}" not in actors  # as /timezone does


async def _nowhere(message: Any) -> None:
    raise AssertionError("nothing comes in here")


async def test_an_approval_card_slack_would_not_take_is_replaced_by_a_queued_note(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The card's post failed (Slack down, rate-limited past the retries): only logged, the
    owner saw nothing and the request expired unseen (R58)."""
    fake_model.reply_tool_use("send_message", {"channel": "slack", "chat": "C0X", "text": "hi"})
    async with FakeSlack() as slack:
        slack.fail_next("chat.postMessage", "internal_error")  # the card's post
        async with slack_steward(tmp_path, fake_model, slack, env=OFF) as (h, _, url):
            await _event(url, slack, message_event("say hi in #x", user=OWNER_SLACK, channel=DM))
            notes = await until(
                lambda: [c for c in slack.posted(DM) if "could not be shown" in c.params["text"]],
                "the note instead of the card",
            )
            (pending,) = await h.steward.stores.approvals.pending()
    text = notes[0].params["text"]
    assert f"/approve {pending.id}" in text and "send_message" in text
    assert not any(pending.id in str(r.body) for r in fake_model.requests)


async def test_the_owners_steward_timezone_is_not_replaced_by_their_slack_profile(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R59: the owner's Slack profile zone silently replaced STEWARD_TIMEZONE, set on purpose,
    and moved their briefings."""
    async with FakeSlack() as slack:
        slack.users[OWNER_SLACK] = {"tz": "America/New_York"}
        owner = f"test:owner,slack:{OWNER_SLACK}"
        settings = {"STEWARD_OWNER": owner, "STEWARD_TIMEZONE": "Europe/Berlin", **OFF}
        async with (
            running_steward(tmp_path, fake_model.base_url, **settings) as h,
            started_slack(h, slack) as url,
        ):
            await _event(url, slack, message_event("/timezone", user=OWNER_SLACK, channel=DM))
            (shown,) = await until(lambda: slack.posted(DM), "the owner's answer")
    assert shown.params["text"].startswith("Your timezone: Europe/Berlin.")


async def test_a_guests_card_slack_would_not_take_is_told_to_the_owner_too(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R60: when another person's card failed, only their chat got the note (they cannot
    decide it) and the owner, who can, heard nothing until it expired."""
    fake_model.reply_text("Hi!")  # the owner's hello: their private chat exists
    fake_model.reply_tool_use("send_message", {"channel": "slack", "chat": "C0X", "text": "hi"})
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (h, _, url),
    ):
        await h.steward.stores.people.admit(Identity("slack", "UANN"), "Ann")
        await _event(url, slack, message_event("hello", user=OWNER_SLACK, channel=DM))
        await until(lambda: slack.posted(DM), "the owner's hello answered")
        slack.fail_next("chat.postMessage", "internal_error")  # Ann's card
        await _event(url, slack, message_event("say hi in #x", user="UANN", channel="DANN"))
        told = await until(
            lambda: [c for c in slack.posted(DM) if "asked, in" in c.params["text"]],
            "the owner told of Ann's request",
        )
        (pending,) = await h.steward.stores.approvals.pending()
    assert f"request {pending.id}" in told[0].params["text"]
    assert any("could not be shown" in c.params["text"] for c in slack.posted("DANN"))
