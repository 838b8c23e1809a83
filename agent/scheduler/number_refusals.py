"""Numbers that are no date or time, and what to ask instead.

dateparser makes a date of almost any number: "in 5 call mom" was 7 May and "in 10 tea" 7
October (the number taken for a month), "13 13" was 13 December 2113, "-1" January, "1.5"
1 May and "²" February (R186). Punctuation around a number was a way past the refusals ("in
5. call mom" was May again, "13 13." 2113), and a zone's offset after a clock ("9:00 -0500")
was refused as a signed number, or dropped into the reminder's text (R187); after "9.30",
"noon" or "midnight", or before a ":", it still was (R191), and "9:00 +2", no zone, is asked
about. `when.py` asks here before it gives dateparser a phrase; a refusal says what to write
instead ("In 5 what? For example “in 5 minutes call mom”."). The words both need to tell a
span from a date (the units, the connectors) are here too, so the imports point one way:
`when.py` to this module, this module to `clock_words.py`.
"""

from __future__ import annotations

import difflib
import re

from agent.errors import WhenError
from agent.scheduler.clock_words import MONTHS, is_half

__all__ = [
    "ASCII_NUMBER",
    "CONNECTORS",
    "ENGLISH_ONLY",
    "HMS_UNITS",
    "SPAN_UNITS",
    "UNITS_AFTER_NUMBER",
    "ascii_signs",
    "is_zone_offset",
    "needs_a_unit",
    "no_lone_sign_after_a_clock",
    "no_number_alone_after_in",
    "no_numbers_dropped",
    "no_stop_after_offset",
    "no_time_range",
    "no_zone_in_a_repeat",
    "not_a_date",
    "unit_word",
]

ASCII_NUMBER = re.compile(r"[0-9]+")
ENGLISH_ONLY = (
    "I read times in English words or digits, e.g. “tomorrow 9:00”, “2026-12-24 18:00”, “in 2h”."
)
"""Said when a time is not found: "morgen um 9", "завтра в 9:00", "明日9時" are refused with
English examples alone, and nothing said why (R211)."""
UNITS_AFTER_NUMBER = {"s", "m", "h", "d", "w", "wk", "wks"}  # "10 m", "1 w": time after a number
HMS_UNITS = {
    "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "hr", "hrs", "hour",
    "hours",
}  # fmt: skip
SPAN_UNITS = HMS_UNITS | UNITS_AFTER_NUMBER | {
    "day", "days", "week", "weeks", "month", "months", "year", "years",
}  # fmt: skip
"""The words after a number that make it a span ("5 minutes", "2 wks"), not a date."""
CONNECTORS = {"in", "at", "on", "and", "a", "an", "next", "this", "of", "the"}
"""Words between the parts of a time, which are no part of the reminder on their own."""

