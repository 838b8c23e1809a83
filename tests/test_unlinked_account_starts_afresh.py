"""An account taken from its person (lost, passed on, linked by mistake) takes nothing of
theirs with it: not the conversation held there, nor what was waiting to be sent there (R130).
The same for a guest revoked while a reply to them waited for the channel."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, RecordingChannel, running_steward

from agent.errors import DeliveryError
from agent.types import Address, IncomingMessage
from memory.people import Identity

PHONE = Identity("telegram", "777")
GUEST = Identity("telegram", "555")
SECRET = "OWNER-safe-code-4711"


@dataclass
class FlakyTelegram(RecordingChannel):
    down: bool = False

    async def send_text(self, address: Address, text: str) -> str | None:
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
