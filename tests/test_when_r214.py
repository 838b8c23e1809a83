"""R214: a count and a unit after a day and a clock time were read into the time, moving the
reminder by months: "/remind friday 9am 10 min walk" was set for Monday 5 October with the text
"walk", "friday 9am in 2 hours" for February next year with the text "hours". The words after
the day and time are the reminder's; "in 2 hours" there is a second time and is asked about;
and a weekday or "tomorrow" read as a day weeks away is not taken as that day. R216 and R217:
an ordinal after a day and time, "friday week" and "friday after next" in the time (not in the
reminder's words), and a clock the clocks skip at daylight saving."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import running_steward

from agent.scheduler.when import WhenError, parse_reminder
from memory.clock import FrozenClock

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 5, 10, 0, tzinfo=BERLIN)  # Thursday


@pytest.mark.parametrize(
    ("words", "at", "text"),
    [
        ("friday 9am 10 min walk", "Fri 2026-03-06 09:00", "10 min walk"),
        ("friday 9:00 10m to call", "Fri 2026-03-06 09:00", "10m to call"),
        ("monday 18:00 2 weeks review", "Mon 2026-03-09 18:00", "2 weeks review"),
        ("friday at 9 1 hour meeting", "Fri 2026-03-06 09:00", "1 hour meeting"),
        ("friday noon half an hour call", "Fri 2026-03-06 12:00", "half an hour call"),
        ("tomorrow 9am 2 weeks review", "Fri 2026-03-06 09:00", "2 weeks review"),
        ("20 march 9:00 12 months check", "Fri 2026-03-20 09:00", "12 months check"),
        ("monday 3 days off", "Mon 2026-03-09 09:00", "3 days off"),
        # full-width letters are the reminder's words (R214), and so is the count before them
        ("friday 9am １０ｍ ｔｏ ｃａｌｌ", "Fri 2026-03-06 09:00", "１０ｍ ｔｏ ｃａｌｌ"),
        ("friday 9am 10ｍ call", "Fri 2026-03-06 09:00", "10ｍ call"),
        # as before
        ("friday 9am 2 pills", "Fri 2026-03-06 09:00", "2 pills"),
        ("friday 18:00 5 km run", "Fri 2026-03-06 18:00", "5 km run"),
        ("in 2 hours 30 minutes tea", "Thu 2026-03-05 12:30", "tea"),
        ("today in 2 hours call", "Thu 2026-03-05 12:00", "call"),
    ],
)
def test_a_count_after_a_day_and_time_is_the_reminders(words: str, at: str, text: str) -> None:
    parsed = parse_reminder(words, NOW, BERLIN)
    assert f"{parsed.first.astimezone(BERLIN):%a %Y-%m-%d %H:%M}" == at, words
    assert parsed.text == text


@pytest.mark.parametrize(
    "words", ["friday 9am in 2 hours", "tomorrow at 9 in 10 minutes", "monday in 2 days x"]
)
def test_a_second_time_after_a_day_is_asked_about(words: str) -> None:
    with pytest.raises(WhenError, match=r"are two times: say one, e\.g\. “") as refused:
        parse_reminder(words, NOW, BERLIN)
    assert "call mom”" in str(refused.value)


def test_a_weekday_read_weeks_away_is_not_that_weekday() -> None:
    """ "9 friday" was read as 9 September: no Friday this week, so no time at all."""
    with pytest.raises(WhenError, match="couldn't find a time"):
        parse_reminder("9 friday 2 pills", NOW, BERLIN)


async def test_remind_friday_9am_10_min_walk(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        said = await h.say("/remind friday 9am 10 min walk")
        assert said.startswith("OK, #1: Fri 2026-03-06 09:00 (in 23 h) — 10 min walk."), said
        said = await h.say("/remind friday 9am in 2 hours")
        assert "“friday 9am” and “in 2 hours” are two times" in said, said
        assert "#2" not in await h.say("/remind list")


@pytest.mark.parametrize(
    ("words", "at", "text"),
    [
        ("monday 9am 3rd floor meeting", "Mon 2026-03-09 09:00", "3rd floor meeting"),
        ("tomorrow 9am 2nd interview", "Fri 2026-03-06 09:00", "2nd interview"),
        ("friday 9am 21st birthday", "Fri 2026-03-06 09:00", "21st birthday"),
        ("friday 9am 1/2 marathon", "Fri 2026-03-06 09:00", "1/2 marathon"),
        ("tuesday 10am 1-1 with boss", "Tue 2026-03-10 10:00", "1-1 with boss"),
        ("monday 9 3rd floor", "Mon 2026-03-09 09:00", "3rd floor"),
        ("tomorrow morning 9.30 call mom", "Fri 2026-03-06 09:30", "call mom"),
        # dates of their own, and a zone, as before
        ("the 21st at 9am pay rent", "Sat 2026-03-21 09:00", "pay rent"),
        ("friday 20th march 9am party", "Fri 2026-03-20 09:00", "party"),
        ("friday 20 march 9am party", "Fri 2026-03-20 09:00", "party"),
        ("friday 9am 3/20 dentist", "Fri 2026-03-20 09:00", "dentist"),
        ("tomorrow 9:00 -0500 standup", "Fri 2026-03-06 15:00", "standup"),
        ("friday night at 1 check oven", "Sat 2026-03-07 01:00", "check oven"),
    ],
)
def test_an_ordinal_after_a_day_and_time_is_the_reminders(words: str, at: str, text: str) -> None:
    """R216: "monday 9am 3rd floor meeting" was Friday 5 March next year, "floor meeting"."""
    parsed = parse_reminder(words, NOW, BERLIN)
    assert f"{parsed.first.astimezone(BERLIN):%a %Y-%m-%d %H:%M}" == at, words
    assert parsed.text == text


@pytest.mark.parametrize(
    ("words", "at"),
    [
        ("friday after next call mom", "Fri 2026-03-13 09:00"),
        ("the friday after next call mom", "Fri 2026-03-13 09:00"),
        ("friday week, call mom", "Fri 2026-03-13 09:00"),
        ("remind me on tuesday week to call mom", "Tue 2026-03-17 09:00"),
        ("friday week at 9 call mom", "Fri 2026-03-13 09:00"),
        ("thursday week 9am call mom", "Thu 2026-03-19 09:00"),  # on a Thursday: the 12th + 7
        ("a week from friday call mom", "Fri 2026-03-13 09:00"),
        ("2 weeks on monday 5pm call mom", "Mon 2026-03-23 17:00"),
        ("9am friday after next call mom", "Fri 2026-03-13 09:00"),
    ],
)
def test_a_weekday_a_week_on(words: str, at: str) -> None:
    """R216: "friday after next" and "friday week" were this Friday ("after next call mom"),
    "a week from friday" a week from now ("from friday call mom")."""
    parsed = parse_reminder(words, NOW, BERLIN)
    assert f"{parsed.first.astimezone(BERLIN):%a %Y-%m-%d %H:%M}" == at, words
    assert parsed.text == "call mom"


@pytest.mark.parametrize("words", ["in 2 weeks friday call mom", "in a week on monday x"])
def test_weeks_then_a_weekday_is_asked_about(words: str) -> None:
    """R216: "in 2 weeks friday call mom" was Thursday 19 March with the text "friday call mom"."""
    with pytest.raises(WhenError, match=r"are two times: say one, e\.g\. “\w+ weeks? from "):
        parse_reminder(words, NOW, BERLIN)


async def test_remind_monday_9am_3rd_floor_meeting(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Berlin")
        said = await h.say("/remind monday 9am 3rd floor meeting")
        assert said.startswith("OK, #1: Mon 2026-03-09 09:00 ("), said
        assert said.split("—", 1)[1].startswith(" 3rd floor meeting"), said


NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("words", "now", "at"),
    [
        ("sunday 2:30am check heating", datetime(2026, 3, 25, 10, tzinfo=BERLIN), "03-29 03:30"),
        ("sunday 2:30 check heating", datetime(2026, 3, 25, 10, tzinfo=BERLIN), "03-29 03:30"),
        ("sunday 2am check heating", datetime(2026, 3, 25, 10, tzinfo=BERLIN), "03-29 03:00"),
        ("sunday 2:30am check heating", datetime(2026, 3, 4, 10, tzinfo=NEW_YORK), "03-08 03:30"),
        ("sunday 2:30am check heating", datetime(2026, 10, 21, 10, tzinfo=BERLIN), "10-25 02:30"),
    ],
)
def test_a_clock_the_clocks_skip_is_kept(words: str, now: datetime, at: str) -> None:
    """R217: a 02:30 the clocks skip that Sunday was dropped: 09:00, "2:30am check heating"."""
    zone = ZoneInfo(str(now.tzinfo))
    parsed = parse_reminder(words, now, zone)
    assert f"{parsed.first.astimezone(zone):%m-%d %H:%M}" == at, words
    assert parsed.text == "check heating"


@pytest.mark.parametrize(
    ("words", "text"),
    [
        ("tomorrow 9am tell Ana friday week is off", "tell Ana friday week is off"),
        ("monday 9am prep for friday week", "prep for friday week"),
        ("tomorrow 9am ask if friday after next works", "ask if friday after next works"),
        ("tomorrow 9am tell Bob a week from friday we ship", "tell Bob a week from friday we ship"),
        ("tomorrow call Ana re two weeks on monday", "call Ana re two weeks on monday"),
        ("tomorrow 9am tell Ana friday next week is off", "tell Ana friday next week is off"),
        ("tomorrow 9am plan next week on monday", "plan next week on monday"),
        ("tomorrow 9am ask about next week friday", "ask about next week friday"),
        (
            "tomorrow 9am remind team in 2 weeks friday is the deadline",
            "remind team in 2 weeks friday is the deadline",
        ),
    ],
)
def test_a_week_on_in_the_reminders_words_is_theirs(words: str, text: str) -> None:
    """R217: these were rewritten in the text ("tell Ana 2026-03-13 is off") or refused."""
    parsed = parse_reminder(words, NOW, BERLIN)
    assert f"{parsed.first.astimezone(BERLIN):%a %m-%d}" in ("Fri 03-06", "Mon 03-09"), words
    assert parsed.text == text


@pytest.mark.parametrize(
    ("words", "at", "text"),
    [
        ("sunday week planning", "Sun 03-08 09:00", "week planning"),
        ("friday week review", "Fri 03-06 09:00", "week review"),
        ("monday week ahead email", "Mon 03-09 09:00", "week ahead email"),
        ("friday week 3 review", "Fri 03-06 09:00", "week 3 review"),
        ("friday week 9am dentist", "Fri 03-13 09:00", "dentist"),
        ("friday week 9 am dentist", "Fri 03-13 09:00", "dentist"),
        ("friday week noon lunch", "Fri 03-13 12:00", "lunch"),
    ],
)
def test_a_weekday_and_week_before_the_text_is_that_weekday(words: str, at: str, text: str) -> None:
    """R217: "sunday week planning" became a week later, "planning": "week" is the text's unless
    the time ends after it (nothing, a comma, "at", "to" or a clock time follows)."""
    parsed = parse_reminder(words, NOW, BERLIN)
    assert f"{parsed.first.astimezone(BERLIN):%a %m-%d %H:%M}" == at, words
    assert parsed.text == text


async def test_remind_in_the_spring_forward_gap_and_a_week_on_in_the_text(tmp_path: Path) -> None:
    now = datetime(2026, 3, 25, 10, 0, tzinfo=BERLIN)  # Wednesday; clocks go forward Sunday
    async with running_steward(tmp_path, None, clock=FrozenClock(now)) as h:
        await h.say("/timezone Europe/Berlin")
        said = await h.say("/remind sunday 2:30am check heating")
        assert said.startswith("OK, #1: Sun 2026-03-29 03:30 ("), said
        assert said.split("—", 1)[1].startswith(" check heating"), said
        said = await h.say("/remind tomorrow 9am tell Ana friday week is off")
        assert said.startswith("OK, #2: Thu 2026-03-26 09:00 ("), said
        assert said.split("—", 1)[1].startswith(" tell Ana friday week is off"), said


def test_a_weekday_week_before_a_colon_is_a_week_on() -> None:
    """R219: "friday week: dentist" was this Friday with the text "week: dentist"."""
    for said in (
        "friday week: dentist",
        "friday week; dentist",
        "friday week 9am, dentist",  # R220: the clock's comma hid it
        "friday week 9am: dentist",
        "friday week - dentist",
    ):
        parsed = parse_reminder(said, datetime(2026, 3, 4, 10, 0, tzinfo=UTC), ZoneInfo("UTC"))
        assert f"{parsed.first:%Y-%m-%d}" == "2026-03-13", said
        assert parsed.text.lstrip("- ") == "dentist", (said, parsed.text)
