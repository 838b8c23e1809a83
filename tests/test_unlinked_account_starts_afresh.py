"""An account taken from its person (lost, passed on, linked by mistake) takes nothing of
theirs with it: not the conversation held there, nor what was waiting to be sent there (R130).
The same for a guest revoked while a reply to them waited for the channel."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, RecordingChannel, running_steward

from agent.errors import DeliveryError
from agent.types import Address, ChatKind, IncomingMessage
from memory.people import Identity

PHONE = Identity("telegram", "777")
GUEST = Identity("telegram", "555")
SECRET = "OWNER-safe-code-4711"


@dataclass
class FlakyTelegram(RecordingChannel):
    """Down, or (with a `gate`) holding each send until the gate opens, then failing it if
    `fail_after_gate`."""

    down: bool = False
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    fail_after_gate: bool = False

    async def send_text(self, address: Address, text: str) -> str | None:
        if self.gate is not None:
            self.entered.set()
            await self.gate.wait()
            if self.fail_after_gate:
                raise DeliveryError("telegram 502 (timed out)")
        if self.down:
            raise DeliveryError("telegram 502")
        return await super().send_text(address, text)


def on_phone(sender: Identity, text: str) -> IncomingMessage:
    return IncomingMessage(
        sender=sender, address=Address("telegram", sender.platform_user_id), text=text
    )


async def _link_phone(h: Harness) -> FlakyTelegram:
    telegram = FlakyTelegram(name="telegram")
    h.steward.switchboard.register("telegram", telegram)
    await h.steward.stores.people.admit(PHONE, "")
    code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", await h.say("/link"))
    assert code is not None
    await h.router.dispatch(on_phone(PHONE, f"/link {code[0]}"))
    assert (await h.steward.stores.people.resolve(PHONE)).is_owner  # type: ignore[union-attr]
    return telegram


def seen_by_model(requests: list[RecordedRequest]) -> str:
    return " ".join(str(r.messages) + r.system_text for r in requests)


async def test_the_next_holder_of_an_unlinked_account_sees_none_of_the_owners_words(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda r: Reply.text("noted"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _link_phone(h)
        await h.router.dispatch(on_phone(PHONE, f"my bank PIN is {SECRET}"))
        assert SECRET in seen_by_model(fake_model.requests[-1:])
        assert "no longer one of the owner's accounts" in await h.say(f"/revoke {PHONE}")
        assert "may talk to me now" in await h.say(f"/allow {PHONE}")
        before = len(fake_model.requests)
        await h.router.dispatch(on_phone(PHONE, "hi, what did I tell you earlier?"))
        new = fake_model.requests[before:]
        assert new and SECRET not in seen_by_model(new)
        assert "what did I tell you earlier" in seen_by_model(new)  # their own words are there


async def test_what_waited_for_an_unlinked_account_is_not_sent_when_the_channel_is_back(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda r: Reply.text(f"Your safe code is {SECRET}"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        telegram = await _link_phone(h)
        telegram.down = True
        await h.router.dispatch(on_phone(PHONE, "what is my safe code?"))
        waiting = await h.steward.stores.messages.undelivered()
        assert any(SECRET in m.text for m in waiting)
        assert "no longer one of the owner's accounts" in await h.say(f"/revoke {PHONE}")
        telegram.down = False
        await h.steward.courier.redeliver()
        assert not any(SECRET in text for _, text in telegram.sent)
        [event] = await h.steward.stores.audit.recent(10, kind="identity.unlinked")
        assert event.detail["undelivered"] >= 1


async def test_a_revoked_guest_is_not_sent_what_waited_for_them(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda r: Reply.text("GUEST-REPLY"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        telegram = FlakyTelegram(name="telegram", down=True)
        h.steward.switchboard.register("telegram", telegram)
        await h.steward.stores.people.admit(GUEST, "Gina")
        await h.router.dispatch(on_phone(GUEST, "hello"))
        assert any("GUEST-REPLY" in m.text for m in await h.steward.stores.messages.undelivered())
        assert "can no longer talk to me" in await h.say(f"/revoke {GUEST}")
        telegram.down = False
        await h.steward.courier.redeliver()
        assert not any("GUEST-REPLY" in text for _, text in telegram.sent)


async def test_a_send_under_way_at_the_revoke_is_not_tried_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R132: it failed after the revoke, went back to `failed`, and the retry delivered it."""
    fake_model.on_request(lambda r: Reply.text(f"Your safe code is {SECRET}"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        telegram = await _link_phone(h)
        telegram.gate, telegram.fail_after_gate = asyncio.Event(), True
        turn = asyncio.create_task(h.router.dispatch(on_phone(PHONE, "what is my safe code?")))
        await asyncio.wait_for(telegram.entered.wait(), 10)  # the reply's send is under way
        await h.say(f"/revoke {PHONE}")
        telegram.gate.set()  # and fails now
        await turn
        telegram.gate = None
        await h.steward.courier.redeliver()
        assert not any(SECRET in text for _, text in telegram.sent)


async def test_a_redelivery_pass_skips_what_was_given_up_during_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    count = iter(range(100))
    fake_model.on_request(lambda r: Reply.text(f"reply {next(count)}: {SECRET}"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        telegram = await _link_phone(h)
        telegram.down = True
        await h.router.dispatch(on_phone(PHONE, "first question"))
        await h.router.dispatch(on_phone(PHONE, "second question"))
        telegram.down, telegram.gate = False, asyncio.Event()  # back, but slow
        passing = asyncio.create_task(h.steward.courier.redeliver())
        await asyncio.wait_for(telegram.entered.wait(), 10)
        await h.say(f"/revoke {PHONE}")
        telegram.gate.set()
        await passing
        # the one under way when the revoke came may go; the other must not
        assert len([t for _, t in telegram.sent if SECRET in t]) <= 1


async def test_a_turn_under_way_at_the_unlink_does_not_answer_the_account(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    hold, asked = asyncio.Event(), asyncio.Event()

    async def respond(request: RecordedRequest) -> Reply:
        if "what is my safe code" in request.last_user_text:
            asked.set()
            await hold.wait()
            return Reply.text(f"Your safe code is {SECRET}")
        return Reply.text("hello")

    fake_model.on_request(respond)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        telegram = await _link_phone(h)
        turn = asyncio.create_task(h.router.dispatch(on_phone(PHONE, "what is my safe code?")))
        await asyncio.wait_for(asked.wait(), 10)
        await h.say(f"/revoke {PHONE}")
        hold.set()
        await turn
        assert not any(SECRET in text for _, text in telegram.sent)
        await h.say(f"/allow {PHONE}")
        before = len(fake_model.requests)
        await h.router.dispatch(on_phone(PHONE, "hi, I just got this phone"))
        assert SECRET not in seen_by_model(fake_model.requests[before:])
        [withheld] = await h.steward.stores.audit.recent(10, kind="turn.reply_withheld")
        assert withheld.subject.startswith("chat:")


def slack_dm(sender: Identity, dm_id: str, text: str) -> IncomingMessage:
    return IncomingMessage(sender=sender, address=Address("slack", dm_id), text=text)


WORK, SPARE = Identity("slack", "U0WORK"), Identity("slack", "U0SPARE")


async def _link_slack(h: Harness, who: Identity, dm_id: str) -> None:
    await h.steward.stores.people.admit(who, "")
    code = re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", await h.say("/link"))
    assert code is not None
    await h.router.dispatch(slack_dm(who, dm_id, f"/link {code[0]}"))
    assert (await h.steward.stores.people.resolve(who)).is_owner  # type: ignore[union-attr]


async def test_the_next_holder_of_a_slack_account_beside_another_sees_none_of_its_dm(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Which DM was the account's cannot be told, so its messages stay the owner's; a private
    chat's conversation is still only its present person's (R132)."""
    fake_model.on_request(lambda r: Reply.text("noted"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        h.steward.switchboard.register("slack", FlakyTelegram(name="slack"))
        await _link_slack(h, WORK, "D0WORK")
        await _link_slack(h, SPARE, "D0SPARE")
        await h.router.dispatch(slack_dm(SPARE, "D0SPARE", f"my bank PIN is {SECRET}"))
        await h.say(f"/revoke {SPARE}")
        await h.say(f"/allow {SPARE}")
        before = len(fake_model.requests)
        await h.router.dispatch(slack_dm(SPARE, "D0SPARE", "hi, what did they tell you?"))
        seen = seen_by_model(fake_model.requests[before:])
        assert SECRET not in seen and "what did they tell you" in seen
        # the owner's own conversation there is still theirs
        before = len(fake_model.requests)
        await h.router.dispatch(slack_dm(WORK, "D0WORK", "and what did I say?"))
        assert "and what did I say" in seen_by_model(fake_model.requests[before:])


async def test_unlinking_a_slack_account_keeps_the_replies_waiting_for_the_owners_other(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda r: Reply.text("REPLY-FOR-WORK"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        slack = FlakyTelegram(name="slack")
        h.steward.switchboard.register("slack", slack)
        await _link_slack(h, WORK, "D0WORK")
        await _link_slack(h, SPARE, "D0SPARE")
        await h.router.dispatch(slack_dm(SPARE, "D0SPARE", "hello from spare"))
        slack.down = True
        await h.router.dispatch(slack_dm(WORK, "D0WORK", "question from my work account"))
        await h.say(f"/revoke {SPARE}")
        slack.down = False
        await h.steward.courier.redeliver()
        assert [t for a, t in slack.sent if a.chat_id == "D0WORK" and "REPLY-FOR-WORK" in t]


async def test_a_guest_revoked_mid_turn_in_a_group_gets_no_reply(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The reply was held back only in a private chat, and a guest with no private chat did not
    count as a change at all (R136)."""
    hold, asked = asyncio.Event(), asyncio.Event()

    async def respond(request: RecordedRequest) -> Reply:
        if "secret plan" in request.last_user_text:
            asked.set()
            await hold.wait()
            return Reply.text("GUEST-ANSWER")
        return Reply.text("ok")

    fake_model.on_request(respond)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        telegram = FlakyTelegram(name="telegram")
        h.steward.switchboard.register("telegram", telegram)
        await h.steward.stores.people.admit(GUEST, "Guest")
        said = IncomingMessage(
            sender=GUEST,
            address=Address("telegram", "-1001"),
            text="tell me the secret plan",
            platform_message_id="-1001:1",
            chat_kind=ChatKind.GROUP,
        )
        turn = asyncio.create_task(h.router.dispatch(said))
        await asyncio.wait_for(asked.wait(), 10)
        assert "can no longer talk to me" in await h.say(f"/revoke {GUEST}")
        hold.set()
        await turn
        assert not [t for _, t in telegram.sent if "GUEST-ANSWER" in t]
