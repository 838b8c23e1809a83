"""Clock words Steward reads itself, where dateparser (1.5) reads them wrong: a time of day
alone ("9:00", "at 9 pm", "noon"), a day of the month alone ("the 15th"), a bare hour with
"tonight" or "this evening" (before or after it), am and pm, and a day its month does not
have ("april 31").

dateparser took "9:00" on the last day of a month for the 1st of that month (on 31 December,
for 1 December a year on), "5th" for May, "tonight at 9" and "at 11 tonight" for the morning,
"tonight at 1am" for this morning (the past), and "2:30am" on the eve of the clocks going
forward for 03:30; "april 31" became today's day in April, "31" the text.
`when.py` asks here first and gives dateparser the rest; the arithmetic on local times is
`recurrence.py`.
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from agent.errors import WhenError
from agent.scheduler.recurrence import local_at

__all__ = [
    "DEFAULT_HOUR",
    "HALF",
    "MONTHS",
    "PARTS_OF_DAY",
    "bare_hour",
    "clock_in_part",
    "clock_of",
    "clock_only",
    "evening_hours",
    "is_half",
    "next_at",
    "no_impossible_date",
    "no_impossible_half",
    "ordinal_day",
]

DEFAULT_HOUR = 9  # a date given without a time ("monday", "2026-12-24") means 09:00 there
PARTS_OF_DAY = {"morning": (9, 0), "afternoon": (15, 0), "evening": (18, 0), "night": (20, 0)}
"""The time a part of the day alone names, "tomorrow evening" as "every evening" (18:00):
dateparser's own defaults, handed to it (when.py) so the two readings cannot drift apart."""
HALF = r"[ap]\.?m\b\.?"  # am, a.m., pm, p.m. (case is the caller's flag)

_MONTH_NAMES = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_MONTH_NUMBERS = {
    **{name.lower(): n for n, name in enumerate(_MONTH_NAMES, 1)},
    **{name[:3].lower(): n for n, name in enumerate(_MONTH_NAMES, 1)},
    "sept": 9,
}
MONTHS = frozenset(_MONTH_NUMBERS)
_LONGEST_DAY = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # in any year


def _ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{'th' if 11 <= number % 100 <= 13 else suffix}"


# -- clock times -----------------------------------------------------------------------------

_HALF_WORD = re.compile(rf"^{HALF}$", re.I)
_CLOCK_WORDS = re.compile(
    r"^(?:(?P<noon>noon)|(?P<midnight>midnight)|"
    rf"(?P<hour>\d{{1,2}})(?:(?P<sep>[:.])(?P<minute>\d{{2}})(?::00)?)?\s*(?P<half>{HALF})?)$",
    re.I,
)


def is_half(word: str) -> bool:
    """Whether a word is "am" or "pm" ("a.m.", "PM")."""
    return bool(_HALF_WORD.match(word))


def clock_of(text: str) -> tuple[int, int] | None:
    """The (hour, minute) a clock time names, from its words alone: "21:00", "9.30", "9pm",
    "9:30 p.m.", "12am" (00:00), "12pm" (12:00), "noon", "midnight". With am or pm the hour is
    1 to 12. None: not a clock time, or one that cannot be ("24.12" may be a date); a bare "9"
    is none (it is a count as often)."""
    match = _CLOCK_WORDS.match(text.strip())
    if match is None:
        return None
    if match["noon"]:
        return 12, 0
    if match["midnight"]:
        return 0, 0
    hour, minute, half = int(match["hour"]), int(match["minute"] or 0), match["half"]
    if match["minute"] is None and half is None:
        return None
    if minute > 59:
        return None
    if half is not None:
        if not 1 <= hour <= 12:
            return None
        return hour % 12 + (12 if half[0].lower() == "p" else 0), minute
    return (hour, minute) if hour <= 23 else None


def bare_hour(text: str) -> tuple[int, int] | None:
    """ "7" as 07:00, where a number can only be an hour ("/briefing at 7", "every day at 8");
    elsewhere a bare number is a count as often (`clock_of`)."""
    word = text.strip()
    return (int(word), 0) if re.fullmatch(r"\d{1,2}", word) and int(word) <= 23 else None


