"""R262: a decision made away from its card says no more than that chat may read.

`/approve <id> always` typed in a group or a Slack channel posted the new rule there, every
argument spelt out (a private goal's title); an uncertain result's own words went there too.
A card edited after a decision from another platform named the decider by that platform's id
("decided by telegram:987654321" on a Slack channel's card). The web console named a guest who
called themselves "owner" as it named the owner ("asked by owner")."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.slack import FakeSlack, app_mention_event, event_body, message_event, post_signed
from harness import OWNER_SLACK, RecordingChannel, running_steward, said_last, slack_steward, until
from mailservers import SmtpRecorder, mail_settings
from test_failures_r198_mail import ANN, takes_then_drops  # noqa: F401
from test_web_security import Web, web  # noqa: F401
from trust_world import instruction, trust_world

from agent.memory_upkeep import EXTRACTION_SYSTEM
from agent.types import Address, ApprovalPrompt, ChatKind, IncomingMessage
from memory.people import Identity

ASK = '[[rules]]\ntool = "goal_add"\ndecision = "ask"\n'
TITLE = "see the divorce lawyer about custody"
OFF = {"STEWARD_STREAMING": "off"}


def _model(request: RecordedRequest) -> Reply:
    said = said_last(request)
    if request.system_text.startswith(EXTRACTION_SYSTEM[:40]):
        return Reply.text('{"memories": []}')
    if request.tool_results:
        return Reply.text("done.")
    if "track " in said:
        return Reply.tool_use("goal_add", {"title": said.split("track ", 1)[1]})
    return Reply.text("re: " + said)


def _in_group(message: IncomingMessage) -> IncomingMessage:
    return replace(message, chat_kind=ChatKind.GROUP)


async def test_always_typed_in_a_group_names_the_tool_and_the_id_alone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    (tmp_path / "policy.toml").write_text(ASK)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say(f"track {TITLE}", chat="private1")
        [(_, card)] = h.channel.approvals
        await h.router.dispatch(
            _in_group(h.message(f"/approve {card.approval_id} always", chat="g1"))
        )
        [answer] = h.channel.texts("g1")
        privately = h.channel.texts("private1")
        # the same typed in the private chat: the rule is said there, as before
        await h.say("track buy milk", chat="private1")
        [_, (_, second)] = h.channel.approvals
        here = await h.say(f"/approve {second.approval_id} always", chat="private1")
    assert answer == (
        f"Approved {card.approval_id}: goal_add ran.\n"
        "The rest of the answer went to your private chat with me."
    ), answer
    assert any(TITLE in t and "Added to the policy file" in t for t in privately), privately
    assert "Added to the policy file" in here and "buy milk" in here, here


async def test_always_in_a_group_with_no_private_chat_known_says_the_rule_nowhere(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    (tmp_path / "policy.toml").write_text(ASK)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.router.dispatch(_in_group(h.message(f"track {TITLE}", chat="g1")))
        [(_, card)] = h.channel.approvals
        await h.router.dispatch(
            _in_group(h.message(f"/approve {card.approval_id} always", chat="g2"))
        )
        said = [t for _, t in h.channel.sent]
        rules = (tmp_path / "policy.toml").read_text()
    assert h.channel.texts("g2") == [
        f"Approved {card.approval_id}: goal_add ran.\n"
        "The rest of the answer is for a private chat; I know none of yours."
    ]
    assert not any("policy file" in t for t in said), said
    assert TITLE in rules  # the rule is written all the same


async def test_always_typed_in_a_slack_channel_keeps_the_rule_out_of_its_thread(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    (tmp_path / "policy.toml").write_text(ASK)
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (
            _,
            _,
            url,
        ),
    ):
        dm = message_event(f"track {TITLE}", user=OWNER_SLACK, channel="DOWNER")
        await post_signed(url, slack.signing_secret, json_body=event_body(dm))
        card = (
            await until(
                lambda: [p for p in slack.posted("DOWNER") if p.params.get("blocks")], "card"
            )
        )[0]
        approval_id = card.params["blocks"][2]["elements"][0]["value"]
        mention = app_mention_event(
            f"<@UBOT> /approve {approval_id} always", user=OWNER_SLACK, channel="C9"
        )
        await post_signed(url, slack.signing_secret, json_body=event_body(mention))
        await until(lambda: slack.posted("C9"), "the answer in the channel")
        await until(
            lambda: any("policy file" in str(p.params) for p in slack.posted("DOWNER")), "the rule"
        )
        channel = [json.dumps(p.params, ensure_ascii=False) for p in slack.posted("C9")]
    assert not any("divorce" in t or "policy file" in t for t in channel), channel
    assert any(approval_id in t and "private chat" in t for t in channel), channel


async def test_an_uncertain_results_words_stay_out_of_the_group(
    tmp_path: Path,
    takes_then_drops: SmtpRecorder,  # noqa: F811
) -> None:
    async with trust_world(tmp_path, **mail_settings(None, takes_then_drops)) as w:
        await w.h.say(instruction("mail_send", ANN))
        [card] = [p for _, p in w.h.channel.approvals if p.tool == "mail_send"]
        message = w.h.message(f"/approve {card.approval_id}", chat="g1")
        await w.h.router.dispatch(_in_group(message))
        [answer] = w.h.channel.texts("g1")
        privately = w.h.channel.texts("c1")
    assert answer.startswith(f"Approved {card.approval_id}: mail_send may have run: its answer")
    assert "Message-ID" not in answer and "Sent folder" not in answer, answer
    assert any("It said:" in t and "Message-ID" in t for t in privately), privately


@dataclass
class CardChannel(RecordingChannel):
    """A platform whose cards have ids, so a decision edits them."""

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        self.approvals.append((address, prompt))
        return f"m{len(self.approvals)}"


async def test_a_card_names_the_decider_only_as_its_own_chat_knows_them(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    (tmp_path / "policy.toml").write_text(ASK)
    owner_sl, owner_tg = Identity("slack", "UOWNER1"), Identity("telegram", "987654321")
    bob_sl, bob_tg = Identity("slack", "UBOB"), Identity("telegram", "555")
    team = Address("slack", "C0TEAM", "1.0")
    async with running_steward(
        tmp_path,
        fake_model.base_url,
        STEWARD_OWNER=f"{owner_sl},{owner_tg}",
        STEWARD_APPROVERS=str(bob_tg),
    ) as h:
        slack, tg = CardChannel(name="slack"), CardChannel(name="telegram")
        h.steward.switchboard.register("slack", slack)
        h.steward.switchboard.register("telegram", tg)
        for bob in (bob_sl, bob_tg):
            await h.steward.stores.people.admit(bob, "Bob")
        # Bob's two accounts are one person: the approver asks on Slack, decides on Telegram
        await h.router.dispatch(IncomingMessage(bob_sl, Address("slack", "DBOB"), "/link"))
        code = re.search(r"link code: (\S+)", slack.texts("DBOB")[-1])
        assert code is not None, slack.texts()
        await h.router.dispatch(
            IncomingMessage(bob_tg, Address("telegram", "555"), f"/link {code[1]}")
        )
        assert tg.texts("555")[-1].startswith("Linked."), tg.texts()
        for who, words in ((owner_sl, "track team offsite"), (bob_sl, "track team lunch")):
            await h.router.dispatch(IncomingMessage(who, team, words, chat_kind=ChatKind.GROUP))
        [(_, first), (_, second)] = slack.approvals
        typed = (
            (owner_tg, "987654321", f"/approve {first.approval_id}"),
            (bob_tg, "555", f"/deny {second.approval_id}"),
        )
        for who, chat, words in typed:
            await h.router.dispatch(IncomingMessage(who, Address("telegram", chat), words))
        marked = [text for _, _, text in slack.marked]
    assert marked == [
        f"Approved {first.approval_id}: goal_add ran. (decided by the owner)",
        f"Denied {second.approval_id}: goal_add. (decided by an approver)",
    ], marked


async def test_the_console_names_a_guest_called_owner_by_number(web: Web) -> None:  # noqa: F811
    h = web.h
    mallory = Identity("test", "mallory")
    knock = IncomingMessage(mallory, Address("test", "mallory"), "hi", sender_name="owner")
    await h.router.dispatch(knock)  # a stranger whose platform name is "owner"
    await h.steward.stores.people.admit(mallory, None)
    mine = instruction("shell", {"command": "echo mine"})
    await h.say(mine)
    theirs = instruction("goal_add", {"title": "buy flowers"})
    await h.router.dispatch(
        IncomingMessage(mallory, Address("test", "mallory"), theirs, sender_name="owner")
    )
    user = await h.steward.stores.people.resolve(mallory)
    assert user is not None
    cookie = await web.login()
    _, html = await web.request("GET", "/approvals", cookie=cookie)
    asked_by = sorted(m.strip() for m in re.findall(r"asked by ([^<·]*)", html))
    assert asked_by == [f"person #{user.id} (“owner”)", "you"], asked_by
    assert f"asked in the conversation of person #{user.id} (“owner”), not yours" in html
    assert "owner&#39;s conversation" not in html
