"""Figures a test reports for the end-of-run summary (the benign day's approvals, each fault
case's outcome). `make test` runs tests in pytest-xdist's worker processes while the summary is
printed by the controlling one, so a figure travels with its test's report: noted here during
the test, moved onto the report's `user_properties` (conftest.py), summed where reports land."""

from __future__ import annotations

PENDING: list[tuple[str, object]] = []


def note(name: str, value: object) -> None:
    """Report `value` under `name` with the running test's outcome."""
    PENDING.append((name, value))


def take() -> list[tuple[str, object]]:
    taken = list(PENDING)
    PENDING.clear()
    return taken
