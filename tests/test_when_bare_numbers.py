"""Numbers that are not dates (R186): /remind and /goal due read malformed times as dates
months or decades away without a word. "in 5 call mom" was 7 May, "in 10 tea" 7 October,
"-1" January, "13 13" 13 December 2113, "1 2 3" 2 January with the text "3", and "#1", "²",
"1.5", "2 3" dates too. A number after "in" with no unit is asked about; bare numbers with no
month and no / . - between them, signed numbers, digits that are not 0-9 and decimals without
a unit are not dates; a date more than 100 years ahead is refused, naming the horizon. Every
form read before is read as before. R187: a zone's offset after a clock ("9:00 -0500") is read
again, not left in the text; punctuation ("in 5.", "13 13.") and a clock ("13 13 at 9:00") are
no way past the refusals; "in .5 hours" is half an hour; "in 2 weeks'" is a unit, and "in 2 yrs"
is asked about as "in 2 years". R191: an offset after "9.30", "noon" or "midnight", or with a ":"
or "." after it, is read again ("noon -0500 call mom" was refused), and a lone sign after a
clock ("9:00 +2 call mom", set at 9:00 with "+2" in the text) is asked about as a zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import Harness, running_steward

from agent.scheduler.when import WhenError, parse_cadence, parse_day, parse_moment, parse_reminder
from memory.clock import FrozenClock

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")


async def _reminders(h: Harness) -> int:
    assert h.steward.scheduler is not None
    return len(await h.steward.scheduler.store.for_user(1, ("reminder",)))


async def _due_at(h: Harness) -> str | None:
    goal = await h.steward.stores.goals.get(1, 1)
    assert goal is not None
    return goal.due_at


async def test_a_number_after_in_without_a_unit_is_asked_about(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/goal add Renew the passport")
        for words, asked in (
            ("in 5 call mom", "In 5 what? For example “in 5 minutes call mom”."),
            ("in 10 tea", "In 10 what? For example “in 10 minutes tea”."),
            ("me in 5 to call mom", "In 5 what? For example “in 5 minutes to call mom”."),
            ("in 2027 renew passport", "Which day in 2027? For example “1 march 2027 renew"),
        ):
            said = await h.say(f"/remind {words}")
            assert said.startswith(asked), said
        said = await h.say("/goal due 1 in 5")
        assert said.startswith("In 5 what? For example “in 5 days”."), said
        assert await _reminders(h) == 0 and await _due_at(h) is None
        # with the unit, as before
        said = await h.say("/remind in 5 minutes call mom")
        assert said.startswith("OK, #1: Mon 2026-12-07 11:05 (in 5 min"), said
        assert await h.say("/goal due 1 in 5 days") == "#1 is due Sat 2026-12-12."


@pytest.mark.parametrize(
    "words", ["-1 call mom", "13 13 take pills", "1 2 3", "2 3 tea", "#1 tea", "² tea", "1.5 tea"]
)
async def test_bare_signed_and_decimal_numbers_are_no_reminder_time(
    tmp_path: Path, words: str
) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        said = await h.say(f"/remind {words}")
        assert said.startswith(f"I couldn't find a time at the start of “{words}”."), said
        assert await _reminders(h) == 0


@pytest.mark.parametrize("when", ["-1", "1 -1", "#1", "²", "1.5", "2 3", "13 13"])
async def test_bare_signed_and_decimal_numbers_are_no_due_date(tmp_path: Path, when: str) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/goal add Renew the passport")
        said = await h.say(f"/goal due 1 {when}")
        assert said.startswith(f"I couldn't read “{when}” as a date."), said
        assert await _due_at(h) is None


async def test_a_date_past_the_horizon_is_refused_naming_it(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/goal add Renew the passport")
        horizon = "is more than 100 years ahead: I set dates up to the end of 2126."
        said = await h.say("/remind 2213-12-13 take pills")
        assert said.startswith(f"“2213-12-13” {horizon}"), said
        said = await h.say("/goal due 1 dec 2213")
        assert said.startswith(f"“dec 2213” {horizon}"), said
        assert await _reminders(h) == 0 and await _due_at(h) is None
        said = await h.say("/remind 2036-12-31 renew passport")
        assert said.startswith("OK, #1: Wed 2036-12-31 09:00"), said
        assert await h.say("/goal due 1 in 10 years") == "#1 is due Sun 2036-12-07."


async def test_a_digit_that_is_not_0_to_9_in_every_is_refused_not_a_crash(tmp_path: Path) -> None:
    """ "every ² days" met int("²") (ValueError): the command failed as an internal error."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        said = await h.say("/remind every ² days 9:00 tea")
        assert said.startswith("“every ²”: say day, weekday, weekend"), said
        await h.say("/goal add Tea")
        said = await h.say("/goal every 1 every ² weeks")
        assert "“every ²”: say day" in said, said
        assert await _reminders(h) == 0


