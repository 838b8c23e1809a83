"""`steward run`, with a clock that runs faster than the system's: the process `make soak` soaks.

Usage: python bench/soak_child.py --epoch T --factor F

It starts Steward as `steward run` does (settings from the environment and Steward's home, the
same logging, `bot.app.run`) and passes the composition root a `FastClock`: at system time T it
reads T, and from then on it runs F times as fast. Nothing in Steward knows it is being soaked;
the scheduler arms its alarm at `clock.system_time(next run)`, which this clock maps back to the
system's time, so a simulated week of reminders goes off in minutes. Periodic housekeeping that
waits real seconds (redelivery, approval expiry) keeps real time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class FastClock:
    """Reads `epoch` (a system time, seconds) at system time `epoch`, then runs `factor` times
    as fast as the system clock."""

    def __init__(self, epoch: float, factor: float) -> None:
        self.epoch = epoch
        self.factor = factor
        self._start = datetime.fromtimestamp(epoch, UTC)

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.time() - self.epoch) * self.factor)

    def system_time(self, moment: datetime) -> datetime:
        elapsed = (moment - self._start).total_seconds() / self.factor
        return datetime.fromtimestamp(self.epoch + elapsed, UTC)


def trace_on_signal(out: Path) -> None:
    """`--trace`: tracemalloc on; each SIGUSR2 appends to `out` what Python allocated since the
    first SIGUSR2 (by line, top 25), and the objects by type that grew (gc's view), so a slope
    in the soak's RSS can be told apart from Python objects that are kept."""
    import collections
    import gc
    import signal
    import tracemalloc

    tracemalloc.start(4)
    first: list[Any] = []

    def types() -> collections.Counter[str]:
        return collections.Counter(type(o).__name__ for o in gc.get_objects())

    def dump(signum: int, frame: Any) -> None:
        gc.collect()
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if not first:
            first.extend([snap, types()])
            return
        now = types()
        with out.open("a") as f:
            total = sum(s.size for s in snap.statistics("filename"))
            f.write(f"== traced {total / 2**20:.1f} MiB; objects {sum(now.values()):,}\n")
            for stat in snap.compare_to(first[0], "traceback")[:25]:
                where = " <- ".join(
                    f"{x.filename.split('/')[-1]}:{x.lineno}" for x in stat.traceback[:4]
                )
                f.write(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7} {where}\n")
            grew = (now - first[1]).most_common(15)
            f.write("types grown: " + ", ".join(f"{k} +{v}" for k, v in grew) + "\n")

    signal.signal(signal.SIGUSR2, dump)


def stacks_on_signal() -> None:
    """SIGUSR1 writes every thread's stack and every asyncio task's to stderr (Steward's log):
    what a self-initiated run that outlasts the soak's wait for it is waiting on."""
    import faulthandler
    import signal
    import traceback

    def dump(signum: int, frame: Any) -> None:
        faulthandler.dump_traceback(all_threads=True)
        try:
            tasks = asyncio.all_tasks()
        except RuntimeError:  # no loop running in this thread
            return
        for task in tasks:
            sys.stderr.write(f"== task {task.get_name()}\n")
            awaited: Any = task.get_coro()
            while awaited is not None:  # the chain of awaits a suspended task is parked in
                frame_ = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
                if frame_ is None:
                    sys.stderr.write(f"  awaiting {awaited!r}\n")
                    break
                sys.stderr.write("".join(traceback.format_stack(frame_, limit=1)))
                awaited = getattr(awaited, "cr_await", None) or getattr(
                    awaited, "gi_yieldfrom", None
                )
        sys.stderr.flush()

    signal.signal(signal.SIGUSR1, dump)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epoch", type=float, required=True, help="system time the clocks meet")
    parser.add_argument("--factor", type=float, required=True, help="simulated s per real s")
    parser.add_argument("--trace", type=Path, help="tracemalloc; SIGUSR2 writes here")
    args = parser.parse_args()
    if args.trace:
        trace_on_signal(args.trace)
    stacks_on_signal()

    from memory.allocator import tune_malloc

    tune_malloc()  # as `steward run` does (bot/cli.py), before any thread starts
    from agent.paths import load_at_home
    from bot.app import run
    from bot.cli import _configure_logging  # the same logging as `steward run`

    settings, _home = load_at_home()
    _configure_logging(settings)
    return asyncio.run(run(settings, clock=FastClock(args.epoch, args.factor)))


if __name__ == "__main__":
    sys.exit(main())
