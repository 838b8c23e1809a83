"""Where a turn's CPU goes: `steward run` against the bench's fakes, N turns in one chat.

    python bench/turn_profile.py                       # CPU ms per turn, 3 runs of 300 turns
    python bench/turn_profile.py --pyspy               # + a py-spy profile of the turns
    python bench/turn_profile.py --cprofile            # + cProfile of the whole process
    python bench/turn_profile.py --burst 200           # + the burst (200 chats x 3, model 1 s)
    python bench/turn_profile.py --memories 100000     # the owner holds that many memories
    python bench/turn_profile.py --env MALLOC_ARENA_MAX=16   # Steward's environment, for an A/B

Each run's row also gives the process's memory (MiB, from /proc): VmRSS, RssAnon, RssFile,
threads, and the anonymous part by kind: glibc's main heap, its thread arenas (count and RSS)
and the other anonymous mappings (Python's object arenas, large buffers, Chroma's index).

The process is started the way bench/steward_side.py starts it (its fakes, environment and
helpers), so the figure is the one `make bench` reports: CPU seconds of the process (all its
threads: the event loop, SQLite's, the embedder's) over the turns, after one warm-up turn.
py-spy (not a dependency: `.venv/bin/pip install py-spy`) attaches to the running process after
warm-up and samples only the measured turns; its flat table counts a function's own samples
and its inclusive ones (any frame of the stack), summed over every thread but idle ones.

(Just over 400 lines: one tool; its profilers (py-spy, cProfile, SQL tracing, per-thread CPU)
share the run they measure.)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import pstats
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import memory_prefill
import steward_side
from common import ROOT, cpu_seconds, drive_turns, summary_ms

PYSPY = Path(sys.executable).with_name("py-spy")

# cProfile launcher: `steward run`, profiled (its main thread) over the measured turns only.
_CPROFILE = """
import cProfile, signal, sys, time
sys.argv = ["steward", "run"]
profile, on = (cProfile.Profile(time.thread_time) if {cpu} else cProfile.Profile()), []
def toggle(signum, frame):  # the first SIGUSR1 starts the profile, the second dumps it
    if not on:
        on.append(1)
        profile.enable()
    else:
        profile.disable()
        profile.dump_stats({out!r})
signal.signal(signal.SIGUSR1, toggle)
from bot.cli import main
sys.exit(main(["run"]))
"""


# SQL launcher: counts each statement SQLite runs and each trip to the database's thread, with the
# first frame of ours that asked for it; printed when the process ends.
_SQL = """
import collections, re, signal, sqlite3, sys, time
import aiosqlite.core as aio
import memory.db as db
sys.argv = ["steward", "run"]
statements, hops, spent = collections.Counter(), collections.Counter(), collections.Counter()
_connect = sqlite3.connect
def shape(s):
    s = re.sub(r"'(?:[^']|'')*'", "?", s)
    s = re.sub(r"\\b\\d+(\\.\\d+)?\\b", "?", s)
    s = re.sub(r"\\?(, ?\\?)+", "?", s)
    return re.sub(r"\\s+", " ", s)[:120]
def connect(*a, **k):
    conn = _connect(*a, **k)
    conn.set_trace_callback(lambda s: statements.update([shape(s)]))
    return conn
db.sqlite3.connect = connect
_call = aio.Connection._execute
def call(self, fn, *args, **kwargs):
    frame, where = sys._getframe(1), "?"
    while frame is not None:
        name = frame.f_code.co_filename
        if "memory/db.py" not in name and "/lib/python3" not in name and "aiosqlite" not in name:
            where = "/".join(name.rsplit("/", 2)[-2:]) + ":" + frame.f_code.co_name
            break
        frame = frame.f_back
    hops.update([where])
    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[where] += time.perf_counter() - t0
    return _call(self, timed, *args, **kwargs)
aio.Connection._execute = call
def dump():
    with open({out!r}, "w") as f:
        for k, v in statements.most_common(): f.write(f"S {{v}} {{k}}\\n")
        for k, v in hops.most_common(): f.write(f"H {{v}} {{spent[k] * 1000:.0f}}ms {{k}}\\n")