_DECIMAL = re.compile(r"[0-9]*\.[0-9]+")  # "1.5", and ".5" (R187: "in .5 hours" was May)
_DAY_MONTH_OR_CLOCK = re.compile(r"[0-9]{1,2}\.[0-9]{2}")  # "24.12", "9.30"
_SIGNED_WORD = re.compile(r"[-+#\u2116\u2212]\d+(\.\d+)?")  # "-10", "+1", "#1", "№1"
_MARKS = ",:;!?()[]{}\"'“”‘’«»"
"""Punctuation around a word that is not part of it ("in 5: call", "(5)"); a full stop is
not among them: "1.5." and "24.12." are dates."""
_UNIT_AFTER = (
    r"(?:secs?|seconds?|mins?|minutes?|hrs?|hours?|days?|weeks?|wks?|months?|years?|[smhdw])"
)
# "-1", "+1", "#1", "№1", "\u2212 1" (U+2212, a minus sign), "march - 1"; not "+1 day" (a
# span), "+01:00" (a zone's offset) nor "2026-12-24"
_SIGNED_NUMBER = re.compile(
    rf"(?<![^\s(\[\"'“‘«])(?:[#\u2116\u2212]\s*\d|-\s+\d|"
    rf"[-+]\d+(?:\.\d+)?[.,:;!?)\]\"'”’»]*(?!\S)(?!\s+{_UNIT_AFTER}\b))",
    re.I,
)
_CLOCK_TIME = (
    r"\d{1,2}:\d{2}(?::\d{2})?(?:\s*(?:am|pm|a\.m\.|p\.m\.))?|\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)"
)
# "-0500", "+05:30", "+05", "UTC+5", "GMT-03:00"; not "-10" ("at 7 -10 degrees jacket")
_OFFSET = r"(?:utc|gmt)[+-]\d{1,2}(?::?[0-5]\d)?|[+-](?:0\d|1[0-4]):?[0-5]\d|[+-]0\d"
_OFFSET_WORD = re.compile(rf"(?:{_OFFSET}),?", re.I)
_AM_PM = r"(?:\s*(?:am|pm|a\.m\.|p\.m\.))?"
# a clock as written before a zone's offset: "9:00", "9am", and "9.30", "noon", "midnight" (R191)
_WRITTEN_CLOCK = rf"{_CLOCK_TIME}|(?:[01]?\d|2[0-3])\.[0-5]\d{_AM_PM}|\bnoon\b|\bmidnight\b"
_OFFSET_AFTER_CLOCK = re.compile(
    rf"(?<![\d:.])({_WRITTEN_CLOCK})\s+(?:{_OFFSET})(?=$|\s|[{re.escape(_MARKS)}.])", re.I
)
"""A zone's offset after a clock ("9:00 -0500", "18:00 +05:30", "9am UTC+5", "noon -0500:"),
which dateparser reads: not a signed number (R187: "-0500" was refused, and the reminder set
at 9:00 Berlin time with the text "-0500 standup"; R191: after "9.30", "noon" or "midnight",
or with a ":" or "." after it, it was refused still: "noon -0500 call mom" was 18:00)."""
_STOP_AFTER_OFFSET = re.compile(rf"(?<![\d:.])({_WRITTEN_CLOCK})\s+({_OFFSET})\.+(?=$|\s)", re.I)
_LONE_SIGN = re.compile(r"([-+])(\d{1,2})")
_CLOCK_WORD = re.compile(rf"(?:{_WRITTEN_CLOCK})", re.I)
# what is left of a time of day once its numbers are taken as a clock: "13 13 at 9:00" is
# the bare numbers "13 13" (R187: 13 March 2113); "9.30" can only be a clock, "10.10" a date
_CLOCKS_OUT = re.compile(
    rf"(?<![\d:.])(?:{_CLOCK_TIME}|(?:[01]?\d|2[0-3])\.(?:1[3-9]|[2-5]\d))(?![\d:.])|"
    r"\b(?:noon|midnight)\b",
    re.I,
)


def _is_decimal(word: str) -> bool:
    """A decimal that is no day and month nor clock ("1.5", ".5"; not "24.12", "9.30")."""
    return bool(_DECIMAL.fullmatch(word)) and not _DAY_MONTH_OR_CLOCK.fullmatch(word)


_PLUSES = "\uff0b\ufe62\u2795"
_UNICODE_SIGN = re.compile(rf"(?<!\S)[\u2010-\u2015\u2212\ufe63\uff0d\u2796{_PLUSES}](?=\d)")


def is_zone_offset(word: str) -> bool:
    """Whether a word is a zone's offset ("-0500", "+05:30", "UTC+5"), read after a clock
    ("9:00 -0500", R187)."""
    return bool(_OFFSET_WORD.fullmatch(word))


def no_zone_in_a_repeat(rest: list[str]) -> None:
    """A zone written after a repeating reminder's time ("every monday 9:00 -0500 standup",
    "every day 9:00 +2 call mom") is refused: the repeat goes by the person's timezone, and
    the offset was left in the text, the reminder set at 9:00 there (R192)."""
    first = rest[0].strip(_MARKS + ".") if rest else ""
    sign = _LONE_SIGN.fullmatch(first)
    phone = len(rest) > 1 and rest[1][:1].isdigit()  # "+1 555 1234": a country code
    if is_zone_offset(first) or (sign is not None and int(sign[2]) <= 14 and not phone):
        raise WhenError(
            f"“{first}”: a repeating reminder goes by your timezone (/timezone), not a zone "
            "written after its time. For example “every monday 9:00 standup”."
        )


def ascii_signs(text: str) -> str:
    """The text with a minus or plus written as another character (U+2212, the en dash, the
    full-width signs) as ASCII where a word is a sign and digits, as a zone's offset or a
    signed number is written: "9:00 <U+2212>0500 call" was set at 9:00 with the offset left in
    its text, and "every monday 9:00 <U+2212>0500" not refused as "-0500" is."""
    return _UNICODE_SIGN.sub(lambda m: "+" if m[0] in _PLUSES else "-", text)