def test_numbers_that_are_not_dates_are_refused_by_each_parser() -> None:
    for words in ("-1 x", "+1 x", "13 13 x", "12 30 x", "24 12 2026 x", "1.5 x", "3.4 x", "² x"):
        with pytest.raises(WhenError, match="couldn't find a time"):
            parse_reminder(words, NOW, BERLIN)
    with pytest.raises(WhenError, match="couldn't find a time"):
        parse_reminder("in ٥ minutes x", NOW, BERLIN)  # dateparser read it as 5 minutes
    for words in ("-1", "1.5", "²", "5 2027", "24 12 2026"):
        with pytest.raises(WhenError, match="as a date"):
            parse_day(words, NOW, BERLIN)
    for words in ("-1", "#1", "13 13"):
        with pytest.raises(WhenError, match="as a time"):
            parse_moment(words, NOW, BERLIN)
    with pytest.raises(WhenError, match="In 5 what"):
        parse_moment("in 5", NOW, BERLIN)
    with pytest.raises(WhenError) as refused:
        parse_reminder("in 5 call", NOW, BERLIN)
    assert str(refused.value) == "In 5 what? For example “in 5 minutes call”."
    with pytest.raises(WhenError, match="say day, weekday"):
        parse_cadence("every ² days", NOW, BERLIN)


@pytest.mark.parametrize(
    ("words", "at", "text"),
    [
        ("24.12. dinner", "2026-12-24 09:00", "dinner"),
        ("24/12 dinner", "2026-12-24 09:00", "dinner"),
        ("24-12 dinner", "2026-12-24 09:00", "dinner"),
        ("1.5. dinner", "2027-05-01 09:00", "dinner"),
        ("24.12.2026 dinner", "2026-12-24 09:00", "dinner"),
        ("12 march dinner", "2027-03-12 09:00", "dinner"),
        ("march 12 dinner", "2027-03-12 09:00", "dinner"),
        ("24 dec 2027 dinner", "2027-12-24 09:00", "dinner"),
        ("in 5 march dinner", "2027-03-05 09:00", "dinner"),
        ("in 1.5 hours bread", "2026-12-07 12:30", "bread"),
        ("in 5 m tea", "2026-12-07 11:05", "tea"),
        ("tomorrow 9 tea", "2026-12-08 09:00", "tea"),
        ("at 9 2 pills", "2026-12-08 09:00", "2 pills"),
        ("friday 5pm 3 beers", "2026-12-11 17:00", "3 beers"),
        ("tomorrow 9:00 +01:00 tea", "2026-12-08 09:00", "tea"),
        ("2026-12-24T18:00:00+01:00 tea", "2026-12-24 18:00", "tea"),
        ("in 10 years passport", "2036-12-07 11:00", "passport"),
    ],
)
def test_dates_read_before_are_read_as_before(words: str, at: str, text: str) -> None:
    parsed = parse_reminder(words, NOW, BERLIN)
    assert (f"{parsed.first.astimezone(BERLIN):%Y-%m-%d %H:%M}", parsed.text) == (at, text)


def test_days_read_before_are_read_as_before() -> None:
    for words, day in (
        ("24.12", date(2026, 12, 24)),
        ("12/24", date(2026, 12, 24)),
        ("1.5.2027", date(2027, 5, 1)),
        ("in 3 days", date(2026, 12, 10)),
        ("march 2027", date(2027, 3, 31)),
        ("2036-12-31", date(2036, 12, 31)),
    ):
        assert parse_day(words, NOW, BERLIN) == day, words


# -- R187: offsets, punctuation, clocks beside bare numbers, apostrophes -------------------------


