"""Time as a dependency, so tests can move it instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["CLOCK_SLACK", "Clock", "FrozenClock", "SystemClock", "iso", "parse_iso"]


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def system_time(self, moment: datetime) -> datetime:
        """When the system clock will say it is when this clock reads `moment`: alarms (the
        scheduler's) are set on the system's timers. The identity for a clock that is the
        system's; a clock that runs faster (`make soak`) maps its time back."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def system_time(self, moment: datetime) -> datetime:
        return moment


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def system_time(self, moment: datetime) -> datetime:
        """Its alarms go off at that system time (tests move it and call `run_due()`)."""
        return moment


CLOCK_SLACK = timedelta(minutes=1)
"""How far ahead of now a row may be stamped and still count as made now: one made later than
that was made on a clock that ran fast and has since been set right (a time sync). R240: its
ten minutes (a login link, a /link code) or its day (tokens against the budget) would last as
long as the clock had been ahead."""


def iso(moment: datetime) -> str:
    """The stored form of a timestamp: ISO-8601 UTC, fixed width, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
