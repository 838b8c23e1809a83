"""Goal check-ins: whether one is due is decided in code; only a due one reaches the model.

Nothing is due when progress was noted since the last check-in (the owner is on it), unless the
goal's due date is close. Otherwise the model reviews the goal and may still decide to stay
silent by answering exactly SKIP.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from agent.fence import fence, new_fence_id
from memory.clock import parse_iso
from memory.goals import Goal, GoalNote, GoalStatus

__all__ = ["DUE_SOON", "checkin_decision", "checkin_prompt"]

DUE_SOON = timedelta(days=3)


def checkin_decision(
    goal: Goal, notes: list[GoalNote], since: datetime, now: datetime
) -> tuple[bool, str]:
    """(due, why): is there anything for a check-in to say?"""
    if goal.status is not GoalStatus.ACTIVE:
        return False, f"the goal is {goal.status.value}"
    if goal.due_at:
        due = parse_iso(goal.due_at)
        if due < now:
            return True, "the goal is past its due date"
        if due - now <= DUE_SOON:
            return True, "the goal is due within 3 days"
    recent = [n for n in notes if n.created_at > since]
    if recent:
        return False, f"progress noted since the last check-in ({len(recent)} notes)"
    return True, "no progress noted since the last check-in"


def checkin_prompt(
    goal: Goal,
    notes: list[GoalNote],
    since: datetime,
    now: datetime,
    zone: ZoneInfo,
    reason: str,
) -> str:
    def day(moment: datetime) -> str:
        return f"{moment.astimezone(zone):%a %Y-%m-%d}"

    lines = [
        f"Goal check-in for goal #{goal.id}: “{goal.title}”. Why now: {reason}.",
        f"Tracking since: {day(parse_iso(goal.created_at))}."
        if goal.created_at
        else "Tracking since: unknown.",
        f"Due: {day(parse_iso(goal.due_at))}." if goal.due_at else "Due: no date set.",
        f"Next step: {goal.next_step}" if goal.next_step else "Next step: none recorded.",
        f"Last check-in: {day(since)}.",
        "Progress log (oldest first):",
    ]
    lines += [f"- {day(n.created_at)}: {n.note}" for n in notes] or ["- (nothing logged yet)"]
    if goal.tainted:  # shaped by outside content: shown as data
        lines = [fence("\n".join(lines), f"goal:#{goal.id}", new_fence_id())]
    lines.append(
        "Write the owner one short, friendly nudge (two or three sentences) that names the next "
        "step; if none is recorded, suggest one and record it with goal_next_step. You may decide "
        "that a message would not help right now: then reply exactly SKIP and nothing is sent."
    )
    return "\n".join(lines)
