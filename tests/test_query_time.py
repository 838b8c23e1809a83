"""Dates and periods named in a search query (agent/query_time.py): periods, not days; the
owner's timezone; no date, no filter; and the cost per query, printed as a budget."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.query_time import QueryTime, find_period, warm_up

ROOT = Path(__file__).resolve().parent.parent

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)  # a Friday


def period(query: str, *, now: datetime = NOW, tz: str = "UTC") -> QueryTime:
    found = find_period(query, now=now, timezone=tz)
    assert found is not None, f"no period found in {query!r}"
    return found


def days(found: QueryTime) -> tuple[str, str]:
    """The first and last calendar day of the range, in UTC."""
    first, _, last = found.describe("UTC").partition(" to ")
    return first, last or first


def test_a_month_is_the_whole_month_the_most_recent_one_not_in_the_future() -> None:
    found = period("What did I tell you about the roof in May?")
    assert found.since == datetime(2026, 5, 1, tzinfo=UTC)
    assert found.until == datetime(2026, 6, 1, tzinfo=UTC)
    assert found.period == "month"
    assert found.phrase == "in May"
    assert found.rest == "What did I tell you about the roof?"
    # In April 2027, "May" is May 2026: the most recent May not in the future.
    april = period("in May", now=datetime(2027, 4, 10, tzinfo=UTC))
    assert (april.since, april.until) == (
        datetime(2026, 5, 1, tzinfo=UTC),
        datetime(2026, 6, 1, tzinfo=UTC),
    )
    # During May itself, "in May" is this May.
    during = period("in May", now=datetime(2026, 5, 20, tzinfo=UTC))
    assert during.since == datetime(2026, 5, 1, tzinfo=UTC)


def test_a_named_day_and_a_day_with_its_year() -> None:
    found = period("what course did she sign up for on 6 September?")
    assert (found.since, found.until) == (
        datetime(2026, 9, 6, tzinfo=UTC),
        datetime(2026, 9, 7, tzinfo=UTC),
    )
    assert found.period == "day"
    assert days(period("the meeting on 14 May 2025")) == ("2025-05-14", "2025-05-14")
    assert days(period("notes of 2025-05-14")) == ("2025-05-14", "2025-05-14")
    # 25 December has not come yet this year: last year's.
    assert days(period("what did we eat on Dec 25")) == ("2025-12-25", "2025-12-25")


@pytest.mark.parametrize(
    ("query", "first", "last"),
    [
        ("what did we discuss last week", "2026-11-23", "2026-11-29"),  # Monday to Sunday
        ("yesterday's plan", "2026-12-03", "2026-12-03"),
        ("the day before yesterday", "2026-12-02", "2026-12-02"),
        ("what did I say two months ago", "2026-10-01", "2026-10-31"),
        ("a couple of weeks ago", "2026-11-16", "2026-11-22"),
        ("last weekend", "2026-11-28", "2026-11-29"),
        ("on Tuesday", "2026-12-01", "2026-12-01"),
        ("in 2025", "2025-01-01", "2025-12-31"),
        ("last summer", "2026-06-01", "2026-08-31"),
        ("early May", "2026-05-01", "2026-05-10"),
        ("May last year", "2025-05-01", "2025-05-31"),
        ("between May and July", "2026-05-01", "2026-07-31"),
        ("from November to February", "2025-11-01", "2026-02-28"),
        # a year ago is around that time, not the whole of last year (review 57)
        ("what did I say a year ago", "2025-11-01", "2026-01-31"),
        ("two years ago we talked about tiles", "2024-11-01", "2025-01-31"),
        ("what did we decide in Q1", "2026-01-01", "2026-03-31"),
        ("the Q3 2025 numbers", "2025-07-01", "2025-09-30"),
        ("in the second quarter of 2025", "2025-04-01", "2025-06-30"),
        ("last quarter's sales", "2026-07-01", "2026-09-30"),
        ("this quarter", "2026-10-01", "2026-12-31"),
    ],
)
def test_relative_periods(query: str, first: str, last: str) -> None:
    assert days(period(query)) == (first, last)


@pytest.mark.parametrize(
    ("query", "on", "first", "last"),
    [
        # R142: asked in March, "last March" is a year ago, not this month (with days to come)
        ("what did the roofer tell me last March", "2027-03-15", "2026-03-01", "2026-03-31"),
        ("What did the roofer quote last March.", "2027-03-15", "2026-03-01", "2026-03-31"),
        ("last sept.", "2027-09-03", "2026-09-01", "2026-09-30"),
        ("last spring", "2027-03-15", "2026-03-01", "2026-05-31"),
        ("last summer", "2027-07-01", "2026-06-01", "2026-08-31"),
        ("last July", "2027-07-01", "2026-07-01", "2026-07-31"),
        ("last winter", "2027-01-10", "2025-12-01", "2026-02-28"),
        # other months and seasons, and "this", are as before
        ("last March", "2027-04-02", "2027-03-01", "2027-03-31"),
        ("last March", "2027-02-02", "2026-03-01", "2026-03-31"),
        ("this March", "2027-03-15", "2027-03-01", "2027-03-31"),
        ("in March", "2027-03-15", "2027-03-01", "2027-03-31"),
        ("this spring", "2027-03-15", "2027-03-01", "2027-05-31"),
        ("last spring", "2027-07-01", "2027-03-01", "2027-05-31"),
    ],
)
def test_last_names_the_one_before_the_month_or_season_we_are_in(
    query: str, on: str, first: str, last: str
) -> None:
    now = datetime.fromisoformat(on).replace(hour=9, tzinfo=UTC)
    assert days(period(query, now=now)) == (first, last)


def test_a_quarter_named_alone_is_the_most_recent_one_begun() -> None:
    february = datetime(2027, 2, 10, tzinfo=UTC)
    assert days(period("the plans in Q4", now=february)) == ("2026-10-01", "2026-12-31")
    assert days(period("in Q1", now=february)) == ("2027-01-01", "2027-03-31")
    assert days(period("last quarter", now=february)) == ("2026-10-01", "2026-12-31")
    found = period("what did we decide in Q1 about hiring")
    assert found.period == "quarter" and found.rest == "what did we decide about hiring"
    assert find_period("a quarter of the cake", now=NOW, timezone="UTC") is None
    assert days(period("sales in the 4th quarter")) == ("2026-10-01", "2026-12-31")
    # review 65: a quarter by its name alone is a period only after "in" or with its year
    for words in (
        "the third quarter of the game",
        "the q1 register in the driver code",
        "Q4 plans",
        "this quarter of the cake",
    ):
        assert find_period(words, now=NOW, timezone="UTC") is None, words


def test_open_ranges() -> None:
    since = period("what happened since March")
    assert since.since == datetime(2026, 3, 1, tzinfo=UTC) and since.until is None
    before = period("anything before May?")
    assert before.since is None and before.until == datetime(2026, 5, 1, tzinfo=UTC)


def test_the_owners_timezone_decides_the_day() -> None:
    # 23:30 UTC on 3 December is already 4 December in Tokyo: "yesterday" there is the 3rd,
    # in Tokyo's hours.
    late = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
    utc = period("yesterday", now=late)
    assert utc.since == datetime(2026, 12, 2, tzinfo=UTC)
    tokyo = period("yesterday", now=late, tz="Asia/Tokyo")
    assert tokyo.since == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # 3 Dec 00:00 JST
    assert tokyo.until == datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    assert tokyo.describe("Asia/Tokyo") == "2026-12-03"
    may = period("in May", tz="America/New_York")
    assert may.since == datetime(2026, 5, 1, 4, 0, tzinfo=UTC)  # midnight EDT


@pytest.mark.parametrize(
    "query",
    [
        "what's my sister's name",
        "May I ask about the roof?",
        "you may like this one",
        "spring cleaning tips",
        "the 2024 tax return",
        "roof",
        "",
    ],
)
def test_no_date_no_filter(query: str) -> None:
    assert find_period(query, now=NOW, timezone="UTC") is None


def test_contains() -> None:
    found = period("in May")
    assert found.contains(datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    assert not found.contains(datetime(2026, 6, 1, tzinfo=UTC))
    assert not found.contains(datetime(2026, 4, 30, 23, 59, tzinfo=UTC))


def test_cost_per_query_budget() -> None:
    """Printed, not asserted: the hot path's budget is 2 ms a query (run with -s to see)."""
    warm_up()
    queries = [
        "What did I tell you about the roof in May?",
        "what course did she sign up for on 6 September?",
        "what did we discuss last week",
        "what's my sister's name",
        "remind me what the plumber said",
        "two months ago we talked about tiles",
    ]
    rounds = 200
    started = time.perf_counter()
    for i in range(rounds):
        for query in queries:
            # a new minute every round: the parse cache does not hide dateparser's cost
            find_period(query, now=NOW.replace(minute=i % 60, hour=i // 60), timezone="UTC")
    per_query = (time.perf_counter() - started) / (rounds * len(queries)) * 1000
    started = time.perf_counter()
    for _ in range(rounds):
        find_period("what's my sister's name", now=NOW, timezone="UTC")
    no_date = (time.perf_counter() - started) / rounds * 1000
    print(
        f"\nquery_time: {per_query:.3f} ms per query (mixed, uncached), "
        f"{no_date:.4f} ms for a query naming no date; budget 2 ms"
    )
    assert per_query > 0 and no_date > 0


def test_dateparser_is_loaded_by_the_first_query_that_may_name_a_date_not_before() -> None:
    """16 MiB held from the first date on, not from start-up (issue 19, idle RSS); `cold` tells
    the caller to run that first one in a worker thread (~0.2 s)."""
    probe = (
        "import sys\n"
        "from datetime import datetime\n"
        "import agent.memory_service, agent.recall\n"
        "from agent import query_time\n"
        "assert 'dateparser' not in sys.modules, 'imported at start'\n"
        "assert not query_time.cold('hello there, how are you')\n"
        "now = datetime(2026, 6, 1)\n"
        "for words in ('please call room 42', 'note q1001x5q', 'you may go'):\n"
        "    assert not query_time.cold(words), words  # no date: no trip to a thread\n"
        "    assert query_time.find_period(words, now=now) is None\n"
        "assert 'dateparser' not in sys.modules, 'loaded for a query naming no date'\n"
        "assert query_time.cold('what did I say in May')\n"
        "assert query_time.find_period('what did I say in May', now=datetime(2026, 6, 1))\n"
        "assert 'dateparser' in sys.modules\n"
        "assert not query_time.cold('what did I say in June')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
