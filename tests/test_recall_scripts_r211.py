"""R211: the embedder reads English, not Russian or Chinese. Any two sentences in those scripts came
out close in meaning, so a guest's group message was recalled into the owner's every private turn,
tainted it and put a plain reminder behind an approval card; and a whole Chinese sentence counted
as two words, ranked like "ok"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import OWNER, Harness
from test_memory_agent import steward_with_memory

from agent.text_scripts import mostly_unlatin
from agent.types import Address, ChatKind, IncomingMessage
from memory.clock import FrozenClock
from memory.longterm import Kind, Memory
from memory.longterm.ranking import Weights, prior
from memory.longterm.terms import content_words
from memory.longterm.types import Source, Trust
from memory.people import Identity

FRIEND = Identity("test", "priya")
MAY = datetime(2026, 5, 14, 16, 2, tzinfo=UTC)
RECALLED = "Earlier messages that may bear on this"
CASES = {  # Priya's group message; the owner's unrelated private request (cosine 0.60, 0.77)
    "ru": (
        "В субботу я принесу фонарики на озеро.",
        "Напомни мне, пожалуйста, завтра в 9 купить молоко.",
    ),
    "zh": ("星期六我会把灯笼带到湖边。", "请提醒我明天九点去买牛奶。"),
    # R214: Latin letters, as unreadable to the embedder (cosine 0.52-0.62)
    "vi": ("Thứ bảy tôi sẽ mang đèn lồng ra hồ.", "Nhắc tôi ngày mai lúc 9 giờ đi mua sữa nhé."),
    "pl": (
        "W sobotę przyniosę lampiony nad jezioro.",
        "Przypomnij mi proszę jutro o 9, żebym kupił mleko.",
    ),
    "id": (
        "Hari Sabtu saya akan membawa lentera ke danau.",
        "Tolong ingatkan saya besok jam 9 untuk membeli susu.",
    ),
}
REMIND = ("Напомни", "提醒", "Nhắc", "Przypomnij", "ingatkan")


def reminding_model(request: RecordedRequest) -> Reply:
    """Sets the reminder the owner asks for, then says done."""
    last = request.messages[-1]["content"]
    if isinstance(last, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in last
    ):
        return Reply.text("done")
    said = request.last_user_text.rsplit("</context>", 1)[-1]
    for word in REMIND:
        if word in said:
            return Reply.tool_use("reminder_add", {"when": "tomorrow 9:00", "text": said[-12:]})
    return Reply.text("ok")


async def in_group(h: Harness, chat: str, text: str) -> None:
    await h.router.dispatch(
        IncomingMessage(
            sender=FRIEND, address=Address("test", chat), text=text, chat_kind=ChatKind.GROUP
        )
    )
    assert h.steward.memory is not None
    await h.steward.memory.upkeep_settled()
    await h.steward.memory.store.flush_vectors()


async def test_a_guests_unrelated_message_is_not_recalled_into_a_turn_not_in_english(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(reminding_model)
    async with steward_with_memory(tmp_path, fake_model, clock=FrozenClock(MAY)) as h:
        await h.steward.stores.people.admit(FRIEND, "Priya")
        for lang, (theirs, mine) in CASES.items():
            await h.router.dispatch(
                IncomingMessage(
                    sender=OWNER,
                    address=Address("test", f"g-{lang}"),
                    text="hi",
                    chat_kind=ChatKind.GROUP,
                )
            )
            await in_group(h, f"g-{lang}", theirs)
            cards = len(h.channel.approvals)
            reply = await h.say(mine, chat=f"p-{lang}")
            context = next(
                r.last_user_text for r in fake_model.requests if mine in r.last_user_text
            )
            assert RECALLED not in context and theirs not in context, lang
            turn = (await h.turns())[-1]
            assert not turn.label.tainted, (lang, turn.label)
            assert len(h.channel.approvals) == cards and reply == "done", lang
        # A near restatement is still close in meaning, and still taints the turn it joins.
        await h.say("Кто в субботу принесёт фонарики на озеро?", chat="p-ask")
        context = fake_model.requests[-1].last_user_text
        assert RECALLED in context and CASES["ru"][0] in context
        assert (await h.turns())[-1].label.tainted


def test_a_chinese_sentence_counts_about_as_many_words_as_in_english() -> None:
    english = "I am moving to Shanghai next month, the new office is in Pudong."
    chinese = "我下个月要搬到上海，新公司在浦东。"
    japanese = "来月大阪に引っ越します、新しい会社は梅田です。"
    assert abs(content_words(chinese) - content_words(english)) <= 2
    assert content_words(japanese) >= content_words(english) - 2
    weights = Weights()

    def weight(text: str) -> float:
        message = Memory(
            id=1,
            user_id=1,
            chat_id=1,
            kind=Kind.MESSAGE,
            text=text,
            subject="",
            source=Source.OWNER_SAID,
            source_ref="",
            trust=Trust.TRUSTED,
            importance=0.5,
            turn_id=None,
            created_at=MAY,
        )
        return prior(message, MAY, weights)

    assert weight(chinese) == weight(english) == weight(japanese)
    assert weight("Take care!") < weight(chinese) / 2
    assert content_words("好") == 0  # one character says as little as one letter


def test_which_texts_are_mostly_outside_latin() -> None:
    assert mostly_unlatin("В субботу я принесу фонарики.")
    assert mostly_unlatin("星期六我会把灯笼带到湖边。")
    assert mostly_unlatin("سأحضر الفوانيس")
    assert not mostly_unlatin("Ich bringe am Samstag die Laternen zum See mit.")
    assert not mostly_unlatin("Meeting in 東京 about the budget review")
    assert not mostly_unlatin("9:00 !")


def test_what_reads_as_english() -> None:
    from agent.recall import reads_as_english

    assert reads_as_english("Remind me tomorrow at 9 to buy milk, please.")
    assert reads_as_english("Book Dr Lee Tuesday 9am")  # a few plain words
    assert reads_as_english("What did I say about the harbour last week?")
    # R216: lists, notes, names and signs are English still; short Indonesian is not
    for english in (
        "Buy milk, eggs, bread, butter, cheese and coffee",
        "Shopping list — milk, eggs, bread, butter 🛒",
        "Packing: passport, charger, adapter, sunscreen, 2× swimsuit",
        "https://example.com/docs/setup — bookmark",
        "Call José and Zoë tomorrow",
        "Café with Renée at noon",
    ):
        assert reads_as_english(english), english
    assert not reads_as_english("Ingatkan saya besok beli susu")
    assert not reads_as_english("Tolong ingatkan saya besok pagi")
    assert not reads_as_english("Przypomnij mi jutro kupic mleko")  # Polish, no diacritics
    assert not reads_as_english("Tolong ingatkan saya besok jam 9 untuk membeli susu.")
    assert not reads_as_english("Nhắc tôi ngày mai lúc 9 giờ đi mua sữa nhé.")
    assert not reads_as_english("请提醒我明天九点去买牛奶。")