async def test_a_zone_offset_after_a_clock_is_read_not_dropped(tmp_path: Path) -> None:
    """ "-0500" after a clock was taken for a signed number: the reminder was set at 9:00 Berlin
    time with the text "-0500 standup" (R187)."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        said = await h.say("/remind tomorrow 9:00 -0500 standup")
        assert said.startswith("OK, #1: Tue 2026-12-08 15:00 (in 1 d 4 h) — standup."), said
        said = await h.say("/remind 2026-12-24 18:00 -0800 call")
        assert said.startswith("OK, #2: Fri 2026-12-25 03:00 (in 17 d 16 h) — call."), said


def test_each_way_of_writing_an_offset_after_a_clock_is_read() -> None:
    for words, at in (
        ("tomorrow 9:00 -0500 standup", "2026-12-08 15:00"),
        ("tomorrow 9:00 -05:00 standup", "2026-12-08 15:00"),
        ("tomorrow 9am -0500 standup", "2026-12-08 15:00"),
        ("tomorrow 9:00 +05 standup", "2026-12-08 05:00"),
        ("tomorrow 9:00 UTC+5 standup", "2026-12-08 05:00"),
        ("tomorrow 9:00 GMT-3 standup", "2026-12-08 13:00"),
        ("at 9 -0500, standup", "2026-12-07 15:00"),
    ):
        parsed = parse_reminder(words, NOW, BERLIN)
        assert (f"{parsed.first.astimezone(BERLIN):%Y-%m-%d %H:%M}", parsed.text) == (
            at,
            "standup",
        ), words
    assert parse_moment("tomorrow 9:00 -0500", NOW, BERLIN) == datetime(2026, 12, 8, 14, tzinfo=UTC)


def test_a_number_the_time_could_not_take_is_refused_not_left_to_the_text() -> None:
    """Where the longest time was refused for a number in it, a shorter one without the number
    was taken quietly (R187); a signed number after a clock and before a word is the text's."""
    for words, cut in (("tomorrow -1 test", "tomorrow -1"), ("in 2 hours -0500 x", "in 2 hours")):
        with pytest.raises(WhenError, match=f"I couldn't read “{cut}"):
            parse_reminder(words, NOW, BERLIN)
    parsed = parse_reminder("at 7 -10 degrees jacket", NOW, BERLIN)
    assert (f"{parsed.first.astimezone(BERLIN):%H:%M}", parsed.text) == (
        "07:00",
        "-10 degrees jacket",
    )


async def test_punctuation_around_a_number_is_no_way_past_the_refusals(tmp_path: Path) -> None:
    """ "in 5. call mom", "13 13.", "13 13 at 9:00" were still May and 2113; "in .5 hours tea"
    was 10 May with the text "hours tea" (R187)."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/goal add Renew the passport")
        for words in ("in 5. call mom", "in 5: call mom", "in 5! call mom", "in (5) call mom"):
            said = await h.say(f"/remind {words}")
            assert said.startswith("In 5 what? For example “in 5 minutes call mom”."), said
        for words in ("13 13. test", "13 13 at 9:00 test", "1 2 at 9:00 test"):
            said = await h.say(f"/remind {words}")
            assert said.startswith(f"I couldn't find a time at the start of “{words}”."), said
        for when in ("13 13.", "march \u2212 1"):
            said = await h.say(f"/goal due 1 {when}")
            assert said.startswith(f"I couldn't read “{when}” as a date."), said
        assert await _reminders(h) == 0 and await _due_at(h) is None
        said = await h.say("/remind in .5 hours tea")
        assert said.startswith("OK, #1: Mon 2026-12-07 11:30 (in 30 min) — tea."), said


async def test_a_unit_in_quotes_or_nearly_a_unit_is_not_asked_about_as_none(
    tmp_path: Path,
) -> None:
    """ "in 2 weeks'" was asked "In 2 what?", and "in 2 yrs pay" answered with the example
    "in 2 minutes yrs pay" (R187)."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        await h.say("/goal add Renew the passport")
        assert await h.say("/goal due 1 in 2 weeks'") == "#1 is due Mon 2026-12-21."
        said = await h.say("/remind in 2 weeks' time dentist")
        assert said.startswith("OK, #2: Mon 2026-12-21 11:00 (in 14 d) — dentist."), said
        said = await h.say("/remind in 2 yrs pay")
        assert said.startswith("In 2 what? For example “in 2 years pay”."), said
        said = await h.say("/remind in 5 Minuten anrufen")
        assert said.startswith("In 5 what? For example “in 5 minutes anrufen”."), said
        said = await h.say("/goal due 1 in 2 mo")
        assert said.startswith("In 2 what? For example “in 2 months”."), said


def test_a_signed_span_is_read_as_before() -> None:
    """ "+1 day" was read as a day from now before R186 refused every signed number (R187)."""
    assert parse_moment("+1 day", NOW, BERLIN) == datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
    with pytest.raises(WhenError, match="in the past"):
        parse_moment("-1 day", NOW, BERLIN)


# -- R191: an offset after "9.30", "noon", "midnight", or before ":"; a lone sign after a clock --