def no_time_range(words: list[str]) -> None:
    """A time range written as one word ("9:00-10:00", "9am-10am", with an en dash too) is
    refused: one reminder goes at one time. R200: "tomorrow 9:00-10:00 dentist" was set at
    20:00, the end read as the zone UTC-10. An offset written onto its clock ("9:00-0500",
    "18:00-05:00": the second time earlier than the first) is still read as one."""
    for word in words:
        found = _RANGE.fullmatch(word.strip(_MARKS))
        if found is None:
            continue
        hour, minutes, half, to_hour, to_minutes, to_half = found.groups()
        if not (minutes or half):
            continue  # "10-12" may be a date
        if to_minutes is not None and not to_minutes.startswith(":"):
            continue  # "9:00-0500": the zone's offset written without its colon
        start, end = _hour(hour, half), _hour(to_hour, to_half)
        if start is None or end is None or end <= start:
            continue
        raise WhenError(
            f"“{word}” is a span of time; a reminder goes at one time. For example "
            f"“tomorrow {hour}{minutes or ''}{half or ''} dentist”."
        )


_RANGE = re.compile(
    r"(\d{1,2})(:[0-5]\d)?\s*(am|pm)?[-\u2010-\u2015\u2212](\d{1,2})(:?[0-5]\d)?\s*(am|pm)?", re.I
)


def _hour(hour: str | None, half: str | None) -> int | None:
    """A range end's hour on the 24-hour clock, or None when it is no hour."""
    if hour is None or int(hour) > 23:
        return None
    value = int(hour)
    if half and half.lower() == "pm" and value < 12:
        value += 12
    return value


def no_stop_after_offset(text: str) -> str:
    """The text without a full stop after a clock's zone offset ("9:00 +0100." as "9:00
    +0100"): dateparser read "+0100." as the year 100, so the reminder was refused as past, or
    set at 9:00 with the offset in its text (R191)."""
    return _STOP_AFTER_OFFSET.sub(r"\1 \2", text)


def needs_a_unit(word: str) -> bool:
    """Whether a word is a signed number or a decimal ("-10", "#1", "1.5"; not "24.12"): part
    of a time only with a unit after it ("+1 day"), else the text's ("at 7 -10 degrees")."""
    return bool(_SIGNED_WORD.fullmatch(word)) or _is_decimal(word)


def not_a_date(text: str) -> bool:
    """Whether the words are numbers dateparser would make a date of, and no one means as one
    (R186): a negative ("-1" was January), a number with a sign ("#1"), a digit that is not
    0-9 ("²" was February), a decimal without a unit ("1.5" was 1 May; "24.12", "1.5." and
    "in 1.5 hours" are still read), or bare numbers with no month and no / . - between them
    ("13 13" was 13 December 2113, "1 2" 2 January, "2 3" 3 February), also with a clock or
    punctuation beside them ("13 13 at 9:00", "13 13.", R187). A zone's offset after a clock
    ("9:00 -0500") and a signed span ("+1 day") are read."""
    text = _OFFSET_AFTER_CLOCK.sub(lambda m: m[1], text)
    if any(ch.isnumeric() and not ch.isascii() for ch in text) or _SIGNED_NUMBER.search(text):
        return True
    words = [w.lower().strip(_MARKS) for w in text.split()]
    for word, following in zip(words, [*words[1:], ""], strict=True):
        if _is_decimal(word) and following.rstrip(".") not in SPAN_UNITS:
            return True
    rest = _CLOCKS_OUT.sub(" ", text.rstrip(_MARKS + "."))
    said = [w.lower().strip(_MARKS) for w in rest.split()]
    said = [w for w in said if w and w not in CONNECTORS]
    return bool(said) and all(ASCII_NUMBER.fullmatch(w) for w in said)


_NUMBER_IN_MARKS = re.compile(r"[(\[\"'“‘«]*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)[.,:;!?)\]\"'”’»]*")
_UNIT_NAMES = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")
_ABBREVIATED_UNITS = {
    "mo": "months", "mos": "months", "mth": "months", "mths": "months", "yr": "years",
    "yrs": "years",
}  # fmt: skip
_NEAR_UNITS = _ABBREVIATED_UNITS | {
    "sekunde": "seconds", "sekunden": "seconds", "stunde": "hours",
    "stunden": "hours", "tage": "days", "tagen": "days", "woche": "weeks", "wochen": "weeks",
    "monat": "months", "monate": "months", "monaten": "months", "jahr": "years",
    "jahre": "years", "jahren": "years",
}  # fmt: skip
"""Words that are units, though not ones dateparser reads ("in 2 yrs", "in 5 Minuten")."""


def unit_word(word: str) -> str:
    """A word as a unit is checked: without the punctuation and quotes around it, and without a
    possessive's ("in 2 weeks' time", "in a week's time", R187)."""
    word = word.lower().strip(_MARKS + ".")
    return word[:-2] if word.endswith(("'s", "’s")) else word.rstrip("'’")


