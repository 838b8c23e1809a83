"""Times as people say them (review 80): "/briefing at 7" as "/remind at 8" takes a bare hour;
the days said after the clock ("at 8 on weekdays stand-up") repeat instead of becoming the
reminder's text; and "every evening", "every friday evening", "every night at 11" take the
hours "next friday evening" and "friday night" take once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from harness import running_steward

from agent.scheduler.when import parse_reminder
from memory.clock import FrozenClock

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # Wednesday, 13:00 in Lisbon


async def test_the_briefing_takes_a_bare_hour(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        reply = await h.say("/briefing at 7")
        assert reply.startswith("Your briefing comes every day at 07:00"), reply
        assert "Usage:" in await h.say("/briefing at 25")


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ("at 8 on weekdays stand-up", "every weekday at 08:00, first on Thu 2026-06-11 08:00"),
        ("at 8 every weekday stand-up", "every weekday at 08:00, first on Thu 2026-06-11 08:00"),
        ("on weekdays at 8 stand-up", "every weekday at 08:00, first on Thu 2026-06-11 08:00"),
        ("8:30 on mondays stand-up", "every Monday at 08:30, first on Mon 2026-06-15 08:30"),
        ("at 8pm every sunday stand-up", "every Sunday at 20:00, first on Sun 2026-06-14 20:00"),
        ("every evening stand-up", "every day at 18:00, first on Wed 2026-06-10 18:00"),
        ("every friday evening stand-up", "every Friday at 18:00, first on Fri 2026-06-12 18:00"),
        ("every night at 11 stand-up", "every day at 23:00, first on Wed 2026-06-10 23:00"),
        ("every evening at 7 stand-up", "every day at 19:00, first on Wed 2026-06-10 19:00"),
        ("every weekday morning at 7 stand-up", "every weekday at 07:00, first on Thu 2026-06-11"),
        ("every friday night at 1 stand-up", "every Saturday at 01:00, first on Sat 2026-06-13"),
    ],
)
async def test_days_and_parts_of_the_day_repeat(tmp_path: Path, words: str, said: str) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Lisbon")
        reply = await h.say(f"/remind {words}")
        assert reply.startswith(f"OK, #1: {said}"), reply
        assert " — stand-up. " in reply, reply


async def test_a_part_of_the_day_is_the_same_hour_once_and_every_week(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/timezone Europe/Lisbon")
        once = await h.say("/remind next friday evening call dad")
        every = await h.say("/remind every friday evening call dad")
        assert once.startswith("OK, #1: Fri 2026-06-12 18:00"), once
        assert every.startswith("OK, #2: every Friday at 18:00, first on Fri 2026-06-12 18:00")
        night = await h.say("/remind friday night call dad")
        nightly = await h.say("/remind every night call dad")
        assert night.startswith("OK, #3: Fri 2026-06-12 20:00"), night
        assert nightly.startswith("OK, #4: every day at 20:00"), nightly


async def test_one_day_stays_one_day(tmp_path: Path) -> None:
    """ "on monday" is one Monday, and a count after a part of the day is the text's."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        reply = await h.say("/remind at 8 on monday call the bank")
        assert reply.startswith("OK, #1: Mon 2026-06-15 08:00 (in "), reply
        reply = await h.say("/remind every evening 20 pushups")
        assert reply.startswith("OK, #2: every day at 18:00"), reply
        assert reply.endswith("— 20 pushups. Cancel with /remind cancel 2."), reply


@pytest.mark.parametrize(
    "said, text",
    [
        ("at 8 daily take pills", "take pills"),
        ("at 8 weekdays stand-up", "stand-up"),
        ("8:30 daily take pills", "take pills"),
        ("at 7pm weekends run", "run"),
        ("at 9 biweekly bins", "bins"),
    ],
)
def test_the_clock_before_days_said_in_one_word_repeats(said: str, text: str) -> None:
    """Review 85: "at 8 daily take pills" was still a one-off whose text began "daily"."""
    parsed = parse_reminder(said, NOW, ZoneInfo("Europe/Lisbon"))
    assert parsed.recurrence is not None and parsed.text == text, (parsed.first, parsed.text)


async def test_remind_list_all_lists_as_goal_list_all_does(tmp_path: Path) -> None:
    """Review 80: `/remind list all` answered that it could find no time in "all"."""
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        await h.say("/remind tomorrow 9:00 water the plants")
        listed = await h.say("/remind list all")
        assert "water the plants" in listed and listed == await h.say("/remind list")
        made = await h.say("/remind list the groceries tomorrow 10:00")  # still a reminder
        assert "list the groceries" in made
