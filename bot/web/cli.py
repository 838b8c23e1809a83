"""`steward web-link`: a one-time login link to the web console, printed for the owner at the
machine: on the console channel, or from another terminal while Steward runs."""

from __future__ import annotations

import sys
from typing import TextIO

from agent.config import Settings
from agent.paths import DataDirBusy, DataDirLock
from bot.owner import CONSOLE_IDENTITY
from bot.web.auth import NOT_YOURS, OFF, STARTING, console_down, issue_link
from memory.clock import SystemClock
from memory.stores import Stores

__all__ = ["web_link_cli"]


def _steward_runs(settings: Settings) -> bool:
    """Whether a `steward run` holds the data directory (review 80: with none, the link
    printed pointed at the last run's port, and opening it failed without a word why)."""
    try:
        DataDirLock(settings.data_dir, "web-link").acquire().release()
    except DataDirBusy:
        return True
    return False


async def web_link_cli(settings: Settings, *, out: TextIO | None = None) -> int:
    """`steward web-link`: a login link for the owner, printed (for the console channel, where
    the owner sits at the machine)."""
    out = out or sys.stdout
    if not settings.web:
        print(f"steward web-link: {OFF}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stores = await Stores.open(settings.database_path, SystemClock(), upgrade=False)
    try:
        if _steward_runs(settings) and (down := await console_down(stores)) is not None:
            if down == STARTING:
                down = "it is still starting; try again in a few seconds"
            print(f"steward web-link: the web console is not running: {down}", file=sys.stderr)
            return 1
        owner = await stores.people.ensure_owner([CONSOLE_IDENTITY, *settings.owner])
        link = await issue_link(stores, settings, CONSOLE_IDENTITY, owner, via="cli")
        if link is None:
            print(f"steward web-link: {NOT_YOURS}", file=sys.stderr)
            return 2
        print(link.url, file=out)
        print(
            f"valid for {link.minutes} minutes, one use; `/web logout` ends every session",
            file=sys.stderr,
        )
        if not _steward_runs(settings):  # the link is good, but nothing answers it yet
            print(
                "Steward is not running on this data directory: the link opens once "
                "`steward run` is up (start it within the link's minutes)",
                file=sys.stderr,
            )
        return 0
    finally:
        await stores.close()
