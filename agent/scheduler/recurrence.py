"""Time arithmetic for schedules, with zoneinfo so daylight saving is right: recurring local
times and their next occurrence, quiet-hour windows, and lateness said as a person says it.

A 02:30 job on the night the clocks go back fires once; on the night they go forward it fires at
03:30, the same wall time read with the old offset. Reading times in words is `when.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "Recurrence",
    "describe_delta",
    "describe_trigger",
    "local_at",
    "next_run",
    "quiet_contains",
    "quiet_end",
]

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Recurrence:
    """Local wall-clock time on some weekdays (0 = Monday), or every `interval` days."""

    hour: int
    minute: int
    days: frozenset[int] = field(default_factory=lambda: frozenset(range(7)))
    interval: int = 1
    anchor: date | None = None  # the first day counted, for interval > 1

    def to_trigger(self) -> dict[str, Any]:
        return {
            "type": "every",
            "hour": self.hour,
            "minute": self.minute,
            "days": sorted(self.days),
            "interval": self.interval,
            "anchor": self.anchor.isoformat() if self.anchor else None,
        }

    @classmethod
    def from_trigger(cls, trigger: dict[str, Any]) -> Recurrence:
        anchor = trigger.get("anchor")
        return cls(
            hour=int(trigger["hour"]),
            minute=int(trigger["minute"]),
            days=frozenset(trigger.get("days") or range(7)),
            interval=int(trigger.get("interval") or 1),
            anchor=date.fromisoformat(anchor) if anchor else None,
        )

    def describe(self) -> str:
        at = f"{self.hour:02d}:{self.minute:02d}"
        if self.interval > 1:
            return f"every {self.interval} days at {at}"
        if len(self.days) == 7:
            return f"every day at {at}"
        if self.days == frozenset(range(5)):
            return f"every weekday at {at}"
        if self.days == frozenset({5, 6}):
            return f"every weekend day at {at}"
        names = [_DAY_NAMES[d] for d in sorted(self.days)]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"every {listed} at {at}"

    def next_after(self, after: datetime, zone: ZoneInfo) -> datetime:
        """The first occurrence strictly after `after`, in UTC."""
        start = after.astimezone(zone).date()
        for offset in range(0, 7 * self.interval + 2):
            day = start + timedelta(days=offset)
            if self.interval > 1:
                anchor = self.anchor or start
                if (day - anchor).days % self.interval:
                    continue
            elif day.weekday() not in self.days:
                continue
            moment = local_at(day, self.hour, self.minute, zone)
            if moment > after:
                return moment
        raise AssertionError("a recurrence always has an occurrence within its period")


def local_at(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """`day` at hour:minute on the local clock, in UTC. A time the clocks skip when they go
    forward is read with the offset before the change (02:30 becomes 03:30); a time that happens
    twice when they go back is its first occurrence."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone, fold=0).astimezone(UTC)


def next_run(trigger: dict[str, Any], after: datetime, zone: ZoneInfo) -> datetime | None:
    """The next run of a stored trigger strictly after `after` (None: a one-shot that ran)."""
    if trigger.get("type") == "once":
        return None
    return Recurrence.from_trigger(trigger).next_after(after, zone)


def describe_trigger(trigger: dict[str, Any], zone: ZoneInfo) -> str:
    if trigger.get("type") == "once":
        at = datetime.fromisoformat(trigger["at"]).astimezone(zone)
        return f"{at:%a %Y-%m-%d %H:%M}"
    return Recurrence.from_trigger(trigger).describe()


def _hm(value: str) -> time:
    hour, minute = value.split(":")
    return time(int(hour), int(minute))


def quiet_contains(start: str, end: str, moment: datetime, zone: ZoneInfo) -> bool:
    wall = moment.astimezone(zone).time().replace(second=0, microsecond=0)
    begin, finish = _hm(start), _hm(end)
    if begin < finish:
        return begin <= wall < finish
    return wall >= begin or wall < finish


def quiet_end(end: str, moment: datetime, zone: ZoneInfo) -> datetime:
    """The next time the quiet hours end after `moment`, in UTC."""
    finish = _hm(end)
    day = moment.astimezone(zone).date()
    for offset in range(3):
        on = day + timedelta(days=offset)
        # both readings of a time the clocks pass twice (going back): quiet hours that end
        # within the repeated hour end at its second pass too, not a day later
        for fold in (0, 1):
            local = datetime(on.year, on.month, on.day, finish.hour, finish.minute, fold=fold)
            candidate = local.replace(tzinfo=zone).astimezone(UTC)
            if candidate > moment:
                return candidate
    raise AssertionError("quiet hours end within a day")


def describe_delta(delta: timedelta) -> str:
    """A lateness as a person says it: "2 h 10 min", "3 d 4 h", "45 s"."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"
