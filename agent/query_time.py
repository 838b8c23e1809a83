"""Dates and periods named in a search query, as a time range in the owner's timezone.

(Over 400 lines: one pattern finds every phrase, and each kind of period it names has its
own small reader beside it; they share that pattern and the calendar helpers.)

"What did I tell you about the roof in May?" names a period (the most recent May not in the
future, the whole month), not a day. So do "on 6 September", "last week", "yesterday", "two
months ago", "in 2025", "last summer", "since March", "between May and July", "Q1", "last
quarter", and "a year ago" (the month it was then, with the month either side). The range is
handed to memory search, which prefers hits inside it without dropping the others.

Cost on the hot path (every turn's recall runs this): a compiled regex finds the phrases that
can name a date (a few microseconds, nothing else runs when none is found); only the phrase
itself goes to dateparser, with its language pinned to English (`languages=['en']`: language
detection costs ~40 ms a call), ~0.5 ms. dateparser and its English data are loaded by the first
query that may name a date (~0.2 s, 16 MiB held from then on): `cold(query)` says a call would
load them, and the caller then runs it in a worker thread. Not at start-up: most starts are
followed by idle, and the memory is better not held before it is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from zoneinfo import ZoneInfo

__all__ = ["QueryTime", "cold", "find_period", "warm_up"]

_loaded = False  # dateparser and its English data are in (the first parse loads them)

_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
_MONTH = rf"(?:{_MONTHS})\.?"
_ORD = r"\d{1,2}(?:st|nd|rd|th)?(?!\d)"
_YEAR = r"(?:19|20)\d{2}(?!\d)"
_NUMBER = (
    r"\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"a\s+couple\s+of|a\s+few|few|several"
)
_UNIT = r"(?:day|week|fortnight|month|year)s?"
_WEEKDAY = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
_SEASON = r"(?:spring|summer|autumn|fall|winter)"
_PART = r"(?:early|mid|late|(?:the\s+)?(?:end|beginning|start)\s+of)"
_QUARTER = (
    rf"(?:q[1-4]|(?:the\s+)?(?:first|second|third|fourth|1st|2nd|3rd|4th)\s+quarter)"
    rf"(?:,?\s+(?:of\s+)?{_YEAR})?"
    r"|(?:last|this|previous|the\s+last|the\s+previous)\s+quarter"
)

# One phrase that names a point or a period of time. Alternatives are tried in order, longest
# forms first.
_PHRASE = (
    rf"(?:the\s+)?{_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR})?"  # 6 September (2025)
    rf"|{_MONTH}\s+{_ORD}(?:,?\s+{_YEAR})?"  # September 6th (, 2025)
    rf"|{_YEAR}-\d{{1,2}}-\d{{1,2}}"  # 2025-05-14
    r"|\d{1,2}/\d{1,2}(?:/\d{2,4})?(?![\d/])|\d{1,2}\.\d{1,2}\.\d{2,4}(?!\d)"  # 14/05/2025
    rf"|(?:{_PART}[\s-]+)?(?:(?:last|this)\s+)?{_MONTH}(?:\s+(?:of\s+)?{_YEAR}|\s+last\s+year)?"
    rf"|(?:(?:last|this|the|past)\s+)?{_SEASON}(?:\s+(?:of\s+)?{_YEAR})?"
    r"|the\s+day\s+before\s+yesterday|yesterday|today|tonight|last\s+night"
    r"|this\s+(?:morning|afternoon|evening)"
    rf"|(?:(?:last|this|on|past)\s+)?{_WEEKDAY}"
    rf"|(?:{_NUMBER})\s+{_UNIT}\s+ago"
    rf"|{_QUARTER}"
    r"|the\s+(?:week|month|year)\s+before\s+last"
    rf"|(?:the\s+)?(?:last|past)\s+(?:{_NUMBER})\s+{_UNIT}"
    r"|(?:last|this|past|previous|the\s+past|the\s+last)\s+(?:weekend|week|month|year)"
    rf"|{_YEAR}"
)
_LEAD = r"(?:since|after|from|before|until|till|by|between|in|on|during|of|over|around)"
_FIND = re.compile(
    rf"(?<![\w-])(?:(?P<lead>{_LEAD})\s+(?:the\s+)?)?(?P<phrase>{_PHRASE})(?![\w-])",
    re.IGNORECASE,
)
_QUICK = re.compile(
    rf"\d|\b(?:{_MONTHS}|{_WEEKDAY}|{_SEASON}|yesterday|today|tonight|ago|last|this|past"
    r"|previous|week|weekend|month|year|quarter)\b",
    re.IGNORECASE,
)
# Words that are also months: a bare "may" or "march" counts only after one of these words
# (or written "May" in the middle of a sentence).
_AMBIGUOUS = {"may", "march", "mar", "jan", "dec", "sep", "aug", "jun", "oct"}
_TO_COME_BEFORE = re.compile(r"(?<![\w-])(?:next|coming|upcoming)\s+$", re.IGNORECASE)
_TO_COME_AFTER = re.compile(r"\s+after\s+next(?![\w-])", re.IGNORECASE)
"""Words that put the phrase beside them in the future: "next Tuesday", "the coming Friday",
"Tuesday after next" (R212: each was read as the last one)."""
_QUARTER_OF = re.compile(r"\s+of\s+(?!(?:19|20)\d\d)")
_MAX_PHRASES = 8
"""Phrases read, in order, for the first that names a past period. R221: a message of 4 KB of
future dates ("jan 1 2027 jan 2 2027 …") had all its ~350 phrases read by dateparser, a second
on the event loop in every turn's recall; a question names its period among its first few."""
_MAX_READ = 4096
"""Characters of a query searched for phrases (a Telegram message's most): each costs some
microseconds of `_FIND`, on the event loop, and a longer message (Slack's) names its period
within them or is no question (R221)."""
_SEASON_MONTHS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}
_WORD_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "few": 3,
    "several": 4,
}


