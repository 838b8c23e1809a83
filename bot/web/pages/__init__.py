"""The console's pages, one module each; `MODULES` is every module with `routes`."""

from __future__ import annotations

from bot.web.pages import activity, approvals, goals, home, memory, status, usage
from memory.web_sessions import WebRole

__all__ = ["MODULES", "NAV", "nav_for"]

MODULES = (home, approvals, activity, memory, goals, usage, status)

NAV = (
    ("/", "Home"),
    ("/approvals", "Approvals"),
    ("/activity", "Activity"),
    ("/memory", "Memory"),
    ("/goals", "Goals"),
    ("/usage", "Usage"),
    ("/status", "Status"),
)


def nav_for(role: WebRole) -> list[tuple[str, str]]:
    """An approver sees approvals only."""
    if role is WebRole.OWNER:
        return list(NAV)
    return [("/approvals", "Approvals")]
