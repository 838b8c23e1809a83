"""R221: text from strangers must cost time in proportion to its length, never more. CPython's
`re` holds the interpreter for the whole of one match, so a slow pattern freezes the event loop
even when the parse runs under asyncio.to_thread: the bounds below are what a turn, a mail or
a recall may cost, generous for a loaded machine, and far below what the old patterns took."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness import running_steward

from agent import query_time
from agent.html_text import html_to_text
from agent.mail.message import parse_message
from agent.scheduler import when
from memory.clock import FrozenClock
from memory.people import Identity

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
SPANS = "1s " * 21 + "x"  # 64 characters: 3 to 5 s in the old `_ELAPSED`, each one more x2.3


def _seconds(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    with contextlib.suppress(when.WhenError):
        call()
    return time.perf_counter() - started


async def _worst_stall(work: Callable[[], Any]) -> tuple[Any, float]:
    """`work()`'s result and the longest the event loop went without running meanwhile."""
    worst = 0.0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before)

    beat = asyncio.create_task(heartbeat())
    try:
        result = await work()
    finally:
        done.set()
        await beat
    return result, worst


# -- 1. `_ELAPSED` and the length of a time ---------------------------------------------------


def test_a_run_of_spans_that_ends_in_a_word_is_read_at_once() -> None:
    when.parse_day("tomorrow", NOW, UTC_ZONE)  # dateparser loaded: not timed below
    assert _seconds(lambda: when._ELAPSED.match(SPANS)) < 0.5
    assert _seconds(lambda: when.parse_day(SPANS, NOW, UTC_ZONE)) < 1.0
    assert _seconds(lambda: when.parse_when("1h30 " * 12 + "1", NOW, UTC_ZONE)) < 1.0


@pytest.mark.parametrize(
    "text",
    ["in 2h, 30m and 10s", "1h 30m", "an hour", "half an hour", "45s", "2 hours, 5 minutes"],
)
def test_time_to_wait_still_reads_as_it_did(text: str) -> None:
    assert when._ELAPSED.match(when._normalized(text))
    assert when.parse_moment(text, NOW, UTC_ZONE) > NOW


def test_a_time_longer_than_any_is_refused_unread() -> None:
    long = "tomorrow " + "very " * 50  # 259 characters
    for parse in (when.parse_day, when.parse_when, when.parse_moment):
        with pytest.raises(when.WhenError, match="too long"):
            parse(long, NOW, UTC_ZONE)


async def test_a_guests_goal_due_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    ann = Identity("telegram", "3003")
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.steward.stores.people.admit(ann)
        await h.say("/goal add Learn Go", sender=ann, chat="3003")
        reply, worst = await _worst_stall(
            lambda: h.say(f"/goal due 1 {SPANS}", sender=ann, chat="3003")
        )
        assert worst < 1.0, f"event loop stalled {worst:.2f}s"
        assert "couldn't read" in reply
        reply = await h.say("/goal due 1 " + "1s " * 80, sender=ann, chat="3003")
        assert "too long" in reply


# -- 2. `_HIDING` on a style of spaces --------------------------------------------------------

SPACED = '<span style="opacity:0' + " " * 8100 + 'x">shown</span>'  # under MAX_TAG


def test_a_style_of_spaces_is_read_at_once() -> None:
    took = _seconds(lambda: html_to_text(f"<p>Hello</p>{SPACED * 3}"))
    assert took < 0.5


def test_hiding_styles_read_as_before() -> None:
    page = (
        f"<p>Hello</p>{SPACED}"
        '<span style="opacity : 0   !  important  ;">gone</span>'
        '<span style="font-size:0px ">small</span>'
        '<span style="height:0.00em;width:2px">flat</span>'
        '<span style="opacity:0.5">half</span>'
    )
    text = html_to_text(page)
    assert "shown" in text and "half" in text
    assert not {"gone", "small", "flat"} & set(text.split())


async def test_an_html_mail_read_off_the_loop_does_not_stall_it() -> None:
    raw = (
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello</p>" + SPACED * 5
    ).encode()
    started = time.perf_counter()
    mail, worst = await _worst_stall(lambda: asyncio.to_thread(parse_message, raw))
    assert time.perf_counter() - started < 1.0
    assert worst < 0.5, f"event loop stalled {worst:.2f}s"
    assert "Hello" in mail.text


# -- 3. find_period on a message full of dates ------------------------------------------------

MONTHS = ["jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def _future_dates(limit: int) -> str:
    phrases = (
        f"{month} {day} {year}"
        for year in range(2027, 2100)
        for month in MONTHS
        for day in range(1, 29)
    )
    words: list[str] = []
    for phrase in phrases:
        if sum(map(len, words)) + len(words) + len(phrase) > limit:
            break
        words.append(phrase)
    return " ".join(words)


def test_a_message_of_dates_has_only_its_first_few_read() -> None:
    query_time.warm_up()
    text = _future_dates(4096)
    assert not query_time.cold(text)  # so recall reads it on the event loop
    query_time._cached_span.cache_clear()
    assert query_time.find_period(text, now=NOW, timezone="Europe/Berlin") is None
    assert query_time._cached_span.cache_info().misses <= 8  # was one per date, ~350


def test_a_long_message_of_dates_is_read_quickly() -> None:
    query_time.warm_up()
    text = _future_dates(40_000)  # Slack's messages may be this long
    took = _seconds(lambda: query_time.find_period(text, now=NOW, timezone="Europe/Berlin"))
    assert took < 0.5


def test_a_period_after_a_few_future_dates_is_still_found() -> None:
    text = "between jan 1 2027 and feb 2 2027, or what did we say yesterday?"
    found = query_time.find_period(text, now=NOW, timezone="Europe/Berlin")
    assert found is not None and found.phrase == "yesterday"
    found = query_time.find_period(
        "what did we say between May and June?", now=NOW, timezone="Europe/Berlin"
    )
    assert found is not None and found.period == "range"