@pytest.mark.parametrize(
    ("words", "at"),
    [
        ("9:00 -0500: call mom", "2026-12-07 15:00"),
        ("9.30 -0500 call mom", "2026-12-07 15:30"),
        ("noon -0500 call mom", "2026-12-07 18:00"),
        ("tomorrow noon -0500 call mom", "2026-12-08 18:00"),
        ("midnight +0530 call mom", "2026-12-07 19:30"),
        ("9.30 +01 call mom", "2026-12-08 09:30"),
        ("9.30 +0100 call mom", "2026-12-08 09:30"),
        ("9.30 -0500, call mom", "2026-12-07 15:30"),
        ("noon +01 call mom", "2026-12-07 12:00"),
        ("noon +0100 call mom", "2026-12-07 12:00"),
        ("noon -0500, call mom", "2026-12-07 18:00"),
        ("midnight +01 call mom", "2026-12-08 00:00"),
        ("midnight +0100 call mom", "2026-12-08 00:00"),
        ("midnight -0500, call mom", "2026-12-08 06:00"),
        ("9am -0500: call mom", "2026-12-07 15:00"),
        ("9.30 -0500: call mom", "2026-12-07 15:30"),
        ("noon -0500: call mom", "2026-12-07 18:00"),
        ("at 9 -0500: call mom", "2026-12-07 15:00"),
        ("tomorrow 9:00 -0500: call mom", "2026-12-08 15:00"),
        ("friday 9:00 -0500: call mom", "2026-12-11 15:00"),
        ("2026-12-24 09:00 -0500: call mom", "2026-12-24 15:00"),
        ("9:00 +0100. call mom", "2026-12-08 09:00"),  # "+0100." was the year 100
        ("tomorrow 9:00 +0100. call mom", "2026-12-08 09:00"),  # "+0100." was in the text
        ("tomorrow noon +0100. call mom", "2026-12-08 12:00"),  # 11:00, an hour off
    ],
)
def test_an_offset_after_any_clock_and_before_punctuation_is_read(words: str, at: str) -> None:
    """ad61909 read these; R187's fix refused them as signed numbers: its clocks were not
    "9.30", "noon" nor "midnight", and a ":" or "." after the offset hid it (R191)."""
    parsed = parse_reminder(words, NOW, BERLIN)
    assert (f"{parsed.first.astimezone(BERLIN):%Y-%m-%d %H:%M}", parsed.text) == (at, "call mom")


async def test_an_offset_after_noon_is_read_and_a_lone_sign_asked_about(tmp_path: Path) -> None:
    """ "noon -0500 call mom" was refused as no date (R191); "9:00 +2 call mom" was set at 9:00
    with the text "+2 call mom": a zone, written short, is asked about."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        said = await h.say("/remind noon -0500 call mom")
        assert said.startswith("OK, #1: Mon 2026-12-07 18:00 (in 7 h) — call mom."), said
        said = await h.say("/remind 9:00 +2 call mom")
        assert said.startswith(
            "“+2” after 9:00: a zone? Write it as “9:00 +02:00”, or “9:00 UTC+2”."
        ), said
        assert await _reminders(h) == 1


@pytest.mark.parametrize(
    ("words", "asked"),
    [
        (
            "9:00 +2 call mom",
            "“+2” after 9:00: a zone? Write it as “9:00 +02:00”, or “9:00 UTC+2”.",
        ),
        (
            "9:00 -1 call mom",
            "“-1” after 9:00: a zone? Write it as “9:00 -01:00”, or “9:00 UTC-1”.",
        ),
        ("tomorrow noon +12 x", "“+12” after noon: a zone? Write it as “noon +12:00”, or “noon"),
        ("9 am -1, call mom", "“-1” after 9 am: a zone? Write it as “9 am -01:00”, or “9 am"),
    ],
)
def test_a_lone_sign_after_a_clock_is_asked_about_as_a_zone(words: str, asked: str) -> None:
    """dateparser read "+2" after a clock as no zone ("9:00 +2" was February, "tomorrow 9:00 +2"
    11:00); Steward set 9:00 with the text "+2 call mom" (R191)."""
    with pytest.raises(WhenError) as refused:
        parse_reminder(words, NOW, BERLIN)
    assert str(refused.value).startswith(asked), str(refused.value)


def test_a_signed_number_that_is_no_zone_is_still_the_texts() -> None:
    """Not asked about: "+20" is no zone, "+1 day" a span, "+05" an offset, and after "at 7"
    (an hour, not a clock written as one) "-10 degrees" is the text, as in R187."""
    for words, at, text in (
        ("9:00 +20 pushups", "2026-12-08 09:00", "+20 pushups"),
        ("9:00 +05 call mom", "2026-12-08 05:00", "call mom"),
        ("at 7 -10 degrees jacket", "2026-12-08 07:00", "-10 degrees jacket"),
        # a phone number's country code is the text's (R192)
        ("9:00 +1 555 1234 call bob", "2026-12-08 09:00", "+1 555 1234 call bob"),
    ):
        parsed = parse_reminder(words, NOW, BERLIN)
        assert (f"{parsed.first.astimezone(BERLIN):%Y-%m-%d %H:%M}", parsed.text) == (at, text)


@pytest.mark.parametrize(
    "words",
    [
        "every monday 9:00 -0500 standup",
        "every day noon -0500 call",
        "every day 9.30 +0100 standup",
        "every day 9:00 +2 call mom",
    ],
)
def test_a_zone_after_a_repeating_reminders_time_is_refused(words: str) -> None:
    """R192: set at 9:00 in the person's zone with the offset left in the text."""
    with pytest.raises(WhenError) as refused:
        parse_reminder(words, NOW, BERLIN)
    assert "a repeating reminder goes by your timezone" in str(refused.value), str(refused.value)


