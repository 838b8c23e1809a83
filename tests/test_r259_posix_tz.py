"""A process TZ that is no IANA zone name breaks no reminder, briefing or start (R259).

TZ=UTC0 and TZ=CET-1CEST,M3.5.0,M10.5.0/3 are valid POSIX TZ strings; TZ=Europe/Berln is a
typo and TZ=:/etc/nonexist names no file. APScheduler's DateTrigger, built without a zone, and
dateparser, left at its default TIMEZONE "local", asked tzlocal for the process's zone, which
raises on all four: /remind answered "something went wrong", /briefing too (though saved), and
once a schedule was stored Steward did not start at all (the alarm's retry in a `finally`
raised out of `start()`). STEWARD_TIMEZONE, the owner's zone, is not involved.

Real processes (`python -m bot.entry run` on the console channel, no model key), as the
reproduction ran: tzlocal caches the zone it found, so only a fresh process shows the failure.
The due times must be those Steward gives with TZ unset."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness import running_steward

from agent.scheduler import SchedulerService
from memory.clock import FrozenClock

ROOT = Path(__file__).resolve().parent.parent
NOT_ZONE_NAMES = ["UTC0", "CET-1CEST,M3.5.0,M10.5.0/3", "Europe/Berln", ":/etc/nonexist"]
OWNER_ZONE = "Europe/Berlin"


def _env(home: Path | None, tz: str | None) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "STEWARD_TIMEZONE": OWNER_ZONE}
    if home is not None:
        env["STEWARD_HOME"] = str(home)
    if tz is not None:
        env["TZ"] = tz
    return env


def _steward(home: Path, tz: str, *lines: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.entry", "run"],
        env=_env(home, tz),
        cwd=ROOT,
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _said(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, (done.returncode, done.stdout[-2000:], done.stderr[-4000:])
    assert "went wrong" not in done.stdout, done.stdout
    assert "Traceback" not in done.stderr and "ZoneInfoNotFound" not in done.stderr, done.stderr
    return done.stdout


@pytest.mark.parametrize("tz", NOT_ZONE_NAMES)
def test_remind_briefing_and_a_restart_work_whatever_the_process_tz(
    tmp_path: Path, tz: str
) -> None:
    berlin = ZoneInfo(OWNER_ZONE)
    tomorrow = {(datetime.now(berlin) + timedelta(days=1)).date()}
    first = _said(
        _steward(
            tmp_path,
            tz,
            "/remind tomorrow 9:00 call mum",
            "/remind 2030-03-04 18:00 -0500 call dad",
            "/briefing at 07:00",
        )
    )
    tomorrow.add((datetime.now(berlin) + timedelta(days=1)).date())  # midnight may have passed
    days = "|".join(f"{day:%Y-%m-%d}" for day in tomorrow)
    assert re.search(rf"OK, #1: \w+ ({days}) 09:00 \(in [^)]*\) — call mum", first), first
    # 18:00 at -05:00 is 23:00 UTC, midnight in Berlin (CET): read in the text's own zone
    assert "OK, #2: Tue 2030-03-05 00:00" in first, first
    assert "Your briefing comes every day at 07:00 (Europe/Berlin)" in first, first

    again = _said(_steward(tmp_path, tz, "/remind list", "/status"))  # schedules stored
    assert "call mum" in again and "call dad" in again, again
    assert "Tue 2030-03-05 00:00" in again, again


_PARSE = """
import json, sys
from datetime import datetime, UTC
from zoneinfo import ZoneInfo
from agent.scheduler.when import parse_reminder
out = []
for now in (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), datetime(2026, 12, 31, 22, 45, tzinfo=UTC)):
    for zone in ("Europe/Berlin", "America/New_York", "Pacific/Auckland", "UTC"):
        for said in json.loads(sys.argv[1]):
            try:
                parsed = parse_reminder(said, now, ZoneInfo(zone))
                out.append([said, zone, parsed.first.isoformat(), repr(parsed.recurrence)])
            except Exception as exc:
                out.append([said, zone, type(exc).__name__, str(exc)])
print(json.dumps(out))
"""
PHRASES = [
    "tomorrow 9:00 call mum",
    "in 3 days call mum",
    "next friday 5pm call mum",
    "december 5 call mum",
    "in 2 hours call mum",
    "every monday 9:00 call mum",
    "tomorrow 9:00 -0500 call mum",  # a zone in the text: dateparser's own reading of it
    "tomorrow 0:30 +1300 call mum",
    "friday 17:00 gmt call mum",
    "2027-01-01 00:30 +0200 call mum",
    "18:00-05:00 call mum",
    "9.30 +0100 call mum",
]


def _script(script: str, inputs: list[str], tz: str | None) -> list[Any]:
    """What `script` prints (JSON) for `inputs`, in a fresh interpreter under `tz`: tzlocal
    caches the zone it found, so each TZ needs a process of its own."""
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(inputs)],
        env=_env(None, tz),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return list(json.loads(done.stdout))


def _parsed(tz: str | None) -> list[list[str]]:
    return _script(_PARSE, PHRASES, tz)


def test_due_times_are_those_with_tz_unset() -> None:
    """The fix moves no time: each phrase, at a fixed now and in several owner zones, gives the
    same moment (or the same refusal) under each TZ as with none."""
    unset = _parsed(None)
    assert not any("ZoneInfo" in row[2] for row in unset), unset
    assert sum(row[2][:1].isdigit() for row in unset) > len(unset) // 2  # mostly read
    for tz in NOT_ZONE_NAMES:
        assert _parsed(tz) == unset, tz


class _AlarmRefused(FrozenClock):
    """A clock that cannot place a time ahead on the system clock: setting the alarm raises,
    as APScheduler's DateTrigger did, asking tzlocal, under TZ=UTC0."""

    def system_time(self, moment: datetime) -> datetime:
        if moment > self.now():
            raise ValueError(f"no system time for {moment}")
        return moment


async def test_an_alarm_that_cannot_be_set_does_not_stop_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry after a failed look set the alarm again inside a `finally`: its error replaced
    what `start()` returned, and Steward stopped. It is logged now."""
    clock = _AlarmRefused(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))
    async with running_steward(tmp_path, None, clock=clock) as h:
        service = h.steward.scheduler
        assert isinstance(service, SchedulerService)
        await h.say("/remind 1h stand up")  # stored while no alarm runs
        try:
            assert await service.start() == []
        finally:
            await service.stop()
    assert "the scheduler's alarm could not be set" in caplog.text


_PERIODS = """
import json, sys
from datetime import datetime
from agent.query_time import find_period
now = datetime(2026, 3, 29, 1, 30)
out = []
for query in json.loads(sys.argv[1]):
    try:
        found = find_period(query, now=now, timezone="Europe/Berlin")
        out.append(repr(found))
    except Exception as exc:
        out.append(type(exc).__name__)
print(json.dumps(out))
"""
QUERIES = [
    "what did I say last week about the garden",
    "what did we talk about yesterday",
    "the dentist in january",
    "what happened on march 3",
    "notes from 2 days ago",
]


def test_a_search_by_date_reads_the_same_whatever_the_process_tz() -> None:
    """Recall's date reading (agent/query_time.py) asked tzlocal too: under TZ=UTC0 every dated
    search raised ZoneInfoNotFoundError."""

    unset = _script(_PERIODS, QUERIES, None)
    assert sum(found != "None" for found in unset) >= 3, unset  # dated queries are read
    for tz in NOT_ZONE_NAMES:
        assert _script(_PERIODS, QUERIES, tz) == unset, tz