def snapshot(signum, frame):
    global statements, hops, spent
    dump()
    statements, hops, spent = collections.Counter(), collections.Counter(), collections.Counter()
signal.signal(signal.SIGUSR1, snapshot)
from bot.cli import main
sys.exit(main(["run"]))
"""


def memory_mib(pid: int) -> dict[str, float]:
    """RSS of `pid` and its anonymous part (heap, arenas, Chroma's index), MiB, from /proc."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    out["threads"] = len(list(Path(f"/proc/{pid}/task").iterdir()))
    return out | heap_mib(pid)


def heap_mib(pid: int) -> dict[str, float]:
    """Resident anonymous memory of `pid` by kind, MiB, from /proc/<pid>/smaps: glibc's main
    heap ([heap]), its thread arenas (anonymous mappings starting on a 64 MiB boundary: each
    arena's heap is reserved 64 MiB-aligned) and the count of those, and the rest (mmap'd
    blocks: Python's object arenas, large numpy/onnxruntime buffers, Chroma's index)."""
    heap = arenas = other = 0
    count = 0
    name, start = "", 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and not head[0].endswith(":"):
            start = int(head[0].split("-")[0], 16)
            name = head[5] if len(head) > 5 else ""
            if not name and start % (64 << 20) == 0:
                count += 1
        elif head[0] == "Rss:":
            kib = int(head[1])
            if name == "[heap]":
                heap += kib
            elif not name and start % (64 << 20) == 0:
                arenas += kib
            elif not name:
                other += kib
    return {
        "heap": round(heap / 1024, 1),
        "arenas": count,
        "arena_rss": round(arenas / 1024, 1),
        "other_anon": round(other / 1024, 1),
    }


def thread_cpu(pid: int, kernel: bool = False) -> dict[str, float]:
    """CPU seconds per thread of `pid` (tid:name), from /proc; `kernel`: only the time spent in
    the kernel on its behalf (system calls: sockets, wake-ups, file I/O)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks = int(fields[12]) + (0 if kernel else int(fields[11]))
        out[f"{task.name}:{name}"] = ticks / os.sysconf("SC_CLK_TCK")
    return out


async def spy_on(
    pid: int, rate: int, raw: Path, gil: bool = False, native: bool = False
) -> asyncio.subprocess.Process:
    """py-spy attached to `pid`, sampling every thread but idle ones into `raw` (collapsed
    stacks) until it gets SIGINT; `gil`: only the thread holding the GIL (what one interpreter
    runs one at a time: the floor of a burst); `native`: C frames too (uvloop, SQLite, ORT)."""
    return await asyncio.create_subprocess_exec(
        str(PYSPY),
        "record",
        *(["--gil"] if gil else []),
        *(["--native"] if native else []),
        "--pid",
        str(pid),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--threads",
        *([] if native else ["--nonblocking"]),  # py-spy pauses the process to unwind C
        "-o",
        str(raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="CPU per turn of `steward run`, and where it goes")
    p.add_argument("--turns", type=int, default=300)
    p.add_argument("--runs", type=int, default=3, help="measured runs in one process")
    p.add_argument("--latency", type=float, default=0.02, help="fake model latency, s")
    p.add_argument("--memories", type=int, default=0, help="owner's memories, pre-populated")
    p.add_argument("--pyspy", action="store_true", help="py-spy the last run (or the burst)")
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--cprofile", action="store_true", help="run the process under cProfile")
    p.add_argument(
        "--cpu-clock",
        action="store_true",
        help="cProfile on the thread's CPU time, not the wall clock (a preempted or waiting "
        "call is not charged; each measurement costs a system call)",
    )
    p.add_argument("--sql", action="store_true", help="count SQL statements and thread hops")
    p.add_argument("--burst", type=int, default=0, help="then the burst with this many chats")
    p.add_argument("--burst-latency", type=float, default=1.0)
    p.add_argument("--root", type=Path, help="run `steward` from this checkout (an A/B copy)")
    p.add_argument("--embedder", help="STEWARD_EMBEDDER for the run (none: keyword-only)")
    p.add_argument("--main-only", action="store_true", help="py-spy tables: the loop's thread")
    p.add_argument("--gil", action="store_true", help="py-spy: only samples holding the GIL")
    p.add_argument("--native", action="store_true", help="py-spy: C frames too")
    p.add_argument("--top", type=int, default=45, help="rows of each table")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="extra environment (A/B)"
    )
    return p.parse_args(argv)


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / "data"
    out: dict[str, Any] = {"runs": []}
    if args.memories:  # the owner claims the bot first: memories are the owner's
        async with steward_side.steward(data, args.latency, work / "claim.log") as run:
            await drive_turns(run.tg, run.fa, 1, chat=steward_side.OWNER_TG, start_seq=10**7)
        out["populate"] = await memory_prefill.populate_memories(data, args.memories)
    stats = work / "cprofile.stats"
    if args.cprofile:
        code = _CPROFILE.format(out=str(stats), cpu=args.cpu_clock)
        steward_side.STEWARD = [sys.executable, "-c", code]
    if args.root:
        steward_side.ROOT = args.root.resolve()
    if args.embedder:
        base_env = steward_side.steward_env
        steward_side.steward_env = lambda *a: base_env(*a) | {"STEWARD_EMBEDDER": args.embedder}
    if args.env:
        extra = dict(item.split("=", 1) for item in args.env)
        env_before = steward_side.steward_env
        steward_side.steward_env = lambda *a: env_before(*a) | extra
    sql = work / "sql.txt"
    if args.sql:
        steward_side.STEWARD = [sys.executable, "-c", _SQL.format(out=str(sql))]
    async with steward_side.steward(data, args.latency, work / "steward.log") as run:
        pid = run.proc.pid
        await asyncio.sleep(3.0 if not args.memories else 8.0)  # embedder, Chroma, SDK warm-up
        await drive_turns(run.tg, run.fa, 5, chat=steward_side.OWNER_TG, start_seq=10**6)
        out["memory_after_warmup"] = memory_mib(pid)
        print(f"  after warm-up: {out['memory_after_warmup']}", flush=True)
        seq = 0
        if args.sql or args.cprofile:  # from here on: the measured turns only
            run.proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.5)
        spy: asyncio.subprocess.Process | None = None
        raw = work / "pyspy.txt"
        for index in range(args.runs):
            if args.pyspy and index == args.runs - 1 and not args.burst:
                spy = await spy_on(pid, args.rate, raw, args.gil, args.native)
                await asyncio.sleep(1.0)  # attached
            cpu0, wall0, threads0 = cpu_seconds(pid), time.perf_counter(), thread_cpu(pid)
            kernel0 = thread_cpu(pid, kernel=True)
            overheads = await drive_turns(
                run.tg, run.fa, args.turns, chat=steward_side.OWNER_TG, start_seq=seq
            )
            cpu = cpu_seconds(pid) - cpu0
            threads, kernel = thread_cpu(pid), thread_cpu(pid, kernel=True)
            per_thread = {
                k: round((v - threads0.get(k, 0.0)) / args.turns * 1000, 2)
                for k, v in threads.items()
                if v - threads0.get(k, 0.0) > 0
            }
            in_kernel = {
                k: round((v - kernel0.get(k, 0.0)) / args.turns * 1000, 2)
                for k, v in kernel.items()
                if v - kernel0.get(k, 0.0) > 0
            }
            seq += args.turns
            row = {
                "cpu_ms_per_turn": round(cpu / args.turns * 1000, 2),
                "wall_s": round(time.perf_counter() - wall0, 2),
                "overhead_ms": summary_ms(overheads),
                "memory_mib": memory_mib(pid),
                "cpu_ms_per_turn_by_thread": dict(
                    sorted(per_thread.items(), key=lambda kv: -kv[1])
                ),
                "of_which_in_the_kernel": dict(
                    sorted(in_kernel.items(), key=lambda kv: -kv[1])[:6]
                ),
            }
            out["runs"].append(row)
            print(f"  run {index + 1}: {row}", flush=True)
            await asyncio.sleep(0.5)  # what follows the last reply (upkeep) counted in the next
        if args.sql or args.cprofile:
            run.proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.5)
        if args.burst:
            if args.pyspy:
                spy = await spy_on(pid, args.rate, raw, args.gil, args.native)
                await asyncio.sleep(1.0)
            cpu0, threads0 = cpu_seconds(pid), thread_cpu(pid)
            driver0 = time.process_time()
            out["burst"] = await steward_side.burst(
                run, chats=args.burst, per_chat=3, latency=args.burst_latency
            )
            out["burst"]["cpu_ms_per_turn"] = round(
                (cpu_seconds(pid) - cpu0) / (args.burst * 3) * 1000, 2
            )
            # the fakes (this process) share the two cores with Steward during the burst
            out["burst"]["fakes_cpu_s"] = round(time.process_time() - driver0, 2)
            spent = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu(pid).items()}
            out["burst"]["cpu_s_by_thread"] = {  # which thread the burst waited on
                k: round(v, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v > 0.05
            }
            print(f"  burst: {out['burst']}", flush=True)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await asyncio.wait_for(spy.wait(), 60)
            out["pyspy"] = str(raw)
    if args.cprofile:
        out["cprofile"] = str(stats)
    if args.sql:
        out["sql"] = str(sql)
    return out


def pyspy_table(raw: Path, top: int, main_only: bool = False) -> None:
    """Own and inclusive samples per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    by_module: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        if main_only and "MainThread" not in stack.split(";")[0]:
            continue
        total += count
        by_thread[stack.split(";")[0]] += count
        frames = stack.split(";")[1:]  # the first is the thread
        if not frames:
            continue
        own[frames[-1]] += count
        for frame in set(frames):
            incl[frame] += count
        by_module[_module(frames[-1])] += count
    print(f"\npy-spy: {total} samples (non-idle, all threads)")
    print("\n  %       thread")
    for thread, count in by_thread.most_common(12):
        print(f"  {100 * count / total:5.1f}  {thread}")
    print("\n  own %   function (file:line)")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}  {frame}")
    print("\n  incl %  function")
    for frame, count in incl.most_common(top):
        print(f"  {100 * count / total:5.1f}  {frame}")
    print("\n  own %   package of the leaf frame")
    for module, count in by_module.most_common(top):
        print(f"  {100 * count / total:5.1f}  {module}")