def test_a_repeating_reminders_text_may_begin_with_a_number() -> None:
    for words, text in (
        ("every day 9:00 +20 pushups", "+20 pushups"),
        ("every day 9:00 +1 555 1234 call bob", "+1 555 1234 call bob"),
        ("every monday 9:00 standup", "standup"),
    ):
        assert parse_reminder(words, NOW, BERLIN).text == text


@pytest.mark.parametrize(
    ("words", "at"),
    [
        ("9:00 \u22120500 call mom", "2026-12-07 15:00"),  # the minus sign
        ("tomorrow 9:00 \u221205:00 call mom", "2026-12-08 15:00"),
        ("noon \u20130500 call mom", "2026-12-07 18:00"),  # the en dash
        ("9:00 \uff0d0500 call mom", "2026-12-07 15:00"),  # the full-width minus
        ("9:00 \uff0b0100 call mom", "2026-12-08 09:00"),  # the full-width plus
    ],
)
def test_an_offset_written_with_another_minus_or_plus_is_read(words: str, at: str) -> None:
    """R192 leftover: "9:00 <U+2212>0500 call mom" (U+2212, as phones and word processors write a
    minus) was set at 9:00 in the person's zone with "<U+2212>0500" left in the text."""
    parsed = parse_reminder(words, NOW, BERLIN)
    assert (f"{parsed.first.astimezone(BERLIN):%Y-%m-%d %H:%M}", parsed.text) == (at, "call mom")


def test_a_repeating_reminders_zone_with_another_minus_is_refused_as_any() -> None:
    with pytest.raises(WhenError) as refused:
        parse_reminder("every monday 9:00 \u22120500 standup", NOW, BERLIN)
    assert "a repeating reminder goes by your timezone" in str(refused.value), str(refused.value)


@pytest.mark.parametrize(
    "words", ["tomorrow 9:00-10:00 dentist", "9:00\u201310:00 dentist", "tomorrow 9am-10am x"]
)
def test_a_time_range_is_refused_not_read_as_a_zone(words: str) -> None:
    """R200: "tomorrow 9:00-10:00 dentist" was set at 20:00 in Berlin, "-10:00" read as UTC-10."""
    with pytest.raises(WhenError) as refused:
        parse_reminder(words, NOW, BERLIN)
    assert "is a span of time; a reminder goes at one time" in str(refused.value)


def test_an_offset_written_onto_its_clock_is_still_read() -> None:
    for words, at in (("9:00-0500 x", "2026-12-07 15:00"), ("18:00-05:00 x", "2026-12-08 00:00")):
        parsed = parse_reminder(words, NOW, BERLIN)
        assert (f"{parsed.first.astimezone(BERLIN):%Y-%m-%d %H:%M}", parsed.text) == (at, "x")


def test_the_reminders_own_words_keep_their_signs() -> None:
    """R200: the signs were made ASCII in the whole text, the reminder's words too."""
    for words, text in (
        (
            "tomorrow 9:00 check the freezer is at \u221218 \u00b0C",
            "check the freezer is at \u221218 \u00b0C",
        ),
        ("9:00 \u22120500 call \uff0b49 30 1234", "call \uff0b49 30 1234"),
        ("every day 9:00 check \u221218", "check \u221218"),
    ):
        assert parse_reminder(words, NOW, BERLIN).text == text
