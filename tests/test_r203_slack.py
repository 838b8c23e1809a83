"""R203, as on Telegram: a post the owner approves by a press in a Slack channel, to that very
channel, goes to the channel, not to the presser alone. On Telegram it became the press's
pop-up; on Slack the press's answer is claimed only for the card's thread, so a post to the
channel is not taken for it: this holds that."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fakes.anthropic import FakeAnthropic
from fakes.slack import (
    FakeSlack,
    app_mention_event,
    block_actions_payload,
    event_body,
    post_signed,
)
from harness import OWNER_SLACK, slack_steward, until

OFF = {"STEWARD_STREAMING": "off"}
WORDS = "Team: the meeting moved to 3pm, room B."


async def _event(url: str, fake: FakeSlack, event: dict[str, Any]) -> None:
    status, _ = await post_signed(url, fake.signing_secret, json_body=event_body(event))
    assert status == 200


async def test_an_approved_post_to_this_channel_approved_by_a_press_here_reaches_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_tool_use(
        "send_message", {"channel": "slack", "chat": "C0TEAM9", "text": WORDS}
    )
    fake_model.reply_text("Posted it.")
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (_, _, url),
    ):
        mention = app_mention_event(
            "<@UBOT> post the news here", user=OWNER_SLACK, channel="C0TEAM9"
        )
        await _event(url, slack, mention)
        card = (
            await until(
                lambda: [p for p in slack.posted("C0TEAM9") if p.params.get("blocks")], "card"
            )
        )[0]
        approval_id = card.params["blocks"][2]["elements"][0]["value"]
        payload = block_actions_payload(
            "approval_approve",
            approval_id,
            user_id=OWNER_SLACK,
            channel_id="C0TEAM9",
            message_ts=card.result["ts"],
            response_url=slack.response_url(),
        )
        payload["message"]["thread_ts"] = mention["ts"]
        form = {"payload": json.dumps(payload)}
        assert (await post_signed(url, slack.signing_secret, form=form))[0] == 200
        await until(
            lambda: [p for p in slack.posted("C0TEAM9") if "Posted it." in str(p.params)], "end"
        )
        public = [str(p.params.get("text")) for p in slack.posted("C0TEAM9")]
        privately = [str(r.get("text")) for r in slack.responses]
    assert any(WORDS in t for t in public), public
    assert not any(WORDS in t for t in privately), privately