@dataclass(frozen=True)
class QueryTime:
    """The time a query names: `since` (inclusive) and `until` (exclusive), timezone-aware UTC;
    either may be None for an open end ("since March"). `phrase` is the query's own words for
    it, `rest` the query without them (for the words-and-meaning part of a search)."""

    since: datetime | None
    until: datetime | None
    phrase: str
    rest: str
    # day, week, weekend, month, quarter, year, season, range, rolling, around, part_of_month
    period: str

    def contains(self, moment: datetime) -> bool:
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until

    def describe(self, timezone: str = "UTC") -> str:
        """The range in words, in `timezone` ("2026-05-01 to 2026-05-31")."""
        zone = ZoneInfo(timezone)
        start = f"{self.since.astimezone(zone):%Y-%m-%d}" if self.since else "the beginning"
        end = (
            f"{(self.until.astimezone(zone) - timedelta(seconds=1)):%Y-%m-%d}"
            if self.until
            else "now"
        )
        return start if start == end else f"{start} to {end}"


@dataclass(frozen=True)
class _Span:
    start: datetime  # local, naive
    end: datetime
    period: str


def warm_up() -> None:
    """Load dateparser's English data (~0.2 s the first time); call it in a worker thread."""
    _parse("6 September", datetime(2026, 1, 1))


def cold(query: str) -> bool:
    """Whether `find_period(query)` would load dateparser first (~0.2 s: run it in a thread).
    Only a query that names a plausible date gets that far: one with a digit alone (a number,
    a code) is answered by the regular expressions, on the loop, without a trip to a thread."""
    if _loaded or not _QUICK.search(query):
        return False
    return any(_plausible(query, m) for m in _FIND.finditer(query, 0, _MAX_READ))