def _near_unit(word: str) -> str | None:
    """The unit (plural) a word nearly is ("yrs", "mo", "mintues", "Minuten"), or None: the
    example asked for puts it there, not "in 2 minutes yrs pay" (R187)."""
    if word in _NEAR_UNITS:
        return _NEAR_UNITS[word]
    if len(word) < 4:
        return None
    for name in _UNIT_NAMES:
        close = difflib.SequenceMatcher(None, word, name).ratio() >= 0.85
        if close and word[0] == name[0]:
            return name
    return None


def no_number_alone_after_in(tokens: list[str], unit: str, reminder: str | None = None) -> None:
    """ "in 5 call mom" was 7 May and "in 10 tea" 7 October (dateparser took the number for a
    month): a number after "in" with no unit is asked about, with `unit` in the example (R186)
    and, for a reminder, what follows the number (or `reminder`, when nothing does) after it.
    The number may be in punctuation ("in 5. call", "in (5) call", R187)."""
    if len(tokens) < 2 or tokens[0].lower() != "in":
        return
    shaped = _NUMBER_IN_MARKS.fullmatch(tokens[1])
    if shaped is None:
        return
    number = shaped[1]
    following = unit_word(tokens[2]) if len(tokens) > 2 else ""
    if following in SPAN_UNITS or following in MONTHS or following in ("and", "or"):
        return  # "in 5 minutes", "in 5 march"; "in 2 and a half hours" is read (or not) as said
    if is_half(following):
        return
    rest = tokens[2:]
    if (near := _near_unit(following)) is not None:  # "in 2 yrs": "in 2 years", not "2 minutes yrs"
        unit, rest = near[:-1] if number == "1" else near, rest[1:]
    tail = (" ".join(rest) or reminder) if reminder is not None else ""
    tail = f" {tail}" if tail else ""
    if len(number) == 4:  # "in 2027": a year, and no day in it
        raise WhenError(f"Which day in {number}? For example “1 march {number}{tail}”.")
    asked = f"In {number} what? For example “in {number} {unit}{tail}”."
    raise WhenError(f"{asked}\n{ENGLISH_ONLY}" if _other_language(following) else asked)


def _other_language(word: str) -> bool:
    """Whether a word after "in <number>" is a unit in another language ("Stunden", "часа"):
    the question then says times are read in English (R211: "in 2 Stunden" was asked "In 2
    what?" alone). "in 5 call" is asked as before."""
    foreign = word in _NEAR_UNITS and word not in _ABBREVIATED_UNITS
    return foreign or any(char.isalpha() and not char.isascii() for char in word)


def no_numbers_dropped(tokens: list[str], end: int, refused: int) -> None:
    """A time read from fewer words than a longer phrase refused as numbers that are no date
    is refused too, when the words left out have a number in them ("tomorrow -1 test"): so
    "tomorrow 9:00 -0500 standup" was set at 9:00 with the text "-0500 standup", the offset
    quietly dropped (R187; an offset after a clock is read now)."""
    left_out = tokens[end:refused]
    if any(ch.isnumeric() for word in left_out for ch in word):
        raise WhenError(
            f"I couldn't read “{' '.join(tokens[:refused])}” as a time: “{' '.join(left_out)}” "
            "is no date or clock I know. For example “tomorrow 9:00 call mom”."
        )


def no_lone_sign_after_a_clock(tokens: list[str], end: int) -> None:
    """A sign and one or two digits just after the clock a time ends with ("9:00 +2 call mom",
    "noon -1 call mom") is asked about as a zone: it was set at 9:00 with the text "+2 call
    mom" (R191), and dateparser read it as no zone (it took "+2" for February, or two hours). A
    zone's offset ("+02", "+02:00") is read; "+1 day" is a span; "+20" is no zone, the text's."""
    if end >= len(tokens) or end == 0:
        return
    sign = _LONE_SIGN.fullmatch(tokens[end].strip(_MARKS + "."))
    if sign is None or _OFFSET_WORD.fullmatch(sign[0]) or int(sign[2]) > 14:
        return  # "+05" is read; no zone is more than 14 hours from UTC ("+20 pushups")
    if end + 1 < len(tokens) and tokens[end + 1][:1].isdigit():
        return  # a phone number's country code: "9:00 +1 555 1234 call bob" (R192)
    said = (" ".join(tokens[end - n : end]).strip(_MARKS) for n in (1, 2) if end >= n)
    clock = next((words for words in said if _CLOCK_WORD.fullmatch(words)), None)
    if clock is not None:  # "9:00", "9 am", "noon"
        raise WhenError(
            f"“{sign[0]}” after {clock}: a zone? Write it as “{clock} {sign[1]}"
            f"{int(sign[2]):02d}:00”, or “{clock} UTC{sign[0]}”."
        )