def next_at(now: datetime, zone: ZoneInfo, hour: int, minute: int) -> datetime:
    """The first hour:minute on the local clock after `now`: today's, else tomorrow's. On the
    night the clocks go back, a time in the repeated hour whose first pass is gone is today's
    second pass (R107: 1:30 said at 01:10, the second time round, was set for tomorrow)."""
    today = now.astimezone(zone).date()
    moment = local_at(today, hour, minute, zone)
    if moment > now:
        return moment
    again = datetime(today.year, today.month, today.day, hour, minute, tzinfo=zone, fold=1)
    if (second := again.astimezone(UTC)) > now:
        return second
    return local_at(today + timedelta(days=1), hour, minute, zone)


def clock_only(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    """A time of day alone ("9:00", "at 9 pm", "noon"): today at that time on the local clock
    if it is still ahead, else tomorrow. None: the text says more than a time of day."""
    clock = clock_of(re.sub(r"^at\s+", "", text.strip(), flags=re.I))
    return None if clock is None else next_at(now, zone, *clock)


# -- a day of the month ----------------------------------------------------------------------

_ORDINAL_DAY = re.compile(
    r"^(?:on\s+)?(?:the\s+)?(\d{1,2})(?:st|nd|rd|th)(?:\s+of\s+the\s+month)?"
    r"(?:\s+(?:at\s+)?(?P<clock>.+))?$",
    re.I,
)


def ordinal_day(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    """ "[on] [the] 15th [of the month] [[at] 18:00]": the first month from this one that has
    that day with the time still ahead (09:00 without a time). None: the text says more ("15th
    of april")."""
    match = _ORDINAL_DAY.match(text.strip())
    if match is None:
        return None
    clock = (DEFAULT_HOUR, 0)
    if match["clock"] is not None:
        said = clock_of(match["clock"])
        if said is None:
            return None
        clock = said
    day = int(match[1])
    if not 1 <= day <= 31:
        raise WhenError(f"No month has a {_ordinal(day)} day.")
    local = now.astimezone(zone)
    year, month = local.year, local.month
    for _ in range(13):  # a 31st is at most two months away
        if day <= monthrange(year, month)[1]:
            moment = local_at(date(year, month, day), *clock, zone)
            if moment > now:
                return moment
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise AssertionError("every day of the month comes within a year")


# -- an hour with "tonight", "this evening", "in the afternoon" -----------------------------

_CLOCK_NEAR_PART = (
    r"(?:(?P<midnight>midnight)|(?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?"
    rf"(?:\s*(?P<half>{HALF}))?)"
)
_PART_THEN_HOUR = re.compile(  # "tonight at 9", "tomorrow evening 7:30", "tonight at 1am"
    rf"\b(?P<part>tonight|night|evening|afternoon)\s+(?:(?P<at>at)\s+)?{_CLOCK_NEAR_PART}"
    r"(?![\w:.])",
    re.I,
)
_HOUR_THEN_PART = re.compile(  # "at 11 tonight", "at 7 this evening", "at 3 in the afternoon"
    rf"(?<![\w:.])(?:(?P<at>at)\s+)?{_CLOCK_NEAR_PART}\s+(?P<part>tonight|"
    r"this\s+(?:evening|afternoon)|in\s+the\s+(?:morning|evening|afternoon)|at\s+night)\b",
    re.I,
)


def _on_the_clock(match: re.Match[str]) -> tuple[int, int, bool] | None:
    """The hour and minute on the 24-hour clock a part of the day makes of its hour, and
    whether they are in the small hours after that night; None: leave the words as written.

    After "tonight" and "night", 5 to 11 are in the evening, 12 (or 0, midnight, 12am) and 1 to
    4 (or 1am to 4am) the small hours after; after "evening" and "afternoon", 1 to 11 are pm;
    after "at night" only 5 to 11 are moved, and "in the morning" takes 1 to 11 as they are. An
    hour with pm, or am in the day, is as written; a bare number without "at" ("tonight 9") may
    be a count, and is left too."""
    part = " ".join(match["part"].lower().split())
    night = part in ("night", "tonight")
    if match["midnight"]:
        return (0, 0, True) if night else None
    hour, minute, half = int(match["hour"]), int(match["minute"] or 0), match["half"]
    if minute > 59 or (match["minute"] is None and half is None and match["at"] is None):
        return None
    if part == "in the morning":  # "at 3 in the morning": 03:00 on Steward's own reading
        return (hour, minute, False) if half is None and 1 <= hour <= 11 else None
    if half is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half[0].lower() == "p" else 0)
        return (hour, minute, True) if night and hour < 5 else None
    if night and (hour <= 4 or hour == 12):
        return hour % 12, minute, True
    if (5 if night or part == "at night" else 1) <= hour <= 11:
        return hour + 12, minute, False
    return None if part == "at night" or hour > 23 else (hour, minute, False)


def evening_hours(text: str) -> tuple[str, tuple[int, int] | None]:
    """ "tonight at 9", "this evening at 7.30", "tomorrow afternoon at 3", and the other way
    round "at 11 tonight", "at 7 this evening", "at 3 in the afternoon": with these words an
    hour without am or pm is in the afternoon or evening (it was read as 09:00). With "night"
    and "tonight", 12, midnight and 12am are the midnight after, and 1 to 4 (1am to 4am,
    00:30) the small hours after it.

    The text with the hour on the 24-hour clock; for a time after midnight, the text names
    23:59 that day and the (hour, minute) is returned: it is on the next day."""
    after_midnight: tuple[int, int] | None = None

    def rewrite(match: re.Match[str]) -> str:
        nonlocal after_midnight
        clock = _on_the_clock(match)
        if clock is None:
            return match[0]
        hour, minute, small_hours = clock
        if small_hours:
            after_midnight = (hour, minute)
            hour, minute = 23, 59
        part = " ".join(match["part"].split())
        if match.re is _HOUR_THEN_PART and not part.lower().startswith(("tonight", "this")):
            return f"at {hour:02d}:{minute:02d}"  # "in the afternoon" says no day
        return f"{part} at {hour:02d}:{minute:02d}"

    rewritten, found = _PART_THEN_HOUR.subn(rewrite, text, count=1)
    if not found:
        rewritten = _HOUR_THEN_PART.sub(rewrite, text, count=1)
    return rewritten, after_midnight


def clock_in_part(part: str, clock: str | None) -> tuple[int, int, bool] | None:
    """ "<part> [at <clock>]" ("evening", "night at 11", "morning at 8", "evening at 7pm") as
    (hour, minute, after midnight): the part's own time alone, else the clock read as the
    one-off forms read it after that part (evening 7 is 19:00, night 11 is 23:00, night 1 is
    01:00 after that night). None: `clock` is not a time of day."""
    if clock is None:
        return (*PARTS_OF_DAY[part], False)
    match = _PART_THEN_HOUR.fullmatch(f"{part} at {clock.strip()}")
    moved = _on_the_clock(match) if match is not None else None
    if moved is not None:
        return moved
    said = clock_of(clock) or bare_hour(clock)
    return None if said is None else (*said, False)


# -- a day the month does not have -----------------------------------------------------------

_MONTH = "|".join(sorted(_MONTH_NUMBERS, key=len, reverse=True))
_MONTH_THEN_DAY = re.compile(
    rf"\b({_MONTH})\.?,?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?(?![\w:]|\.\d)", re.I
)
_DAY_THEN_MONTH = re.compile(
    rf"(?<![\w:.])(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})\b", re.I
)


def no_impossible_date(text: str) -> None:
    """A month and a day it does not have ("april 31", "31st of june", "feb 30") is an error:
    dateparser moved it to today's day in that month and left the day number in the text."""
    pairs = [(m[1], m[2]) for m in _MONTH_THEN_DAY.finditer(text)]
    pairs += [(m[2], m[1]) for m in _DAY_THEN_MONTH.finditer(text)]
    for word, day in pairs:
        month = _MONTH_NUMBERS[word.lower()]
        if _LONGEST_DAY[month - 1] < int(day) <= 31:
            raise WhenError(f"{_MONTH_NAMES[month - 1]} has no {_ordinal(int(day))}.")


_HOUR_AND_HALF = re.compile(rf"(?<![\w:.])(\d{{1,2}})(?:[:.]\d{{2}})?\s*{HALF}", re.I)


def no_impossible_half(text: str) -> None:
    """An hour outside 1 to 12 before am or pm ("13:00 pm", "0am") is an error: dateparser
    read "tomorrow 13:00 pm" as 13:00, and "every day 21:00 pm" left "pm" for the text."""
    for match in _HOUR_AND_HALF.finditer(text):
        if not 1 <= int(match[1]) <= 12:
            raise WhenError(f"“{match[0]}” is not a time of day (for example 8:30pm or 20:30).")
