"""R211: an owner who types with a Japanese or Chinese keyboard writes full-width digits
("/remind <U+FF19>:<U+FF10><U+FF10> 電話"): refused, while "9:00 電話" was read; the time
is read from their ASCII now, and the reminder keeps the words as written. Times in other
languages ("明日9時", "morgen um 9", "in 2 Stunden") are refused with a line saying times
are read in English words or digits. R212: "next Tuesday", "the coming Friday", "next June"
in a question were searched as last Tuesday or last June, and "this Friday" on a Thursday as
tomorrow: a period to come is no date filter (memories are dated when they were said)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import running_steward

from agent.query_time import find_period
from agent.scheduler.when import WhenError, parse_day, parse_moment, parse_reminder
from memory.clock import FrozenClock

NOW = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)  # Thursday 5 March, 12:00 in Tokyo
TOKYO = ZoneInfo("Asia/Tokyo")
ENGLISH = "I read times in English words or digits, e.g. “tomorrow 9:00”"


@pytest.mark.parametrize(
    ("words", "at", "text"),
    [
        ("９:００ 電話", "2026-03-06 00:00", "電話"),  # tomorrow: 09:00 has gone today
        ("９：３０ ９時の薬", "2026-03-06 00:30", "９時の薬"),
        ("tomorrow １８:００ ＡＢＣ", "2026-03-06 09:00", "ＡＢＣ"),
        ("９:００ ＰＭ report", "2026-03-06 00:00", "ＰＭ report"),  # R214: letters are words
        ("２０２６-１２-２４ １８:００ 夕食", "2026-12-24 09:00", "夕食"),
        ("in ２ｈ お茶", "2026-03-05 05:00", "お茶"),
        ("9:00 ＋49 30 1234 anrufen", "2026-03-06 00:00", "＋49 30 1234 anrufen"),
    ],
)
def test_full_width_digits_are_read_and_the_text_kept_as_written(
    words: str, at: str, text: str
) -> None:
    parsed = parse_reminder(words, NOW, TOKYO)
    assert f"{parsed.first.astimezone(UTC):%Y-%m-%d %H:%M}" == at
    assert parsed.text == text


def test_full_width_digits_in_a_moment_and_a_day() -> None:
    assert parse_moment("tomorrow ９:００", NOW, TOKYO) == datetime(2026, 3, 6, 0, 0, tzinfo=UTC)
    assert f"{parse_day('２０２６-１２-２４', NOW, TOKYO)}" == "2026-12-24"


def test_other_full_forms_are_no_numbers_still() -> None:
    """Only the full-width forms: "²" and "①" are no times (R186)."""
    for words in ("² tea", "① tea"):
        with pytest.raises(WhenError, match="couldn't find a time"):
            parse_reminder(words, NOW, TOKYO)


async def test_remind_with_full_width_digits(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Asia/Tokyo")
        said = await h.say("/remind ９:００ 電話")
        assert said.startswith("OK, #1: Fri 2026-03-06 09:00 (in 21 h) — 電話."), said


@pytest.mark.parametrize(
    "words",
    ["明日9時 歯医者に電話", "morgen um 9 Zahnarzt", "завтра в 9:00 позвонить маме", "tea"],
)
def test_a_time_not_found_says_times_are_read_in_english(words: str) -> None:
    with pytest.raises(WhenError) as refused:
        parse_reminder(words, NOW, TOKYO)
    assert str(refused.value).startswith("I couldn't find a time at the start of"), refused
    assert ENGLISH in str(refused.value)


def test_a_unit_in_another_language_is_asked_about_in_english() -> None:
    for words in ("in 2 Stunden Wäsche", "in 2 часа бельё"):
        with pytest.raises(WhenError) as refused:
            parse_reminder(words, NOW, TOKYO)
        assert str(refused.value).startswith("In 2 what? For example “in 2 "), refused
        assert ENGLISH in str(refused.value)
    with pytest.raises(WhenError) as refused:  # an English word: asked as before
        parse_reminder("in 5 call", NOW, TOKYO)
    assert str(refused.value) == "In 5 what? For example “in 5 minutes call”."


async def test_remind_in_local_words_says_english(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        for words in ("明日9時 歯医者に電話", "in 2 Stunden Wäsche"):
            said = await h.say(f"/remind {words}")
            assert ENGLISH in said, said
            assert "tomorrow 9:00 call mom" in said  # the examples, as before


@pytest.mark.parametrize(
    "query",
    [
        "what do I have next Tuesday",
        "next June plans",
        "the coming Friday",
        "this coming Friday",
        "upcoming Friday dinner",
        "Tuesday after next",
        "this Friday",  # on a Thursday: tomorrow, not a day past
        "in 2030",
    ],
)
def test_a_period_to_come_is_no_date_filter(query: str) -> None:
    assert find_period(query, now=NOW, timezone="Asia/Tokyo") is None


def test_the_past_is_read_as_before_and_after_a_period_to_come() -> None:
    found = find_period("next Tuesday, as I said last week", now=NOW, timezone="Asia/Tokyo")
    assert found is not None and found.phrase == "last week"
    assert found.describe("Asia/Tokyo") == "2026-02-23 to 2026-03-01"
    assert "next Tuesday" in found.rest
    for query, day in (
        ("on Tuesday", "2026-03-03"),
        ("last Friday", "2026-02-27"),
        ("this Thursday", "2026-03-05"),
    ):
        found = find_period(query, now=NOW, timezone="Asia/Tokyo")
        assert found is not None and found.describe("Asia/Tokyo") == day, query
    found = find_period("what is coming in May", now=NOW, timezone="Asia/Tokyo")
    assert found is not None and found.describe("Asia/Tokyo") == "2025-05-01 to 2025-05-31"