def _module(frame: str) -> str:
    """`func (path/to/file.py:12)` -> its package: site-packages' top name, else our folder."""
    path = frame.rpartition("(")[2].rstrip(")").rpartition(":")[0]
    head, _, rest = path.partition("/")
    if head in ("agent", "bot", "memory"):
        return f"steward:{head}/{rest.partition('/')[0]}"
    return head.removesuffix(".py") if rest else f"stdlib:{head}"


def main() -> int:
    args = parse_args()
    if args.pyspy and not PYSPY.exists():
        print(f"no {PYSPY}: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="steward-turn-profile-"))
    try:
        out = asyncio.run(measure(args, work))
        cpu = [r["cpu_ms_per_turn"] for r in out["runs"]]
        print(f"\nCPU ms per turn over {args.turns} turns: {cpu} (min {min(cpu)})")
        if "pyspy" in out:
            pyspy_table(Path(out["pyspy"]), args.top, args.main_only)
        if "cprofile" in out and Path(out["cprofile"]).exists():
            stats = pstats.Stats(out["cprofile"])
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
        if "sql" in out and Path(out["sql"]).exists():
            turns = args.turns * args.runs
            print(f"\nper turn (over {turns} turns): S = statement, H = hop to SQLite's thread")
            lines = Path(out["sql"]).read_text().splitlines()
            hops = [x for x in lines if x.startswith("H")][: args.top]
            for line in hops + [x for x in lines if x.startswith("S")][: args.top]:
                kind, count, what = line.split(" ", 2)
                print(f"  {kind} {int(count) / turns:7.2f}  {what}")
        if args.keep:
            print(f"kept {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
