"""Every exception `agent/` raises on purpose, in one place.

    Exception
    ├── ConfigError        a setting is wrong (one line naming it; Steward does not start)
    ├── PolicyError        policy.toml is wrong (one line naming the problem)
    ├── ModelUnavailable   the model could not be reached or refused, after retries
    ├── DeliveryError      a channel could not deliver a message (it stays queued)
    ├── GoalError          the goal does not exist or cannot take this change
    ├── ToolError          a failure the model sees and may recover from (an error result)
    └── ValueError
        └── WhenError      the text does not name a usable time

Messages are written for people: a chat user or the person running Steward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ConfigError",
    "DeliveryError",
    "GoalError",
    "GoalExists",
    "GoalTitleError",
    "ModelUnavailable",
    "PolicyError",
    "TooManySchedules",
    "ToolError",
    "WhenError",
]


class ConfigError(Exception):
    """A setting is wrong; the message is one line that names it."""


class PolicyError(Exception):
    """The policy file is wrong; the message is one line that names the problem."""


@dataclass
class ModelUnavailable(Exception):
    """The model could not be reached or refused, after retries. `reason` is fit for a chat."""

    reason: str
    status: int | None = None
    detail: str = field(default="", repr=False)

    def __str__(self) -> str:
        return self.reason


class DeliveryError(Exception):
    """A channel could not deliver a message (after its own retries). `permanent`: trying
    again cannot help (the bot was blocked or removed, the chat is gone). `unsure`: a try's
    answer was lost after the request went, so the chat may have the message all the same
    (the courier keeps that, for a send after a restart to say it may be a copy)."""

    def __init__(self, message: str, *, permanent: bool = False, unsure: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unsure = unsure


class GoalError(Exception):
    """The goal does not exist or cannot take this change; the message says which."""


class GoalExists(GoalError):
    """An active goal of the same title is there already: said, not added twice (R135: said
    again in a group, or twice in private, a goal was added again with check-ins of its own)."""


class GoalTitleError(GoalError):
    """A title that cannot be one (none, or too long): a command answers it with its usage."""


class ToolError(Exception):
    """A failure the model should see and may recover from (sent back as an error result).
    `source` names outside content the message carries (a redirect target's address): the
    error is then fenced and taints the turn like any outside result."""

    def __init__(self, message: str, *, source: str | None = None, uncertain: bool = False) -> None:
        super().__init__(message)
        self.source = source
        self.uncertain = uncertain
        """It may have been done all the same (a mail whose confirmation was lost)."""


class WhenError(ValueError):
    """The text does not name a usable time; the message says why."""


class TooManySchedules(WhenError):
    """Another person has as many reminders and tasks waiting as they may; caught where a
    WhenError is, its message is the reply."""
