"""R217: a short request in a Latin-script language the embedder does not read ("Đi chợ mua
rau", "Nunua maziwa kwa ajili ya chai") passed as English, and a guest's unrelated group message
in such a language was recalled into the owner's private turn and tainted it. Past messages are
now recalled by meaning only when both the new message and the past one are clearly English (an
English stop word, and no more signs of another language), else only a near restatement.

The real core, recall and embedder against the fake Anthropic server."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import OWNER
from test_memory_agent import steward_with_memory
from test_recall_scripts_r211 import FRIEND, MAY, in_group

from agent.types import Address, ChatKind, IncomingMessage
from memory.clock import FrozenClock

CASES = {  # a guest's unrelated group message; the owner's short private request
    "vi": ("Thứ bảy tôi sẽ mang đèn lồng ra hồ.", "Đi chợ mua rau"),
    "id": ("Hari Sabtu saya akan membawa lentera ke danau.", "Saya mau pesan tiket ke Bali"),
    "pl": ("W sobotę przyniosę lampiony nad jezioro.", "Odebrać dzieci ze szkoły"),
    "sw": ("Jumamosi nitaleta taa kwenye ziwa.", "Nunua maziwa kwa ajili ya chai"),
    "fr": ("Samedi j'apporterai les lanternes au lac.", "Acheter des fleurs pour Marie"),
}


def _reminding(request: RecordedRequest) -> Reply:
    last = request.messages[-1]["content"]
    if isinstance(last, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last
    ):
        return Reply.text("done")
    said = request.last_user_text.rsplit("</context>", 1)[-1]
    return Reply.tool_use("reminder_add", {"when": "tomorrow 9:00", "text": said.strip()[-20:]})


async def test_a_guests_message_stays_out_of_a_short_request_not_in_english(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_reminding)
    async with steward_with_memory(tmp_path, fake_model, clock=FrozenClock(MAY)) as h:
        await h.steward.stores.people.admit(FRIEND, "Priya")
        for lang, (theirs, mine) in CASES.items():
            group = Address("test", f"g-{lang}")
            await h.router.dispatch(
                IncomingMessage(sender=OWNER, address=group, text="hi", chat_kind=ChatKind.GROUP)
            )
            await in_group(h, f"g-{lang}", theirs)
            cards = len(h.channel.approvals)
            reply = await h.say(mine, chat=f"p-{lang}")
            asked = [r.last_user_text for r in fake_model.requests]
            context = next(text for text in asked if mine in text)
            turn = (await h.turns())[-1]
            assert theirs not in context, lang
            assert not turn.label.tainted, (lang, turn.label)
            assert len(h.channel.approvals) == cards and reply == "done", lang


def test_the_owners_own_short_notes_keep_recall_by_meaning() -> None:
    """R219: asking every past message for an English stop word lost the owner's own "Parking
    spot B12" to "Where did I park?": only another person's or outside words must be clearly
    English on both sides."""
    from dataclasses import replace

    from agent.recall import MESSAGE_MIN_SIMILARITY, UNREAD_MIN_SIMILARITY, _message_bar
    from memory.labels import Label
    from memory.longterm import Kind, Memory
    from memory.longterm.types import Source, Trust

    own = Memory(
        id=1, user_id=1, chat_id=1, kind=Kind.MESSAGE, text="Parking spot B12", subject="",
        source=Source.OWNER_SAID, source_ref="", trust=Trust.TRUSTED, importance=0.5,
        turn_id=None, created_at=MAY,
    )  # fmt: skip
    guests = replace(own, text="Beli susu dan roti", label=Label.untrusted("person:#2"))
    english_guest = replace(guests, text="I bring the lanterns to the lake on Saturday")
    assert _message_bar(own, query_clear=False) == MESSAGE_MIN_SIMILARITY
    assert _message_bar(guests, query_clear=True) == UNREAD_MIN_SIMILARITY
    assert _message_bar(english_guest, query_clear=False) == UNREAD_MIN_SIMILARITY
    assert _message_bar(english_guest, query_clear=True) == MESSAGE_MIN_SIMILARITY
