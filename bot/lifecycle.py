"""How `steward run` waits and stops: stop signals caught from the first moment, waiting for
them or for every channel to finish, the approvals sweeper that runs meanwhile, and the watch
on the data directory (deleted under a running Steward, it stops rather than go on writing
into files nobody will see again), which also has the scheduler look at the clocks (after a
suspend or a clock step its alarm is set again)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.core import Steward
    from agent.paths import DataDirLock
    from bot.channels.base import Channel

__all__ = ["close_to_others", "expire_approvals", "stop_signals", "until_done", "watch_data_dir"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stop_signals() -> Iterator[asyncio.Event]:
    """SIGINT/SIGTERM set the returned event instead of interrupting whatever runs. Installed
    before anything starts, so a Ctrl-C during start-up still shuts down in order (background
    starts cancelled, the store closed last) rather than closing the store under them. A second
    signal cancels the run outright, for a start-up step that hangs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def signalled() -> None:
        if stop.is_set() and main is not None:  # a second Ctrl-C: a start-up step hangs
            log.warning("stopping now, without waiting for the shutdown")
            main.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, signalled)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


async def until_done(channels: list[Channel], stop: asyncio.Event) -> None:
    """Wait for a stop signal, or for every channel to finish on its own."""
    waiters = [asyncio.create_task(stop.wait())]
    waiters.append(asyncio.create_task(_all_finished(channels)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def expire_approvals(steward: Steward, every: float = 20.0) -> None:
    """Expire approvals nobody decided in time, so their turns are told and end."""
    while True:
        try:
            await steward.expire_approvals()
        except Exception:
            log.exception("expiring approvals failed")
        await asyncio.sleep(every)


async def _all_finished(channels: list[Channel]) -> None:
    await asyncio.gather(*(channel.finished.wait() for channel in channels))


async def watch_data_dir(
    lock: DataDirLock,
    stop: asyncio.Event,
    every: float = 5.0,
    *,
    each: Callable[[], Awaitable[object]] | None = None,
) -> bool:
    """Set `stop` and return True once the data directory is gone or replaced (its lock file
    is not the one held): Steward went on answering into a deleted database, and a second
    Steward could start on a fresh directory beside it. One stat every `every` seconds; two
    in a row must say so (a directory being moved back, a file system remounting).

    `each` runs at every look that finds it in place: the scheduler's look at the clocks
    (`SchedulerService.check_clock`: after the machine slept, or its clock was set, its alarm
    is set again on the wall clock within `every` seconds). It rides on this loop, which wakes
    anyway, so an idle Steward wakes no more often for it; a failure is logged, not fatal."""
    missed = 0
    while not stop.is_set():
        await asyncio.sleep(every)
        missed = 0 if lock.still_ours() else missed + 1
        if missed >= 2:
            log.error(
                "the data directory %s was deleted or replaced while Steward ran; stopping "
                "(start it again to begin from what is there now)",
                lock.path.parent,
            )
            stop.set()
            return True
        if each is not None and not missed:
            try:
                await each()
            except Exception:
                log.exception("the look at the clocks failed")
    return False


def close_to_others(data_dir: Path) -> None:
    """A data directory other users can enter (made before Steward set its umask, or by hand
    with 755) is closed to them: it holds memories, transcripts and mail quotes."""
    try:
        mode = data_dir.stat().st_mode & 0o777
        if mode & 0o077:
            data_dir.chmod(mode & 0o700)
            log.warning(
                "data directory %s was open to other users (mode %03o); now %03o",
                data_dir,
                mode,
                mode & 0o700,
            )
    except OSError as exc:  # not ours to change (a mounted volume): said, not fatal
        log.warning("data directory %s: could not close it to other users: %s", data_dir, exc)
