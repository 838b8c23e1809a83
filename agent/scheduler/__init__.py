"""Steward starting on its own: the scheduler service, reminder times, goal check-ins and the
morning briefing. See `service.py` for how a job fires and survives a restart."""

from agent.scheduler.goals import GoalError, Goals
from agent.scheduler.service import RunReport, SchedulerService
from agent.scheduler.when import Parsed, Recurrence, WhenError

__all__ = [
    "GoalError",
    "Goals",
    "Parsed",
    "Recurrence",
    "RunReport",
    "SchedulerService",
    "WhenError",
]
