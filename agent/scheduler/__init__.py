"""Steward starting on its own: reminders, tasks, goal check-ins and the morning briefing.

`SchedulerService` (service.py) is what the rest of Steward uses; `engine.py` fires jobs and
survives restarts; `jobs.py` is the handler protocol, with one handler per kind of job
(reminders.py, tasks.py, checkins.py, briefing.py); `when.py` reads times in plain words and
`recurrence.py` does the arithmetic on them. Goals themselves live in `agent/goals.py`.
"""

from agent.scheduler.jobs import JobHandler, RunReport, Sender
from agent.scheduler.service import SchedulerService
from agent.scheduler.when import Parsed, Recurrence, WhenError

__all__ = [
    "JobHandler",
    "Parsed",
    "Recurrence",
    "RunReport",
    "SchedulerService",
    "Sender",
    "WhenError",
]