def find_period(query: str, *, now: datetime, timezone: str = "UTC") -> QueryTime | None:
    """The period `query` names, in `timezone` (an IANA name), relative to `now`; None when it
    names none. A named day, month or season is the most recent one not in the future. A period
    to come ("next Tuesday", "this Friday" on a Thursday, "in 2030") is none: memories are dated
    when they were said, so it would only rank the past wrongly (R212); the next phrase is read."""
    if not _QUICK.search(query):
        return None
    zone = ZoneInfo(timezone)
    # To the minute: relative phrases mean the same for a minute, and the parse is cached.
    local_now = now.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    plausible = (m for m in _FIND.finditer(query, 0, _MAX_READ) if _plausible(query, m))
    matches = list(islice(plausible, _MAX_PHRASES + 1))  # one more: "between May and June"
    found = _first_past(matches, local_now)
    if found is None:
        return None
    span, matches = found
    first = matches[0]
    lead = (first["lead"] or "").lower()
    start: datetime | None = span.start
    end: datetime | None = span.end
    period = span.period
    used = [first]
    second = matches[1] if len(matches) > 1 else None
    joined = (
        second is not None
        and lead in ("between", "from")
        and re.fullmatch(r"\s*(?:and|to|until|till|-)\s*", query[first.end() : second.start()])
    )
    if joined and second is not None:
        other = _span(second["phrase"], local_now)
        if other is not None:
            if other.end <= span.start:  # "from November to February": the earlier November
                span = _span(first["phrase"], other.start) or span
            start, end, period = span.start, max(other.end, span.end), "range"
            used.append(second)
    elif lead in ("since", "from"):
        end, period = None, "range"
    elif lead == "after":
        start, end, period = span.end, None, "range"
    elif lead == "before":
        start, end, period = None, span.start, "range"
    elif lead in ("until", "till", "by"):
        start, period = None, "range"
    rest = query[: used[0].start()] + " " + query[used[-1].end() :]
    rest = re.sub(r"\s+(?=[?.!,;:])", "", " ".join(rest.split())).strip(" ,")
    phrase = query[used[0].start() : used[-1].end()].strip()
    return QueryTime(
        since=_utc(start, zone) if start is not None else None,
        until=_utc(end, zone) if end is not None else None,
        phrase=phrase,
        rest=rest,
        period=period,
    )


def _first_past(
    matches: list[re.Match[str]], now: datetime
) -> tuple[_Span, list[re.Match[str]]] | None:
    """The span of the first phrase that names a period begun by `now` (local), and the
    matches from that phrase on; None when none of the first `_MAX_PHRASES` does."""
    for index, match in enumerate(matches[:_MAX_PHRASES]):
        span = _span(match["phrase"], now)
        if span is not None and span.start <= now:
            return span, matches[index:]
    return None


def _plausible(query: str, match: re.Match[str]) -> bool:
    """A bare "may" (or "march") is a month only after a word such as "in", or capitalised in
    the middle of a sentence: "May I ask…" and "you may" name no date."""
    phrase = match["phrase"]
    words = phrase.lower().rstrip(".").split()
    # R221: read where the match is, never the whole text before or after it (once a match,
    # that was quadratic: 4 KB of "q1 q1 …" took 0.1 s on the event loop)
    before = match.start()  # the end of the text before, its whitespace left out
    while before and query[before - 1].isspace():
        before -= 1
    to_come = _TO_COME_BEFORE.search(query, max(0, before - len("upcoming")), match.start())
    if not match["lead"] and to_come:
        return False  # "next Tuesday", "the coming Friday", "next June": no past one (R212)
    if _TO_COME_AFTER.match(query, match.end()):
        return False  # "Tuesday after next"
    if len(words) == 1 and words[0] in _AMBIGUOUS:
        if match["lead"]:
            return True
        return phrase[0].isupper() and before > 0 and query[before - 1] not in ".!?"
    if "quarter" in words[-1] and _QUARTER_OF.match(query, match.end()):
        return False  # "the third quarter of the game", "this quarter of the cake"
    if _NAMED_QUARTER.fullmatch(phrase) and not match["lead"]:
        return False  # "the q1 register", "Q4 plans": a name, not a time, without "in"
    # "2024" alone is too often a number, "spring" or "fall" not a season
    bare = len(words) == 1 and not match["lead"]
    return not (bare and re.fullmatch(rf"{_YEAR}|{_SEASON}", words[0]))


