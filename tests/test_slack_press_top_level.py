"""A card posted at the top of a Slack channel (a briefing posted there, as `/briefing to here`
sets it up) is approved by a press in that channel: the approved post to that very channel
reaches the channel, not only the presser (R223, R203's Slack twin for a card not in a thread:
the press's address is the channel's own, so its private answer claimed the approved post)."""

from __future__ import annotations

import json
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, block_actions_payload, post_signed, slash_command_form
from harness import OWNER_SLACK, slack_steward, until
from trust_world import WebServer

TEAM = "C0TEAM9"
WORDS = "Team: the garden meeting moved to 3pm, room B."
FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>Garden news</title>
<item><title>Tomatoes love warm nights</title><link>http://news.example/tomatoes</link>
<guid>t1</guid><pubDate>Mon, 07 Dec 2026 05:00:00 GMT</pubDate>
<description>Why night temperature matters.</description></item>
</channel></rss>"""


async def test_an_approved_post_from_a_top_level_card_reaches_the_channel(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    web = WebServer()
    await web.start()
    web.pages["/feed.xml"] = FEED
    web.feeds.add("/feed.xml")
    env = {"STEWARD_STREAMING": "off", "STEWARD_FETCH_ALLOW_HOSTS": "127.0.0.1"}
    fake_model.reply_tool_use("send_message", {"channel": "slack", "chat": TEAM, "text": WORDS})
    fake_model.reply_text("Briefing: tomatoes love warm nights.")
    try:
        async with (
            FakeSlack() as slack,
            slack_steward(tmp_path, fake_model, slack, env=env) as (h, _, url),
        ):
            assert "added" in await h.say(f"/briefing feeds add {web.base_url}/feed.xml")
            before = len(slack.posted())
            form = slash_command_form("/briefing", "to here", user_id=OWNER_SLACK, channel_id=TEAM)
            assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
            # answered in the owner's direct messages, as every slash command is
            await until(lambda: len(slack.posted()) > before, "the answer to /briefing to here")
            await h.say("/briefing now")
            cards = await until(
                lambda: [p for p in slack.posted(TEAM) if p.params.get("blocks")], "the card"
            )
            assert cards[0].params.get("thread_ts") is None  # at the channel's top level
            approval_id = cards[0].params["blocks"][2]["elements"][0]["value"]
            payload = block_actions_payload(
                "approval_approve",
                approval_id,
                user_id=OWNER_SLACK,
                channel_id=TEAM,
                message_ts=cards[0].result["ts"],
                response_url=slack.response_url(),
            )  # a top-level card: Slack's payload carries no thread_ts
            form = {"payload": json.dumps(payload)}
            assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
            await until(
                lambda: [p for p in slack.posted(TEAM) if "tomatoes" in str(p.params)],
                "the resumed briefing",
            )
            public = [str(p.params.get("text")) for p in slack.posted(TEAM)]
            privately = [str(r.get("text")) for r in slack.responses]
    finally:
        await web.stop()
    assert any(WORDS in t for t in public), public
    assert not any(WORDS in t for t in privately), privately
