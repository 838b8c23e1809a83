"""When things happen: reminder times in plain words, recurring times, quiet hours.

Natural-language moments ("45s", "2h30m", "tomorrow 9:00", "2026-12-24 18:00", "next friday
5pm") are parsed by dateparser, imported lazily (it loads its language data on first use: call
the `a…` wrappers from async code so that happens off the event loop). This module only finds
where the time ends and the reminder text begins, and turns "every <days> <time>" into a
`Recurrence`. The forms dateparser reads wrong (a time of day alone, "the 15th", "tonight at
9", am and pm, "april 31") are read in `clock_words.py` first; numbers that are no date or
time ("in 5 call mom", "13 13", "-1") are refused in `number_refusals.py` (R186, R187). The
arithmetic on times (next occurrences across daylight saving, quiet-hour windows) is
`recurrence.py`; its names are exported here too, so callers have one module for "when".

(Some 1180 lines: every form a time is written in — moments, days, "every …", clock times,
quiet hours — goes through the same tokenising and the same refusals of impossible clocks and
of numbers that are no dates; apart, the forms would drift in what they accept.)
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.errors import WhenError
from agent.scheduler.clock_words import (
    DEFAULT_HOUR,
    HALF,
    MONTHS,
    PARTS_OF_DAY,
    bare_hour,
    clock_in_part,
    clock_of,
    clock_only,
    evening_hours,
    is_half,
    next_at,
    no_impossible_date,
    no_impossible_half,
    ordinal_day,
)
from agent.scheduler.number_refusals import (
    ASCII_NUMBER,
    CONNECTORS,
    ENGLISH_ONLY,
    HMS_UNITS,
    SPAN_UNITS,
    UNITS_AFTER_NUMBER,
    ascii_signs,
    is_zone_offset,
    needs_a_unit,
    no_lone_sign_after_a_clock,
    no_number_alone_after_in,
    no_numbers_dropped,
    no_stop_after_offset,
    no_time_range,
    no_zone_in_a_repeat,
    not_a_date,
    unit_word,
)
from agent.scheduler.recurrence import (
    Recurrence,
    describe_delta,
    describe_trigger,
    local_at,
    next_run,
    quiet_contains,
    quiet_end,
)
from memory.visible import visible

__all__ = [
    "EXAMPLES",
    "Parsed",
    "Recurrence",
    "WhenError",
    "aparse_day",
    "aparse_moment",
    "aparse_reminder",
    "aparse_when",
    "describe_delta",
    "describe_trigger",
    "local_at",
    "next_run",
    "parse_cadence",
    "parse_clock_time",
    "parse_day",
    "parse_moment",
    "parse_quiet",
    "parse_reminder",
    "parse_when",
    "quiet_contains",
    "quiet_end",
]

EXAMPLES = (
    "45s tea · 10m stretch · 2h30m call back · tomorrow 9:00 call mom · "
    "2026-12-24 18:00 dinner · every monday 8:00 weekly review · every day 21:00 journal"
)
MAX_TIME_TOKENS = 7
MAX_WHEN_CHARS = 200
"""The longest text read as a time ("every monday, wednesday and friday at 9:00pm" is 44): R221,
a longer one is refused before any pattern or dateparser reads it, as no time is that long and
each reading of it holds the interpreter, so the event loop, for as long as it takes."""
YEARS_AHEAD = 100
"""The furthest ahead a date may be set, in years after this one (a goal may be a life's:
"13 13", read as 2113, is refused as bare numbers, R186)."""
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])")

_WEEKDAYS = {
    "monday": 0, "mon": 0, "mondays": 0,
    "tuesday": 1, "tue": 1, "tues": 1, "tuesdays": 1,
    "wednesday": 2, "wed": 2, "wednesdays": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "thursdays": 3,
    "friday": 4, "fri": 4, "fridays": 4,
    "saturday": 5, "sat": 5, "saturdays": 5,
    "sunday": 6, "sun": 6, "sundays": 6,
}  # fmt: skip
_MONTHS = MONTHS
_TIME_WORDS = {
    "today", "tomorrow", "tonight", "tmrw", "yesterday", "noon", "midnight", "morning", "afternoon",
    "evening", "night", "next", "this", "in", "at", "on", "and", "a", "an", "of", "half",
    "quarter", "hour", "hours", "hr", "hrs", "minute", "minutes", "min", "mins", "second",
    "seconds", "sec", "secs", "day", "days", "week", "weeks", "month", "months", "year",
    "years", "am", "pm", "a.m.", "p.m.", "ago", "last",
}  # fmt: skip
_PARTS_OF_DAY = frozenset(PARTS_OF_DAY)
_MONTH_FIRST = (  # the United States and Canada write the month first; Latin America does not
    "US/", "Canada/", "Pacific/Honolulu", "America/New_York", "America/Chicago",
    "America/Denver", "America/Los_Angeles", "America/Phoenix", "America/Anchorage",
    "America/Adak", "America/Boise", "America/Detroit", "America/Indiana", "America/Kentucky",
    "America/North_Dakota", "America/Juneau", "America/Sitka", "America/Nome",
    "America/Yakutat", "America/Metlakatla", "America/Menominee", "America/Toronto",
    "America/Vancouver", "America/Edmonton", "America/Winnipeg", "America/Halifax",
    "America/St_Johns", "America/Regina", "America/Whitehorse", "America/Moncton",
    "America/Glace_Bay", "America/Goose_Bay",
    # their other names, and the territories
    "America/Louisville", "America/Fort_Wayne", "America/Indianapolis", "America/Knox_IN",
    "America/Atka", "America/Shiprock", "Navajo", "America/Montreal", "America/Thunder_Bay",
    "America/Nipigon", "America/Rainy_River", "America/Yellowknife", "America/Iqaluit",
    "America/Pangnirtung", "America/Rankin_Inlet", "America/Resolute", "America/Cambridge_Bay",
    "America/Inuvik", "America/Dawson", "America/Dawson_Creek", "America/Fort_Nelson",
    "America/Creston", "America/Swift_Current", "America/Atikokan", "America/Coral_Harbour",
    "America/Blanc-Sablon", "America/Puerto_Rico", "America/St_Thomas", "America/Virgin",
    "Pacific/Guam", "Pacific/Saipan", "Pacific/Pago_Pago", "Pacific/Samoa", "EST5EDT",
    "CST6CDT", "MST7MDT", "PST8PDT", "EST", "MST", "HST",
)  # fmt: skip
_AMBIGUOUS_DAY_MONTH = re.compile(r"(?<![\d/.-])(0?[1-9]|1[0-2])([/.-])(0?[1-9]|1[0-2])(?!\d)")
_DAY_NUMBER = re.compile(r"^\d{1,2}(st|nd|rd|th)?,?$|^\d{4},?$")
_ORDINAL_WORD = re.compile(r"^\d{1,2}(st|nd|rd|th),?$", re.I)
_ORDINAL_ALONE = re.compile(r"^(the\s+)?\d{1,2}(st|nd|rd|th)$", re.I)
_HMS_SPAN = re.compile(r"^(\d+(\.\d+)?(h|hrs?|m|mins?|s|secs?))+$", re.I)  # "10m", "2h30m"
_BARE_HOUR_AFTER_AT = re.compile(r"\bat (\d{1,2})(?=$|\s)(?!\s*(?:am|pm|a\.m\.|p\.m\.)\b)", re.I)
_EXPLICIT_TIME = re.compile(
    r"\d:\d\d|(?<![\d.])\d{1,2}\.\d\d(?![\d.])|\d\s*(am|pm|a\.m\.|p\.m\.)\b|"
    r"\b(noon|midnight|morning|afternoon|evening|"
    r"night|tonight)\b",
    re.I,
)
_TIME_OF_DAY = re.compile(rf"^\d{{1,2}}([:.]\d{{2}})?({HALF})?$|^noon$|^midnight$", re.I)
# a clock's hour and minute, not its seconds ("18:00:00") nor a zone's offset ("+01:00")
_CLOCK_IN_TEXT = re.compile(
    r"(?<![\d:+\-])(\d{1,2}):(\d{2})(?![\d])(?!\s*(?:am|pm|a\.m\.|p\.m\.))", re.I
)
_ZONES = {
    "UTC": "UTC", "GMT": "UTC", "EST": "America/New_York", "EDT": "America/New_York",
    "CST": "America/Chicago", "CDT": "America/Chicago", "MST": "America/Denver",
    "MDT": "America/Denver", "PST": "America/Los_Angeles", "PDT": "America/Los_Angeles",
    "AKST": "America/Anchorage", "AKDT": "America/Anchorage", "HST": "Pacific/Honolulu",
    "CET": "Europe/Paris", "CEST": "Europe/Paris", "EET": "Europe/Athens",
    "EEST": "Europe/Athens", "WET": "Europe/Lisbon", "WEST": "Europe/Lisbon",
    "BST": "Europe/London", "IST": "Asia/Kolkata", "JST": "Asia/Tokyo", "KST": "Asia/Seoul",
    "SGT": "Asia/Singapore", "HKT": "Asia/Hong_Kong", "MSK": "Europe/Moscow",
    "AEST": "Australia/Sydney", "AEDT": "Australia/Sydney", "ACST": "Australia/Adelaide",
    "ACDT": "Australia/Adelaide", "AWST": "Australia/Perth", "NZST": "Pacific/Auckland",
    "NZDT": "Pacific/Auckland",
}  # fmt: skip
"""Zones a time may name after its clock ("9am PST"), as written (upper case: "cat", "eat"
and "west" are words), read as the place's zone with its daylight saving ("EST" in July is New
York's 9:00, as people mean it; dateparser took them as fixed offsets, and "IST" as Israel's).
"ET" and "PT" are left out: "10:00 PT appointment" is physical therapy as often."""
_ELAPSED = re.compile(
    r"^(?:in\s+)?(?:(?:\d+(?:\.\d+)?|an?|half an)\s*+(?:s|secs?|seconds?|m|mins?|minutes?|h|hrs?"
    r"|hours?)\s*+,?\s*+(?:and\s++)?)+$",
    re.I,
)
"""Time to wait ("in 2h, 30m and 10s"). R221: between the spans was an optional group of two
runs of spaces, so "1s 1s … x" could be split 2^n ways before failing (85 characters held the
interpreter, so the event loop too, for hours); the spaces are read once now (possessive)."""


# -- dateparser ------------------------------------------------------------------------------


def _dateparse(
    text: str, now: datetime, zone: ZoneInfo, day_of_month: str | None = None
) -> datetime | None:
    """dateparser on `text`. A span of hours, minutes or seconds ("45s", "in 2 hours") is
    elapsed time, counted in UTC; everything else ("tomorrow 9:00", "in 3 days", "monday") is
    read on the local wall clock and then placed with zoneinfo, so a date on the other side of
    a daylight-saving change gets that day's offset. `day_of_month` ("first", "last") is the
    day a date without one takes; unset, dateparser takes the day of `now`."""
    import dateparser  # lazy: its language data loads on first use

    for year, month, day in _ISO_DATE.findall(text):
        try:
            date(int(year), int(month), int(day))
        except ValueError:
            # dateparser read 2027-13-01 as 13 January (year, day, month), silently (R121)
            raise WhenError(f"{year}-{month}-{day} is not a date (year-month-day).") from None
    elapsed = bool(_ELAPSED.match(text.strip()))
    base = now.astimezone(UTC if elapsed else zone).replace(tzinfo=None)
    settings: dict[str, Any] = {
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": base,
        "TIMEZONE": "UTC",  # see `_read`: not the process's zone (tzlocal), which may be none
        "PARTS_OF_DAY": dateparser.PartsOfDay(  # the hours "every evening" takes too
            **{part: time(*clock) for part, clock in PARTS_OF_DAY.items()}
        ),
    }
    if day_of_month is not None:
        settings["PREFER_DAY_OF_MONTH"] = day_of_month
    if _AMBIGUOUS_DAY_MONTH.search(text) and not zone.key.startswith(_MONTH_FIRST):
        settings["DATE_ORDER"] = "DMY"  # "3/4": 3 April in most of the world, not March 4
    result = _read(text, settings)
    if result is None:
        return None
    if result.year > now.year + YEARS_AHEAD:
        # 9999-12-31 was taken, and in a zone east of UTC every later turn failed on its
        # local date, year 10000 (review 121); "13 13" was 2113 (R186)
        raise WhenError(
            f"“{text.strip()}” is more than {YEARS_AHEAD} years ahead: I set dates up to the "
            f"end of {now.year + YEARS_AHEAD}."
        )
    clocks = {(int(h), int(m)) for h, m in _CLOCK_IN_TEXT.findall(text)}
    if clocks and (result.hour, result.minute) not in clocks:
        return None  # it dropped the time it was given ("tomorrow 9:00 tomorrow 10:00")
    if result.tzinfo is not None:  # the text named its own zone
        return result.astimezone(UTC)
    if elapsed:
        return result.replace(tzinfo=UTC)
    first = result.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = result.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # a time the clocks pass twice (going back), its first pass gone: the second (R107)
    return second if first <= now < second else first


def _read(text: str, settings: dict[str, Any]) -> datetime | None:
    """dateparser's reading of `text`, never asking the process's zone. Its default TIMEZONE,
    "local", asks tzlocal, which raises on a TZ that is no zone name ("UTC0", "CET-1CEST,
    M3.5.0,M10.5.0/3", a typo): every reminder failed, and a stored one stopped the start
    (R259). "UTC" only labels the naive wall clock of RELATIVE_BASE (the user's) while it is
    read, and the result comes back naive: the same reading. Not so for a text naming its own
    zone ("9:00 -0500", "tomorrow 9:00 utc"): its time would come back moved to UTC, no longer
    the clock said, and its "tomorrow" counted from another day; such a text is read again as
    before, with "local", which dateparser then reads in the text's zone without looking the
    process's up (were it looked up and failed, the first reading stands)."""
    import dateparser

    languages = ["en"]
    try:
        result = dateparser.parse(text, languages=languages, settings=settings)  # type: ignore[arg-type]
    except (OverflowError, ValueError):  # "in 10000 years": past the last date Python has
        return None
    if result is None or result.tzinfo is None:
        return result
    as_named = {**settings, "TIMEZONE": "local"}
    try:
        again = dateparser.parse(text, languages=languages, settings=as_named)  # type: ignore[arg-type]
    except (OverflowError, ValueError, LookupError):  # LookupError: tzlocal's, were it asked
        return result
    return again if again is not None and again.tzinfo is not None else result


def _time_like(tokens: list[str], i: int) -> bool:
    if tokens[i].strip(",") in _ZONES:
        return i > 0 and _time_like(tokens, i - 1)
    word = tokens[i].lower().strip(",")
    if word == "the":
        return _the_in_a_time(tokens, i)
    if is_zone_offset(word) and _after_a_time_of_day(tokens, i):
        return True  # "9:00 -0500": a zone's offset (R187)
    if needs_a_unit(word) and _after_a_time_of_day(tokens, i):
        following = unit_word(tokens[i + 1]) if i + 1 < len(tokens) else ""
        return following in SPAN_UNITS  # "at 7 -10 degrees jacket": the text's, as "2 pills"
    if _POSSESSIVE_SPAN.fullmatch(word) or (
        word == "time" and i > 0 and _POSSESSIVE_SPAN.fullmatch(tokens[i - 1].strip(","))
    ):
        return True  # "in 2 weeks' time" (R187)
    if re.fullmatch(r"\d{1,2}", word) and _after_a_time_of_day(tokens, i):
        following = tokens[i + 1].lower().strip(",.") if i + 1 < len(tokens) else ""
        # "at 9 2 pills" was February, "friday 5pm 3 beers" March: the number is the text's,
        # unless a month ("9:00 3 march"), a unit ("2h 30 m") or am/pm follows it
        return following in _MONTHS or following in SPAN_UNITS or is_half(following)
    if re.search(r"[0-9]", word):  # "²" is no time (R186)
        return True
    if word in _TIME_WORDS or word in _WEEKDAYS:
        return True
    if word in UNITS_AFTER_NUMBER:
        return i > 0 and bool(ASCII_NUMBER.fullmatch(tokens[i - 1]))
    if word in _MONTHS:  # "may", "march" are also plain words: only next to a day number
        before = [t.lower() for t in tokens[max(0, i - 2) : i]]
        after = [t.lower() for t in tokens[i + 1 : i + 3]]
        before = before if before[-1:] == ["of"] else before[-1:]  # "31st of may"
        after = after if after[:1] == ["the"] else after[:1]  # "may the 31st"
        return any(_DAY_NUMBER.match(n) for n in before + after)
    return False


def _the_in_a_time(tokens: list[str], i: int) -> bool:
    """ "the" is part of a time only before a day of the month, with nothing but "on" or a month
    before it ("the 15th", "on the 1st at 18:00", "may the 4th"), in "the 2nd of the month" and
    in "in the afternoon". After a time it begins the text: "in 20 minutes the 5pm call" was
    17:00 "call", "friday the 3rd quarter report" March, "in 10m the 2 kids" "kids"."""
    before = [t.lower().strip(",") for t in tokens[:i]]
    after = tokens[i + 1].lower().strip(",") if i + 1 < len(tokens) else ""
    if _ORDINAL_WORD.match(after):  # not "the 11th hour" (dateparser's "in 11 hours")
        unit = i + 2 < len(tokens) and tokens[i + 2].lower().strip(",") in SPAN_UNITS
        return not unit and all(word == "on" or word in _MONTHS for word in before)
    if before[-1:] == ["in"]:
        return after in _PARTS_OF_DAY
    of_the_month = len(before) > 1 and before[-1] == "of" and after == "month"
    return of_the_month and bool(_ORDINAL_WORD.match(before[-2]))


def _after_a_time_of_day(tokens: list[str], i: int) -> bool:
    """Whether the words just before `i` end a time of day ("9:00", "5pm", "5 pm", "at 9",
    "monday 9", "noon", "evening") or a span of hours, minutes or seconds ("10m", "2 hours")."""
    before = [t.lower().strip(",") for t in tokens[max(0, i - 2) : i]]
    if not before:
        return False
    last, first = before[-1], before[0] if len(before) == 2 else ""
    bare_hour_after = ("at", "today", "tomorrow", "tmrw", *_WEEKDAYS)
    return (
        clock_of(last) is not None
        or last in _PARTS_OF_DAY
        or last == "tonight"
        or (is_half(last) and bool(re.fullmatch(r"\d{1,2}([:.]\d{2})?", first)))
        or (bool(re.fullmatch(r"\d{1,2}", last)) and first in bare_hour_after)
        or bool(_HMS_SPAN.match(last))
        or last in HMS_UNITS
    )


# a colon only: "24.12" is as often a date, "25.00" an amount
_CLOCK_SHAPED = re.compile(r"^(\d{1,2}):(\d{2})(am|pm)?,?$", re.I)


def _no_impossible_clock(words: list[str]) -> None:
    """A clock time that cannot be ("25:00", "9:99") is an error, not a word to skip:
    dateparser read "tomorrow 25:00" as tomorrow at this time, and "friday 25:00 call mom"
    took "25:00" into the reminder's text. So are a day its month does not have ("april 31")
    and an hour am or pm cannot follow ("13:00 pm")."""
    no_impossible_date(" ".join(words))
    no_impossible_half(" ".join(words))
    for word in words:
        shaped = _CLOCK_SHAPED.match(word)
        if shaped and (int(shaped[1]) > 23 or int(shaped[2]) > 59):
            raise WhenError(f"“{word}” is not a time of day (for example 09:30 or 21:00).")
    # after a day word a dotted pair is a clock (below): one that cannot be is an error too
    for match in _DOTTED_AFTER_DAY_ANY.finditer(" ".join(words)):
        if not _DOTTED_TIME_AFTER_DAY.match(match[0]):
            raise WhenError(f"“{match[2]}” is not a time of day (for example 09:30 or 21:00).")


_DAY_WORD = "|".join(["today", "tomorrow", "tmrw", "tonight", "at", "morning", *_WEEKDAYS])
_HALF = r"(\s*(?:am|pm|a\.m\.|p\.m\.))?"
_DOTTED_TIME_AFTER_DAY = re.compile(
    rf"\b({_DAY_WORD})\s+([01]?\d|2[0-3])\.([0-5]\d){_HALF}(?![.\w])", re.I
)
_DOTTED_AFTER_DAY_ANY = re.compile(rf"\b({_DAY_WORD})\s+(\d{{1,2}}\.\d+(?:\.\d+)*\w*)", re.I)
_BARE_HOUR_AFTER_DAY = re.compile(  # "monday 9" is 09:00; "saturday 21 march" a date
    rf"\b({'|'.join(['today', 'tomorrow', 'tmrw', *_WEEKDAYS])})\s+([01]?\d|2[0-3])"
    r"(?=$|\s)(?!\s*(?:am|pm|a\.m\.|p\.m\.)\b)"
    rf"(?!\s+(?:{'|'.join(sorted(_MONTHS))}|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|"
    r"weeks?|months?|years?|[smhdw])\b)",
    re.I,
)
_SHORT_UNITS = (
    (re.compile(r"\b(?:a\s+)?half\s+an\s+hour\b|\ba\s+half\s+hour\b", re.I), "30 minutes"),
    (re.compile(r"\ban\s+hour\s+and\s+a\s+half\b", re.I), "90 minutes"),
    (re.compile(r"\b(\d+)h(\d{1,2})\b", re.I), r"\1h\2m"),  # "1h30": a span, not 01:30
    (re.compile(r"\b(\d+)\s*(?:w|wks?)\b", re.I), r"\1 weeks"),
    (re.compile(r"\b(\d+)\s*d\b", re.I), r"\1 days"),
    (re.compile(r"\b(\d+)\s+([hms])\b", re.I), r"\1\2"),
)


_POSSESSIVE_SPAN = re.compile(
    r"\b(second|minute|hour|day|week|month|year)(s['’]|['’]s)(?:\s+time\b)?", re.I
)
_POINT_NUMBER = re.compile(r"(?<![\w.])\.(\d)")


def _spelled(text: str) -> str:
    """ "in 2 weeks' time" as "in 2 weeks" ("in 3 days' time" dateparser did not read) and
    ".5" as "0.5" ("in .5 hours" was 10 May, R187)."""
    text = _POSSESSIVE_SPAN.sub(lambda m: m[1] + ("s" if m[2][0] == "s" else ""), text)
    return _POINT_NUMBER.sub(r"0.\1", text)


def _normalized(text: str) -> str:
    """What dateparser reads: "at 9" and "monday 9" are 9:00 ("monday 9" was September),
    "tomorrow 12.30" a time (after a day, a dotted pair is a clock; elsewhere "24.12" is as
    often a date), "1w", "10 m" and "1h30" spans, "in 2 weeks' time" and ".5" (`_spelled`)."""
    text = _spelled(text)
    text = _BARE_HOUR_AFTER_AT.sub(r"at \1:00", text)
    text = _BARE_HOUR_AFTER_DAY.sub(r"\1 \2:00", text)
    text = _DOTTED_TIME_AFTER_DAY.sub(lambda m: f"{m[1]} {m[2]}:{m[3]}{m[4] or ''}", text)
    for pattern, replacement in _SHORT_UNITS:
        text = pattern.sub(replacement, text)
    return no_stop_after_offset(text)  # "9:00 +0100." was the year 100 (R191)


def _moment(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    text, zone = _zone_named(text, zone)
    text, after_midnight = evening_hours(text)  # "tonight at 9" is 21:00, before "at 9" 09:00
    normalized = _normalized(text)
    if not_a_date(normalized):  # a bare number, "-1", "1.5", "13 13" (R186)
        return None
    own = clock_only(normalized, now, zone) or ordinal_day(normalized, now, zone)
    if own is not None:  # "9:00", "the 15th": dateparser counted these from the wrong month
        return own
    moment = _dateparse(normalized, now, zone)
    if moment is None:
        return None
    local = moment.astimezone(zone)
    elapsed = _ELAPSED.match(normalized.strip())  # "in 90 minutes" at 22:30: midnight itself
    if local.time() == time(0) and not elapsed and not _EXPLICIT_TIME.search(normalized):
        moment = local_at(local.date(), DEFAULT_HOUR, 0, zone)  # a day named without a time
    moment = _today_if_named(normalized, moment, now, zone)
    if not _on_the_day_and_clock_said(normalized, moment, now, zone):
        return None
    if after_midnight is not None and re.search(r"\btonight\b", text, re.I):
        # "tonight at 1": the next 01:00, this very night's when said at 00:20 (not the next)
        moment = next_at(now, zone, *after_midnight)
    elif after_midnight is not None:  # "friday night at 1": the small hours after that evening
        day = moment.astimezone(zone).date() + timedelta(days=1)
        moment = local_at(day, *after_midnight, zone)
    return moment if _keeps_its_day(normalized, moment, now, zone) else None


_RELATIVE_DAYS = frozenset({"today", "tonight", "tomorrow", "tmrw"})
_DATE_OF_ITS_OWN = re.compile(
    r"\d\s*[/.-]\s*\d|\d(st|nd|rd|th)\b|\b(days?|weeks?|fortnights?|months?|years?)\b", re.I
)


_DAY_SAID = re.compile(rf"\b(tomorrow|tmrw|{'|'.join(_WEEKDAYS)})\b", re.I)
_OFFSET_SAID = re.compile(r"(?:^|\s)[+-]\d|\b(?:utc|gmt)\b", re.I)


def _on_the_day_and_clock_said(text: str, moment: datetime, now: datetime, zone: ZoneInfo) -> bool:
    """Whether a reading of a weekday or "tomorrow" and then a clock time, with no month or
    offset named, is on that day at that time. R216: an ordinal, fraction or range after them
    was read into the date ("monday 9am 3rd floor meeting" was 5 March next year, "tomorrow 9am
    2nd interview" at 10:00); such a reading is not the one said, and a shorter phrase is read
    instead. R217: a clock the clocks skip that day ("sunday 2:30am" as they go forward) is
    read as `local_at` reads it (03:30), so it is compared as that, not as 02:30."""
    day, clock = _DAY_SAID.search(text), _CLOCKS.search(text)
    said = clock_of(clock[0]) if clock else None
    if day is None or clock is None or said is None or clock.start() < day.start():
        return True
    words = re.findall(r"[a-z]+", text.lower())
    if any(w in _MONTHS for w in words) or _OFFSET_SAID.search(text):
        return True  # "friday 20th march 9am", "friday 9:00 -0500": a date or zone of its own
    local, today = moment.astimezone(zone), now.astimezone(zone).date()
    on_that_day = local_at(local.date(), *said, zone).astimezone(zone)
    if (local.hour, local.minute) != (on_that_day.hour, on_that_day.minute):
        return False
    if "tomorrow" in words or "tmrw" in words:
        return local.date() == today + timedelta(days=1)
    return local.weekday() in {_WEEKDAYS[w] for w in words if w in _WEEKDAYS}


def _keeps_its_day(text: str, moment: datetime, now: datetime, zone: ZoneInfo) -> bool:
    """Whether a reading of a weekday or "tomorrow" is on that day: the coming one (up to 8
    days on, with the small hours after "friday night"; 15 after "next"), or tomorrow (2 days
    on, "tomorrow night at 1"). R214: "friday 9am 10m" with a full-width m was 5 October, "9
    friday" 9 September; such a reading is not the day named, and a shorter phrase is read
    instead. A phrase with a date of its own ("friday 20 march", "the 20th") may be further."""
    words = re.findall(r"[a-z]+", text.lower())
    if _DATE_OF_ITS_OWN.search(_CLOCKS.sub(" ", text)) or any(w in _MONTHS for w in words):
        return True
    ahead = (moment.astimezone(zone).date() - now.astimezone(zone).date()).days
    if "tomorrow" in words or "tmrw" in words:
        return 1 <= ahead <= 2
    if any(w in _WEEKDAYS for w in words):
        return ahead <= (15 if "next" in words else 8)
    return True


_WAITED = HMS_UNITS | {"h", "m", "s"}
_SPAN_AFTER_A_DAY = re.compile(
    r"^(?P<joined>in\s+|and\s+)?(\d+(\.\d+)?\s*|(an?|half\s+an?|an?\s+half)\s+)"
    rf"(?P<unit>{'|'.join(sorted(SPAN_UNITS, key=len, reverse=True))})(?![a-z])",
    re.I,
)


def _before_a_span_after_a_day(tokens: list[str], longest: int) -> int:
    """Where the time ends when a day ("friday", "tomorrow", "2026-03-20"), with or without a
    clock, is followed by a count and a unit: before them, which are the reminder's ("friday
    9am 10 min walk", R214: read as one time, that was 5 October with the text "walk"). "in 2
    hours" there is a second time, refused (which one was meant?), except after "today" or
    "tomorrow" alone ("today in 2 hours call": 2 hours from now, as before)."""
    words = [t.lower().strip(",") for t in tokens]
    for end in range(1, longest + 1):
        span = _SPAN_AFTER_A_DAY.match(" ".join(words[end : end + 4]))
        if span is None or words[end - 1] in CONNECTORS or not _names_a_day(words[:end]):
            continue
        if (span["joined"] or "").strip() != "in":
            return end
        if set(words[:end]) <= _RELATIVE_DAYS and span["unit"].lower() in _WAITED:
            return longest
        said = " ".join(tokens[:end])
        raise WhenError(
            f"“{said}” and “{span[0]}” are two times: say one, e.g. “{said} call mom” or "
            f"“{span[0]} call mom”."
        )
    return longest


def _names_a_day(words: list[str]) -> bool:
    """Whether the words name a day: a weekday, "today", "tomorrow", a date."""
    return any(
        w in _WEEKDAYS or w in _RELATIVE_DAYS or w in _MONTHS or _ORDINAL_WORD.match(w)
        for w in words
    ) or bool(_ISO_DATE.search(" ".join(words)))


def _zone_named(text: str, zone: ZoneInfo) -> tuple[str, ZoneInfo]:
    """A zone named after the time ("tomorrow 9am PST"): the time without it, read in it."""
    tokens = text.split()
    if len(tokens) > 1 and (name := tokens[-1].strip(",")) in _ZONES:
        return " ".join(tokens[:-1]), ZoneInfo(_ZONES[name])
    return text, zone


_CLOCKS = re.compile(
    r"\d{1,2}[:.]\d{2}(\s*(am|pm|a\.m\.|p\.m\.))?|\d{1,2}\s*(am|pm|a\.m\.|p\.m\.)", re.I
)


def _names_a_date(text: str) -> bool:
    """Whether the words give a date of their own besides a clock ("monday 9 march 11:00")."""
    rest = _CLOCKS.sub(" ", text)
    return bool(re.search(r"\d", rest)) or any(
        w in _MONTHS for w in re.findall(r"[a-z]+", rest.lower())
    )


_NAMED_WEEKDAY = re.compile(rf"\b({'|'.join(sorted(_WEEKDAYS, key=len, reverse=True))})\b", re.I)


def _today_if_named(text: str, moment: datetime, now: datetime, zone: ZoneInfo) -> datetime:
    """dateparser reads a weekday that is today as next week's ("monday 11:00" on a Monday
    morning went a week late): with a time still ahead today it is today, unless the text
    says "next"."""
    named = _NAMED_WEEKDAY.search(text)
    if named is None or re.search(r"\bnext\b", text, re.I) or not _EXPLICIT_TIME.search(text):
        return moment
    if _names_a_date(text):  # "monday 9 march 11:00": that date, a week on or not
        return moment
    local_now, local = now.astimezone(zone), moment.astimezone(zone)
    if _WEEKDAYS[named[1].lower()] != local_now.weekday():
        return moment
    if (local.date() - local_now.date()).days != 7:
        return moment
    today = local_at(local_now.date(), local.hour, local.minute, zone)
    return today if today > now else moment


def _not_too_long(text: str) -> None:
    """R221: a time longer than MAX_WHEN_CHARS is refused unread."""
    if len(text.strip()) > MAX_WHEN_CHARS:
        raise WhenError(
            f"That is too long for a time or a date (at most {MAX_WHEN_CHARS} characters): "
            "for example “friday”, “in 3 days” or “2026-12-24 18:00”."
        )


def parse_moment(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """One moment in the future, the whole text naming it ("tomorrow 9:00", "in 2 hours")."""
    _not_too_long(text)
    text = _for_reading(text).strip()
    if not text:
        raise WhenError("No time given.")
    _no_impossible_clock(text.split())
    no_time_range(text.split())
    no_number_alone_after_in(text.split(), "minutes")
    moment = _moment(text, now, zone)
    if moment is None:
        raise WhenError(f"I couldn't read “{text}” as a time.")
    if moment <= now:
        raise WhenError(f"“{text}” is in the past ({moment.astimezone(zone):%Y-%m-%d %H:%M}).")
    return moment


_RELATIVE_DAY = re.compile(r"\b(tomorrow|tmrw|yesterday|in|next|after|from now)\b", re.I)


def parse_day(text: str, now: datetime, zone: ZoneInfo) -> date:
    """A day in words ("today", "friday", "11 march", "in 3 days", "2026-12-24"), read from
    the day's start, so today counts whatever hour it is; a day before today is an error. A
    month without a day ("march", "in march 2027") is its last day: "by March" means by its
    end, whatever day it is said (dateparser took the day from today, or from yesterday)."""
    _not_too_long(text)
    text, today = _for_reading(text), now.astimezone(zone).date()
    if text.strip().lower() in ("today", "tonight"):
        return today
    _no_impossible_clock(text.split())
    no_number_alone_after_in(text.split(), "days")
    # a relative phrase counts from today ("tomorrow", "in 3 days"); a named day or date from
    # just before it, so the day it names may be today ("11 march", "wednesday", "9:00")
    base = local_at(today, 0, 0, zone)
    moment: datetime | None = None
    if any(word in _MONTHS for word in re.findall(r"[a-z]+", text.lower())):
        # a month's first and last day differ only when no day was given ("march", not
        # "1 march"); read from just before today, so this month is this month's end
        words, eve = _normalized(text.strip()), base - timedelta(seconds=1)
        if not not_a_date(words):  # "march -1" (R186)
            first, last = (_dateparse(words, eve, zone, end) for end in ("first", "last"))
            if first is not None and last is not None and first.date() != last.date():
                moment = last
    if not _RELATIVE_DAY.search(text):
        base -= timedelta(seconds=1)
    moment = moment or _moment(text, base, zone)
    if moment is None:
        raise WhenError(f"I couldn't read “{text.strip()}” as a date.")
    day = moment.astimezone(zone).date()
    if day < today:
        raise WhenError(f"“{text.strip()}” is in the past ({day:%Y-%m-%d}).")
    return day


async def aparse_day(text: str, now: datetime, zone: ZoneInfo) -> date:
    return await asyncio.to_thread(parse_day, text, now, zone)


async def aparse_moment(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    return await asyncio.to_thread(parse_moment, text, now, zone)


# -- reminders -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A reminder's time (one moment or a recurrence; `first` is its first run) and its text."""

    first: datetime
    text: str
    recurrence: Recurrence | None = None
    elapsed: bool = False
    """Said as time to wait ("in 5 minutes"), not a time of day: a wall clock set back keeps
    it that far away in real time (`engine.check_clock`)."""

    def trigger(self) -> dict[str, Any]:
        if self.recurrence is not None:
            return self.recurrence.to_trigger()
        trigger: dict[str, Any] = {"type": "once", "at": self.first.isoformat()}
        if self.elapsed:
            trigger["elapsed"] = True
        return trigger


def parse_reminder(text: str, now: datetime, zone: ZoneInfo) -> Parsed:
    """Split "<when> <what>" into a time and the text. WhenError says what is wrong. As people
    say it, "[remind] me in 10m to call Ann" is "in 10m" and "call Ann"."""
    written = text.split()  # the reminder's own words keep their signs (R200: "<U+2212>18 °C")
    text = _for_reading(text)
    tokens = text.split()
    spoken = False  # "remind me <when> to <what>": the "to" joins, it is not what to remind
    if [t.lower() for t in tokens[:2]] == ["remind", "me"]:
        tokens, spoken = tokens[2:], True
    elif tokens[:1] and tokens[0].lower() == "me" and len(tokens) > 2:
        tokens, spoken = tokens[1:], True
    if not tokens:
        raise WhenError("Tell me when and what.")
    clock, tokens = _clock_before_every(_every_spelled_out(_on_days_as_every(tokens)))
    if tokens[0].lower() == "every":
        recurrence, rest = _parse_every(tokens[1:], now, zone, default_time=False, clock=clock)
        no_time_range(tokens[: len(tokens) - len(rest)])
        no_zone_in_a_repeat(rest)
        _no_half_after_the_time(rest)
        rest = _as_written(_without_to(rest) if spoken else rest, written)
        if not visible(" ".join(rest)):
            raise WhenError("What should I remind you of?")
        return Parsed(recurrence.next_after(now, zone), " ".join(rest), recurrence)
    tokens = _day_of_next_week(tokens, now, zone)
    no_number_alone_after_in(tokens, "minutes", "call mom")
    longest = 0
    while longest < min(len(tokens), MAX_TIME_TOKENS) and _time_like(tokens, longest):
        longest += 1
    longest = _before_a_span_after_a_day(tokens, longest)
    _no_impossible_clock(tokens[:longest])
    no_time_range(tokens[:longest])
    refused = 0  # where the longest phrase refused as numbers that are no date ends (R187)
    for end in range(longest, 0, -1):
        if tokens[end - 1].lower() in CONNECTORS:
            continue
        phrase = " ".join(tokens[:end])
        if len(phrase) > MAX_WHEN_CHARS:  # no time is that long; reading it costs (R221)
            continue
        joined = end < len(tokens) and tokens[end].lower() in ("to", "that")
        if spoken and _ORDINAL_ALONE.match(phrase) and not joined:
            continue  # "remind me the 2nd draft is due": not the 2nd ("… the 2nd to pay" is)
        moment = _moment(phrase, now, zone)
        if moment is None:
            refused = refused or (end if _numbers_no_date(phrase, zone) else 0)
            continue
        no_numbers_dropped(tokens, end, refused)
        no_lone_sign_after_a_clock(tokens, end)  # "9:00 +2 call mom": a zone? (R191)
        _no_half_after_the_time(tokens[end:])
        _no_repeat_after_once(phrase, tokens[end:])
        rest = " ".join(_as_written(_without_to(tokens[end:]) if spoken else tokens[end:], written))
        if moment <= now and phrase.lower().strip(",.") == "today":  # this very second (R107)
            raise WhenError(f"At what time today? For example “today 18:00 {rest or 'call Bob'}”.")
        if moment <= now:
            raise WhenError(
                f"“{phrase}” is in the past ({moment.astimezone(zone):%Y-%m-%d %H:%M})."
            )
        if not visible(rest):  # nothing, or zero-width marks alone (R121)
            raise WhenError("What should I remind you of?")
        return Parsed(moment, rest, elapsed=bool(_ELAPSED.match(_spelled(phrase).strip())))
    raise WhenError(f"I couldn't find a time at the start of “{text}”.\n{ENGLISH_ONLY}")


def _for_reading(text: str) -> str:
    """The text as the time in it is read: the full-width digits and signs a Japanese or
    Chinese keyboard types as ASCII (their NFKC), and a minus or plus written as another
    character as ASCII (`ascii_signs`). R211: a full-width "9:00 電話" was refused, the ASCII
    one read. Only the full-width forms: all of NFKC makes "²" a 2 and "①" a 1, which are no
    times (R186). Each word stays one word, so `_as_written` gives the reminder's words back as
    written (R203)."""
    return ascii_signs(text.translate(_HALF_WIDTH))


_HALF_WIDTH = str.maketrans({c: chr(ord(c) - 0xFEE0) for c in "０１２３４５６７８９：／－＋．"})
"""The full-width digits and a time's or date's signs, and the ASCII they stand for (their
NFKC); not the full-width letters (R214: "9:00 ＰＭ report" became 21:00, and a full-width
"tomorrow" before の会議 moved the reminder a day: they are the reminder's words)."""


def _as_written(rest: list[str], written: list[str]) -> list[str]:
    """The reminder's words as the person wrote them: the time was read with its signs made
    ASCII (`_for_reading`), but the words after it are theirs ("<U+2212>18 °C", a full-width
    "+49")."""
    tail = written[len(written) - len(rest) :] if len(rest) <= len(written) else []
    return tail if [_for_reading(word) for word in tail] == rest else rest


def _numbers_no_date(phrase: str, zone: ZoneInfo) -> bool:
    """Whether `_moment` refuses the phrase as numbers that are no date (`not_a_date`): read
    as `_moment` reads it, so it stays beside `_moment` (R187)."""
    text, _ = _zone_named(phrase, zone)
    return not_a_date(_normalized(evening_hours(text)[0]))


_REPEAT_UNITS = frozenset(
    {"day", "days", "week", "weeks", "month", "months", "year", "years", "hour", "hours"}
    | {"morning", "evening", "night", "other", "weekday", "weekend", "fortnight", "time"}
    | set(_WEEKDAYS)
)


def _no_repeat_after_once(phrase: str, rest: list[str]) -> None:
    """A one-off time followed by words of repeating ("on the 31st every month pay rent",
    "monday 9:00 every week review", "tomorrow at 9 and every day after pills") is refused:
    made once, with the repeating words as its text, it was a reminder that never came back
    (R156). "every student brings a form" and "daily standup" are text still."""
    words = [t.lower().strip(",.;:") for t in rest[:3]]
    joined = 1 if words[:1] and words[0] in ("of", "and", "then") else 0
    head, unit = [*words[joined : joined + 2], "", ""][:2]
    if head in ("every", "each") and (unit in _REPEAT_UNITS or ASCII_NUMBER.fullmatch(unit)):
        raise WhenError(
            f"“{phrase}” is one time, and “{' '.join(rest[: joined + 2])}” repeats: say the "
            "repeating first, e.g. “every monday 9:00 review” or “every day 9:00 pills” (I "
            "repeat by days and weeks, not by hours, months or years yet)."
        )


def _day_of_next_week(tokens: list[str], now: datetime, zone: ZoneInfo) -> list[str]:
    """ "friday next week …", "next week [on] friday …", also after a time ("9:00 friday next
    week …"), as that day's date: dateparser read the first as this Friday (the text kept "next
    week") and the second as a week from now, at this minute (R107, R111). Only in the time, as
    in `_weekday_weeks_on`: "tomorrow 9am tell Ana friday next week is off" had its words
    rewritten to "tell Ana 2026-03-13 is off"."""
    words = [t.lower().strip(",") for t in tokens]
    for start in range(min(len(words), MAX_TIME_TOKENS)):
        if start and not _time_like(tokens, start - 1):
            break  # the reminder's words have begun: theirs as written
        head = words[start : start + 4]
        if head[1:3] == ["next", "week"]:
            day, length = head[0], 3
        elif head[:2] == ["next", "week"] and len(head) > 2:
            on = head[2] == "on" and len(head) > 3
            day, length = head[3 if on else 2], 4 if on else 3
        else:
            continue
        if day not in _WEEKDAYS or day.endswith("days"):
            continue
        if start and words[start - 1] == "on":
            start, length = start - 1, length + 1
        today = now.astimezone(zone).date()
        monday = today + timedelta(days=7 - today.weekday())
        date = (monday + timedelta(days=_WEEKDAYS[day])).isoformat()
        return [*tokens[:start], date, *tokens[start + length :]]
    return _weekday_weeks_on(tokens, now, zone)


_WEEK_COUNTS = {"a": 1, "one": 1, "two": 2, "three": 3, **{str(n): n for n in range(1, 10)}}
_WEEKS_ON = re.compile(
    rf"^(?P<count>{'|'.join(_WEEK_COUNTS)})\s+weeks?\s+(?:from|on)\s+(?P<from>[a-z]+)\b"
    r"|^(?:on\s+)?(?:the\s+)?(?P<day>[a-z]+)\s+(?:after\s+next|week)\b"
)
_IN_WEEKS_THEN_DAY = re.compile(
    rf"^(?P<span>in\s+(?:{'|'.join(_WEEK_COUNTS)})\s+weeks?)\s+(?:on\s+)?(?P<day>[a-z]+)\b"
)


def _weekday_weeks_on(tokens: list[str], now: datetime, zone: ZoneInfo) -> list[str]:
    """ "friday after next", "friday week", "a week from friday", "2 weeks on friday" as that
    day's date: the coming Friday (1 to 7 days on) and 7 days per week. R216: the first two
    were this Friday with "after next" or "week" as the text, "a week from friday" a week from
    now. "in 2 weeks friday" is two times (which Friday?) and is refused. R217: only in the
    time, where every word before them is part of it: "tomorrow 9am tell Ana friday week is
    off" had its text rewritten to "2026-04-03", and "… remind team in 2 weeks friday is the
    deadline" was refused."""
    words = [t.lower().strip(",") for t in tokens]
    for start in range(min(len(words), MAX_TIME_TOKENS)):
        if start and not _time_like(tokens, start - 1):
            break  # the reminder's words have begun: theirs as written
        head = " ".join(words[start : start + 5])
        if (both := _IN_WEEKS_THEN_DAY.match(head)) and both["day"] in _WEEKDAYS:
            span, day = both["span"], both["day"]
            raise WhenError(
                f"“{span}” and “{day}” are two times: say one, e.g. "
                f"“{span.removeprefix('in ')} from {day} call mom” or “{span} call mom”."
            )
        said = _WEEKS_ON.match(head)
        day = said and (said["day"] or said["from"])
        if not said or day not in _WEEKDAYS or day.endswith("days"):
            continue
        end = start + len(said[0].split())
        if said[0].endswith("week") and not _ends_the_time(tokens, end):
            continue
        today = now.astimezone(zone).date()
        coming = today + timedelta(days=(_WEEKDAYS[day] - today.weekday() - 1) % 7 + 1)
        weeks = _WEEK_COUNTS[said["count"]] if said["count"] else 1
        date = (coming + timedelta(weeks=weeks)).isoformat()
        return [*tokens[:start], date, *tokens[end:]]
    return tokens


def _ends_the_time(tokens: list[str], end: int) -> bool:
    """Whether "<weekday> week" ends the time at `end`: nothing, a comma or colon, "at", "to"
    or a clock time after it ("friday week", "friday week, dentist", "friday week 9am"). R217:
    "sunday week planning" is Sunday's "week planning", as people write it, not a week on."""
    if end >= len(tokens) or tokens[end - 1].endswith((",", ":", ";")):  # R219: "week: x"
        return True
    after = tokens[end].lower().rstrip(",:;")  # R220: "friday week 9am, dentist"
    if after in ("-", "–", "—"):  # "friday week - dentist", as a comma
        return True
    two = " ".join(tokens[end : end + 2]).rstrip(",:;")
    return after in ("at", "to") or clock_of(after) is not None or clock_of(two) is not None


_DAYS_SHORTHAND = frozenset({"daily", "weekdays", "weekday", "weekends", "biweekly", "fortnightly"})
"""Repeating days said in one word, which `_every_spelled_out` turns into "every …"."""


def _every_spelled_out(tokens: list[str]) -> list[str]:
    """ "daily …", "weekdays …", "biweekly …", "every other week …", "every fortnight …" as
    "every day …", "every weekday …", "every 2 weeks …" (for /remind and the tools alike);
    repeating by hours, months or years is refused."""
    head = tokens[0].lower() if tokens else ""
    if head in ("daily", "weekdays", "weekday", "weekends"):  # as a goal's cadence takes it
        day = {"daily": "day", "weekends": "weekend"}.get(head, "weekday")
        tokens = ["every", day, *tokens[1:]]
    elif head in ("biweekly", "fortnightly"):
        tokens = ["every", "2", "weeks", *tokens[1:]]
    if [t.lower() for t in tokens[:3]] in (["every", "other", "week"], ["every", "two", "weeks"]):
        tokens = ["every", "2", "weeks", *tokens[3:]]
    elif [t.lower() for t in tokens[:2]] == ["every", "fortnight"]:
        tokens = ["every", "2", "weeks", *tokens[2:]]
    head = tokens[0].lower() if tokens else ""
    units = [t.lower() for t in tokens[1:3]] if head == "every" else []
    if head in ("hourly", "monthly", "yearly", "annually") or any(
        u in ("hour", "month", "year", "hours", "months", "years") for u in units
    ):
        raise WhenError(
            "I repeat reminders by days and weeks: “every day 9:00”, “every 2 weeks 9:00”, "
            "“every 30 days 9:00” (not by hours, months or years yet)."
        )
    return tokens


_PLURAL_DAYS = frozenset(w for w in _WEEKDAYS if w.endswith("days")) | {"weekdays", "weekends"}


def _on_days_as_every(tokens: list[str]) -> list[str]:
    """ "on weekdays …", "on mondays …" as "every weekday …", "every monday …": repeating, as
    said ("on monday …" is one day, and stays so)."""
    if len(tokens) > 1 and tokens[0].lower() == "on":
        days = [d for d in tokens[1].lower().split(",") if d]
        if days and all(d in _PLURAL_DAYS for d in days):
            return ["every", *tokens[1:]]
    return tokens


def _clock_before_every(tokens: list[str]) -> tuple[str | None, list[str]]:
    """ "at 8 every weekday stand-up", "8:30 on mondays gym": the clock said before the days,
    and the tokens from "every" on (a one-off is left as it is: None and `tokens`). Without
    this the days became the reminder's text, at 08:00 once."""
    at = bool(tokens) and tokens[0].lower() == "at"
    start = int(at)
    for width in (2, 1):  # "8 pm" / "8pm", "8:30", "8" after "at"
        chunk = tokens[start : start + width]
        said = " ".join(chunk)
        if len(chunk) < width or not (clock_of(said) or (at and bare_hour(said))):
            continue
        after = _on_days_as_every(tokens[start + width :])
        if after and after[0].lower() in _DAYS_SHORTHAND:  # "at 8 daily pills" (review 85)
            after = _every_spelled_out(after)
        if after and after[0].lower() == "every":
            return said, _every_spelled_out(after)
        break
    return None, tokens


def _no_half_after_the_time(rest: list[str]) -> None:
    """A reminder's text does not begin with "am" or "pm": the time before it was read without
    them ("every day 8:30 PM pills" was 08:30, "PM pills")."""
    if rest and is_half(rest[0]):
        raise WhenError(
            f"I couldn't read the time before “{rest[0]}”: write it as 8:30pm or 20:30."
        )


def _without_to(rest: list[str]) -> list[str]:
    """The reminder's words without the "to" or "that" joining them to the time ("me in 10m
    to call Ann": "call Ann"); a lone word is kept as it is."""
    if len(rest) > 1 and rest[0].lower() in ("to", "that"):
        return rest[1:]
    return rest


def parse_when(text: str, now: datetime, zone: ZoneInfo) -> tuple[datetime, Recurrence | None]:
    """A whole text naming a time: one moment ("in 20 minutes") or "every …" (the first run
    and the recurrence)."""
    _not_too_long(text)
    text = _for_reading(text)
    clock, tokens = _clock_before_every(_every_spelled_out(_on_days_as_every(text.split())))
    if tokens and tokens[0].lower() == "every":
        recurrence, rest = _parse_every(tokens[1:], now, zone, default_time=False, clock=clock)
        if rest:
            raise WhenError(f"I don't understand “{' '.join(rest)}” after the time.")
        return recurrence.next_after(now, zone), recurrence
    return parse_moment(text, now, zone), None


async def aparse_when(
    text: str, now: datetime, zone: ZoneInfo
) -> tuple[datetime, Recurrence | None]:
    return await asyncio.to_thread(parse_when, text, now, zone)


async def aparse_reminder(text: str, now: datetime, zone: ZoneInfo) -> Parsed:
    return await asyncio.to_thread(parse_reminder, text, now, zone)


def _parse_every(
    tokens: list[str],
    now: datetime,
    zone: ZoneInfo,
    *,
    default_time: bool,
    clock: str | None = None,
) -> tuple[Recurrence, list[str]]:
    """`tokens` after "every": the days, then "[at] <time>" (or `clock`, said before them);
    returns the rest unread."""
    days, interval, i = _every_days(tokens, now, zone)
    part = tokens[i].lower().strip(",") if i < len(tokens) else ""
    if part in _PARTS_OF_DAY:  # "every evening", "every friday night at 11"
        if clock is None:
            clock, i = _clock_after_part(tokens, i + 1)
        else:
            i += 1
        in_part = clock_in_part(part, clock)
        if in_part is None:
            raise WhenError(f"“{clock}” is not a time of day (for example 7pm or 19:00).")
        hour, minute, after_midnight = in_part
        if after_midnight:  # "every friday night at 1": Saturday, 01:00
            days = {(day + 1) % 7 for day in days}
        hour_minute: tuple[int, int] | None = (hour, minute)
    elif clock is not None:
        hour_minute = clock_of(clock) or bare_hour(clock)
    else:
        hour_minute, i = _every_clock(tokens, i, now, zone)
    if hour_minute is None:
        if not default_time:
            raise WhenError(
                "At what time? For example “every day 21:00 journal” (a bare number after the "
                "days may be a count, as in “every day 20 pushups”: write 9:00 or 9am)."
            )
        hour_minute = (DEFAULT_HOUR, 0)
    anchor = now.astimezone(zone).date() if interval > 1 else None
    recurrence = Recurrence(hour_minute[0], hour_minute[1], frozenset(days), interval, anchor)
    return recurrence, tokens[i:]


def _clock_after_part(tokens: list[str], i: int) -> tuple[str | None, int]:
    """The clock after a part of the day ("evening at 7", "night 11:30", "evening 7pm") and
    where the rest begins; a bare number without "at" is a count ("every evening 20 pushups")."""
    at = i < len(tokens) and tokens[i].lower() == "at"
    start = i + at
    for width in (2, 1):
        chunk = tokens[start : start + width]
        if len(chunk) == width and (
            _is_time_of_day(chunk) or (at and width == 1 and bare_hour(chunk[0]) is not None)
        ):
            return " ".join(chunk), start + width
    return None, i


def _every_days(tokens: list[str], now: datetime, zone: ZoneInfo) -> tuple[set[int], int, int]:
    """The days "every …" names: (weekdays, interval in days, where the days end)."""
    if not tokens:
        raise WhenError("Every what? For example “every monday 8:00”.")
    days: set[int] = set()
    interval = 1
    i = 0
    head = tokens[0].lower().strip(",")
    if head in ("day", "daily"):
        days, i = set(range(7)), 1
    elif head in ("weekday", "weekdays"):
        days, i = set(range(5)), 1
    elif head in ("weekend", "weekends"):
        days, i = {5, 6}, 1
    elif head == "week":
        days, i = {now.astimezone(zone).weekday()}, 1
    elif head in _PARTS_OF_DAY:  # "every evening": every day, in the evening
        days = set(range(7))
    elif ASCII_NUMBER.fullmatch(head) and len(tokens) > 1 and tokens[1].lower() in ("days", "day"):
        interval = int(head)
        if not 1 <= interval <= 365:
            raise WhenError("Every 1 to 365 days.")
        days, i = set(range(7)), 2
    elif (
        ASCII_NUMBER.fullmatch(head) and len(tokens) > 1 and tokens[1].lower() in ("weeks", "week")
    ):
        interval = int(head) * 7  # "every 2 weeks": from today, a fortnight apart
        if not 7 <= interval <= 364:
            raise WhenError("Every 1 to 52 weeks.")
        named = [t.lower().strip(",") for t in tokens[2:4]]
        if named[:1] == ["on"]:  # "every 2 weeks on friday" (R176: asked "At what time?")
            named = named[1:]
        if named and named[0] in _WEEKDAYS:
            raise WhenError(
                f"“every {head} weeks” repeats from the first time, on today's weekday: say "
                f"“every {head} weeks 9:00” on the day to start, or “every friday 9:00”."
            )
        days, i = set(range(7)), 2
    else:
        while i < len(tokens):
            for part in filter(None, tokens[i].lower().split(",")):
                if part not in _WEEKDAYS:
                    break
                days.add(_WEEKDAYS[part])
            else:
                i += 1
                if i < len(tokens) and tokens[i].lower() == "and":
                    i += 1
                continue
            break
        if not days:
            raise WhenError(
                f"“every {tokens[0]}”: say day, weekday, weekend, a day of the week or N days."
            )
    return days, interval, i


def _every_clock(
    tokens: list[str], i: int, now: datetime, zone: ZoneInfo
) -> tuple[tuple[int, int] | None, int]:
    """ "[at] <time>" after the days of "every …", and where the rest begins."""
    hour_minute: tuple[int, int] | None = None
    if i < len(tokens) and tokens[i].lower() == "at":
        i += 1
        bare = tokens[i] if i < len(tokens) else ""
        if (
            ASCII_NUMBER.fullmatch(bare)
            and int(bare) <= 23
            and not (i + 1 < len(tokens) and is_half(tokens[i + 1]))
        ):  # "every monday at 8": 08:00, as "at 8" is elsewhere
            hour_minute, i = (int(bare), 0), i + 1
    for width in (2, 1):  # "9 pm" or "9pm" / "21:00"
        chunk = tokens[i : i + width]
        if hour_minute is None and len(chunk) == width and _is_time_of_day(chunk):
            hour_minute = parse_clock_time(" ".join(chunk), now, zone)
            i += width
            break
    return hour_minute, i


def _is_time_of_day(chunk: list[str]) -> bool:
    if len(chunk) == 2:  # "9 pm", "8:30 PM", "9.30 p.m."
        return bool(re.fullmatch(r"\d{1,2}([:.]\d{2})?", chunk[0])) and is_half(chunk[1])
    word = chunk[0].lower()
    return bool(_TIME_OF_DAY.match(word)) and (not word.isdigit())


def parse_clock_time(
    text: str, now: datetime, zone: ZoneInfo, *, hour_alone: bool = False
) -> tuple[int, int]:
    """A time of day ("07:00", "7am", "9 pm", "12am", "noon") as (hour, minute), from its words
    alone (`now` and `zone` are not used): read as a moment from now, "2:30am" on the eve of the
    clocks going forward came out as 03:30. `hour_alone`: where only a time can stand
    ("/briefing at 7"), a bare hour is one (07:00)."""
    clock = clock_of(text) or (bare_hour(text) if hour_alone else None)
    if clock is None:
        raise WhenError(f"“{text.strip()}” is not a time of day (for example 07:00 or 7am).")
    return clock


def parse_cadence(text: str, now: datetime, zone: ZoneInfo) -> Recurrence:
    """A goal's check-in cadence: daily, weekly, every monday [9:00], every 3 days, ..."""
    tokens = text.lower().split()
    if tokens and tokens[0] in ("daily", "weekly"):
        tokens = ["every", "day" if tokens[0] == "daily" else "week", *tokens[1:]]
    if not tokens or tokens[0] != "every":
        raise WhenError("Say daily, weekly, “every monday 9:00” or “every 3 days”.")
    recurrence, rest = _parse_every(tokens[1:], now, zone, default_time=True)
    if rest:
        raise WhenError(f"I don't understand “{' '.join(rest)}” in the cadence.")
    return recurrence


# -- quiet hours -----------------------------------------------------------------------------


_QUIET_END = r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm)?"


def _quiet_clock(hour: str, minute: str | None, half: str | None, clock24: bool = False) -> str:
    """One end of a quiet window as HH:MM: "22:00", "10pm", "6:30am" (a bare "10" could be
    either half of the day, so it is refused, unless `clock24`: the other end is written on
    the 24-hour clock, as in "22-7")."""
    value = f"{hour}:{minute or '00'}{half or ''}"
    if minute is None and half is None and not clock24 and not 12 < int(hour) <= 23:
        raise WhenError(f"Is {hour} am or pm? Write 10pm-7am or 22:00-07:00.")
    number = int(hour)
    if half:
        if not 1 <= number <= 12:
            raise WhenError(f"{value} is not a time of day.")
        number = number % 12 + (12 if half == "pm" else 0)
    if number > 23 or int(minute or 0) > 59:
        raise WhenError(f"{value} is not a time of day.")
    return f"{number:02d}:{minute or '00'}"


def parse_quiet(text: str) -> tuple[str, str]:
    """ "22:00-07:00", "10pm-7am", "22.00 to 7.00" → ("22:00", "07:00")."""
    match = re.fullmatch(rf"\s*{_QUIET_END}\s*(?:[-–]|to)\s*{_QUIET_END}\s*", text.lower())
    if not match:
        raise WhenError("Give quiet hours as HH:MM-HH:MM, for example 22:00-07:00 or 10pm-7am.")
    groups = match.groups()
    # "22-7": one end past 12 (or at 0) without am/pm sets the clock for the other
    clock24 = any(
        g[2] is None and (int(g[0]) > 12 or int(g[0]) == 0) for g in (groups[:3], groups[3:])
    )
    parts = [_quiet_clock(*groups[:3], clock24), _quiet_clock(*groups[3:], clock24)]
    if parts[0] == parts[1]:
        raise WhenError("Quiet hours need a start and an end that differ.")
    return parts[0], parts[1]