def _span(phrase: str, now: datetime) -> _Span | None:
    text = " ".join(phrase.lower().replace("-", " ").split())
    return _cached_span(text, now)


@lru_cache(maxsize=512)
def _cached_span(text: str, now: datetime) -> _Span | None:
    today = datetime(now.year, now.month, now.day)
    if text in ("last night", "tonight", "this morning", "this afternoon", "this evening"):
        day = today - timedelta(days=1) if text == "last night" else today
        return _Span(day, day + timedelta(days=1), "day")
    if text.endswith("weekend"):
        saturday = today - timedelta(days=(today.weekday() - 5) % 7 or 7)
        if text.startswith("this") and today.weekday() >= 5:
            saturday = today - timedelta(days=today.weekday() - 5)
        return _Span(saturday, saturday + timedelta(days=2), "weekend")
    rolling = re.fullmatch(rf"(?:the )?(?:last|past) ({_NUMBER}) ({_UNIT})", text)
    if rolling:
        count = _count(rolling[1])
        return _Span(now - _length(rolling[2], count), now, "rolling")
    if text in ("past week", "the past week", "past month", "the past month", "past year"):
        return _Span(now - _length(text.rsplit(" ", 1)[1], 1), now, "rolling")
    before_last = re.fullmatch(r"the (week|month|year) before last", text)
    if before_last:
        text = f"2 {before_last[1]}s ago"
    season = re.fullmatch(rf"(last |this |the )?({_SEASON})(?: (?:of )?({_YEAR}))?", text)
    if season:
        span = _season(season[2], int(season[3]) if season[3] else None, now)
        if season[1] == "last " and not season[3] and span.start <= now < span.end:
            span = _season(season[2], span.start.year - 1, now)  # R142: not the one we are in
        return span
    quarter = _quarter(text, now)
    if quarter is not None:
        return quarter
    ago = re.fullmatch(rf"({_NUMBER}) ({_UNIT}) ago", text)
    if ago:
        if ago[2].startswith("year"):  # "a year ago": around that time, not that whole year
            return _around(now, _count(ago[1]))
        text = f"{_count(ago[1])} {ago[2]} ago"
    text = text.replace("previous ", "last ").replace("fortnight", "2 weeks")
    part = re.match(rf"({_PART}) ", text)
    if part:
        text = text[part.end() :]
    named = re.match(rf"last ({_MONTHS})\.?$", text)
    if named and _month_number(named[1]) == now.month:  # R142: "last March" in March
        text = f"{named[1]} {now.year - 1}"
    text = re.sub(rf"^(?:last|this) (?=(?:{_MONTHS})\b)", "", text)
    last_year = text.endswith(" last year")
    if last_year:
        text = f"{text[: -len(' last year')]} {now.year - 1}"
    text = re.sub(r"^on ", "", text)
    found = _parse(text, now)
    if found is None:
        return None
    moment, period = found
    span = _unit_span(moment, period)
    if span is not None and part:
        span = _part_of(span, part[1])
    return span


def _parse(text: str, now: datetime) -> tuple[datetime, str] | None:
    from dateparser.date import DateDataParser

    parser = DateDataParser(
        languages=["en"],
        settings={
            "PREFER_DATES_FROM": "past",
            "RELATIVE_BASE": now,
            "PREFER_DAY_OF_MONTH": "first",
            "RETURN_TIME_AS_PERIOD": True,
            # a label for the naive arithmetic only: without it dateparser asks tzlocal for the
            # process's zone, which raises for a POSIX TZ such as UTC0 (R259)
            "TIMEZONE": "UTC",
        },
    )
    data = parser.get_date_data(text)
    global _loaded
    _loaded = True
    if data.date_obj is None:
        return None
    return data.date_obj.replace(tzinfo=None), data.period or "day"


def _unit_span(moment: datetime, period: str) -> _Span | None:
    day = datetime(moment.year, moment.month, moment.day)
    if period in ("day", "part_of_day", "time"):
        return _Span(day, day + timedelta(days=1), "day")
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return _Span(monday, monday + timedelta(days=7), "week")
    if period == "month":
        first = datetime(moment.year, moment.month, 1)
        return _Span(first, _add_months(first, 1), "month")
    if period == "year":
        return _Span(datetime(moment.year, 1, 1), datetime(moment.year + 1, 1, 1), "year")
    return None


def _part_of(span: _Span, part: str) -> _Span:
    """Early May: the 1st to the 10th; mid-May: 11th to 20th; late May: the 21st on."""
    if span.period != "month":
        return span
    start = span.start
    if part in ("early", "the beginning of", "beginning of", "the start of", "start of"):
        return _Span(start, start.replace(day=11), "part_of_month")
    if part == "mid":
        return _Span(start.replace(day=11), start.replace(day=21), "part_of_month")
    return _Span(start.replace(day=21), span.end, "part_of_month")


def _month_number(name: str) -> int:
    return datetime.strptime(name[:3].title(), "%b").month


def _season(name: str, year: int | None, now: datetime) -> _Span:
    """Meteorological seasons (northern hemisphere); the most recent one not in the future
    (winter 2025 is December 2025 to February 2026)."""
    month = _SEASON_MONTHS[name]
    if year is None:
        year = now.year
        if datetime(year, month, 1) > now:
            year -= 1
    start = datetime(year, month, 1)
    return _Span(start, _add_months(start, 3), "season")


_ORDINALS = {
    "first": 1,
    "1st": 1,
    "second": 2,
    "2nd": 2,
    "third": 3,
    "3rd": 3,
    "fourth": 4,
    "4th": 4,
}
_NAMED_QUARTER = re.compile(
    r"(?:the\s+)?(?:q[1-4]|(?!(?:last|this|previous)\b)\w+\s+quarter)", re.IGNORECASE
)
"""A quarter by its name alone ("Q1", "the third quarter"): a period only after a word such
as "in", or with its year ("the q1 register", "the third quarter" of a game name none)."""


def _quarter(text: str, now: datetime) -> _Span | None:
    """Q1 (Jan-Mar), "the third quarter (of 2025)", "last quarter", "this quarter": calendar
    quarters; a quarter named without its year is the most recent one begun."""
    current = (now.month - 1) // 3 + 1
    relative = re.fullmatch(r"(?:the )?(last|this|previous) quarter", text)
    if relative:
        index = now.year * 4 + current - 1 - (relative[1] != "this")
        start = datetime(index // 4, index % 4 * 3 + 1, 1)
        return _Span(start, _add_months(start, 3), "quarter")
    named = re.fullmatch(rf"(?:q([1-4])|(?:the )?(\w+) quarter)(?:,? (?:of )?({_YEAR}))?", text)
    if named is None:
        return None
    number = int(named[1]) if named[1] else _ORDINALS.get(named[2] or "", 0)
    if not number:
        return None
    year = int(named[3]) if named[3] else now.year - (number > current)
    start = datetime(year, number * 3 - 2, 1)
    return _Span(start, _add_months(start, 3), "quarter")


def _around(now: datetime, years: int) -> _Span:
    """N years ago: the month it was then, with the month before and after it."""
    month = datetime(now.year - years, now.month, 1)
    return _Span(_add_months(month, -1), _add_months(month, 2), "around")


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)


def _count(word: str) -> int:
    word = " ".join(word.split())
    if word.isdigit():
        return int(word)
    if word == "a couple of":
        return 2
    if word == "a few":
        return 3
    return _WORD_NUMBERS.get(word, 1)


def _length(unit: str, count: int) -> timedelta:
    unit = unit.rstrip("s")
    days = {"day": 1, "week": 7, "fortnight": 14, "month": 30, "year": 365}[unit]
    return timedelta(days=days * count)


def _utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)
