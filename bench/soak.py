"""`make soak` (issue 19): a simulated week of use in one Steward process; does it grow?

10,000 turns in the owner's Telegram chat and 1,000 self-initiated runs (daily reminders, tasks,
goal check-ins and a morning briefing, as the scheduler runs them) over a simulated week, against
the loopback fakes of `make bench` (bench/common.py). Steward runs as `steward run` does, with a
clock that runs `factor` times as fast as the system's (bench/soak_child.py), so the week takes
minutes; the turns are paced on that clock, spread evenly over the week.

Every `--every` turns, once no self-initiated run is in flight, it samples the Steward process
(never the fakes, which live in this one):
RSS (VmRSS of its process tree), open files (/proc/<pid>/fd), threads (/proc/<pid>/task), asyncio
tasks (`GET /healthz`), and from SQLite (read-only) the runs done and the vectors indexed.

Open files and threads are judged without Chroma's own SQLite pool (the connections to
`chroma/chroma.sqlite3` and their `sqlx-sqlite-worker` threads): Chroma 1.5 opens it with sqlx's
defaults, at most CHROMA_POOL_MAX connections, each opened when a call first needs it and closed
after ten idle minutes, so it fills late under load and shrinks when idle. It is checked against
that bound instead. So are the HTTP clients' keep-alive pools (the TCP connections to the model
API fake and the Telegram fake): aiohttp opens a connection only when every pooled one is busy,
and hands them out in turn, so a pool keeps as many as calls ever overlapped (the long poll, a
reply and a reminder at once: 3) for as long as calls keep coming; each pool is bounded by its
connector's limit (HTTP_POOL_MAX) and its peak is printed. Everything else must not grow at all.

Growth is taken from the first sample after warm-up (the first simulated day: every kind of job
has run, thread pools are full) to the last. From the RSS growth it subtracts what the vector
index legitimately holds for the vectors added meanwhile (every transcript message and memory
is embedded): per vector, hnswlib's element in Chroma's HNSW segment, 384 float32 = 1,536 B of
data + level-0 links (2M = 32 x 4 B + a 4 B count = 132 B) + an 8 B label, and its upper-level
links and label-map entry, about 60 B amortised (a level above 0 with probability 1/M = 1/16,
68 B each; ~48 B per hash-map entry): 1,736 B. Measured for comparison, Steward's VectorIndex
alone (embedded Chroma 1.5, upserts of two with queries between, 3,000 -> 9,000 vectors) grows
about 2,170 B per vector: the allowance is the smaller, computed figure. SQLite's page cache is
bounded by its cache_size, so nothing is subtracted for it.

  python bench/soak.py                           # the full soak (make soak)
  python bench/soak.py --turns 50 --runs 10 --days 1 --week-seconds 20   # a smoke run
  python bench/soak.py --turns 3000 --runs 300 --week-seconds 300 --env MALLOC_ARENA_MAX=16
      # the slope in ~6 minutes; --env sets Steward's environment (here: glibc's default arenas
      # on 2 CPUs, undoing memory/allocator.py's cap for an A/B)
  python bench/soak.py ... --trace FILE   # tracemalloc in Steward: Python's growth after warm-up

(Over 400 lines: the week's driver, its clock, the sampling at rest and the verdict are one
procedure; what reads the Steward process is in bench/soak_probe.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from common import ROOT, TimedAnthropic, TimedTelegram, drive_turns, first_poll, terminate
from soak_probe import CHROMA_POOL_MAX, HTTP_POOL_MAX, sample, what_grew
from steward_side import OWNER_TG, steward_env

sys.path.insert(0, str(ROOT))

CHILD = [sys.executable, str(ROOT / "bench" / "soak_child.py")]
VECTOR_BYTES = 1536 + 132 + 8 + 60  # see the module's docstring
MIB = 2**20


# -- the state the week starts from ---------------------------------------------------------


def job_mix(count: int) -> list[str]:
    """One briefing, a tenth check-ins, a fifth tasks, the rest reminders."""
    checkins = max(1, count // 10) if count > 2 else 0
    tasks = max(1, count // 5) if count > 3 else 0
    kinds = ["briefing"] + ["checkin"] * checkins + ["task"] * tasks
    return (kinds + ["reminder"] * count)[:count]


async def prepare(data: Path, *, runs: int, days: int, start: datetime) -> dict[str, int]:
    """The owner, their chat and ceil(runs / days) daily schedules at times spread over the day
    (each fires once a day, its first time within a day of `start`)."""
    from agent.scheduler.recurrence import Recurrence
    from agent.types import Address, address_to_json
    from memory.clock import SystemClock
    from memory.people import Identity
    from memory.stores import Stores

    stores = await Stores.open(data / "steward.db", SystemClock())
    try:
        owner = await stores.people.ensure_owner([Identity("telegram", str(OWNER_TG))])
        chat = await stores.people.chat("telegram", str(OWNER_TG))
        destination = address_to_json(Address("telegram", str(OWNER_TG), None))
        count = math.ceil(runs / days)
        zone = ZoneInfo("UTC")  # Steward's default timezone (STEWARD_TIMEZONE is not set)
        first_minute = start.hour * 60 + start.minute + 1
        kinds = job_mix(count)
        for i, kind in enumerate(kinds):
            at = (first_minute + round(i * 1440 / count)) % 1440
            recurrence = Recurrence(hour=at // 60, minute=at % 60)
            payload: dict[str, Any] = {}
            if kind == "reminder":
                payload = {"text": f"stretch and drink water ({i})"}
            elif kind == "task":
                payload = {"text": f"look over today's plan and say what comes next ({i})"}
            elif kind == "checkin":
                goal = await stores.goals.add(owner.id, f"Run 5 km without stopping ({i})")
                payload = {"goal_id": goal.id}
            await stores.schedules.add(
                user_id=owner.id,
                chat_id=chat.id,
                kind=kind,
                trigger=recurrence.to_trigger(),
                payload=payload,
                next_run_at=recurrence.next_after(start, zone),
                destination=destination,
            )
        return {k: kinds.count(k) for k in ("reminder", "task", "checkin", "briefing")}
    finally:
        await stores.close()


class SimClock:
    """The soaked process's clock, read from here (the same formula as soak_child.FastClock)."""

    def __init__(self, epoch: float, factor: float) -> None:
        self.epoch, self.factor = epoch, factor

    def days(self) -> float:
        return (time.time() - self.epoch) * self.factor / 86400

    def real_at(self, days: float) -> float:
        return self.epoch + days * 86400 / self.factor


# -- the soak ---------------------------------------------------------------------------------


async def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    factor = args.days * 86400 / args.week_seconds
    epoch = time.time() + args.lead  # start-up happens before the week starts
    start = datetime.fromtimestamp(epoch, UTC)
    mix = await prepare(data, runs=args.runs, days=args.days, start=start)
    clock = SimClock(epoch, factor)
    every = args.every or max(1, args.turns // 40)
    curve: list[dict[str, Any]] = []
    missing = done = 0
    log = work / "steward.log"
    stop = asyncio.Event()  # Ctrl-C / SIGTERM: stop driving turns, measure and report
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with TimedAnthropic(args.latency) as fa, TimedTelegram() as tg:
        env = steward_env(data, tg, fa) | dict(item.split("=", 1) for item in args.env)
        port = int(env["STEWARD_HTTP_PORT"])
        ports = {"model API fake": fa.base_url, "Telegram fake": tg.base_url}
        peers = {int(url.rsplit(":", 1)[1].split("/")[0]): name for name, url in ports.items()}
        print(  # to read the sockets named by port in "open files added"
            "soak: ports: "
            + ", ".join(
                f"{name} :{url.rsplit(':', 1)[1].split('/')[0]}" for name, url in ports.items()
            )
            + f", Steward's HTTP server :{port}",
            flush=True,
        )
        cmd = [*CHILD, "--epoch", repr(epoch), "--factor", repr(factor)]
        if args.trace:
            cmd += ["--trace", str(args.trace.resolve())]
        traced = False
        with log.open("ab") as out:
            launched = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *cmd,
                env=env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # a Ctrl-C here stops the soak, not Steward
            )
            try:
                if why := await first_poll(tg, proc, launched):
                    raise RuntimeError(f"steward {why}; see {log}")
                ready_s = (tg.first_poll_at or launched) - launched
                await asyncio.sleep(max(0.0, epoch - time.time()))
                print(
                    f"soak: ready in {ready_s:.1f}s; {args.turns:,} turns and "
                    f"{args.runs:,} runs ({mix}) over {args.days} simulated days "
                    f"at x{factor:,.0f} ({args.week_seconds:g}s)",
                    flush=True,
                )
                cpu0 = cpu_s(proc.pid)
                curve.append(await sample(proc.pid, port, data / "steward.db", clock, 0, peers))
                print_row(curve[-1], header=True)
                spacing = args.days / args.turns
                for i in range(args.turns):
                    await asyncio.sleep(max(0.0, clock.real_at(i * spacing) - time.time()))
                    if stop.is_set():
                        print(f"soak: stopped after {done:,} turns", flush=True)
                        break
                    try:
                        await drive_turns(tg, fa, 1, chat=OWNER_TG, start_seq=i, timeout=60)
                    except TimeoutError:
                        missing += 1
                    done = i + 1
                    if (i + 1) % every == 0 or i + 1 == args.turns:
                        curve.append(
                            await sample(proc.pid, port, data / "steward.db", clock, i + 1, peers)
                        )
                        print_row(curve[-1])
                        if args.trace and not traced and curve[-1]["day"] >= args.warmup_days:
                            proc.send_signal(signal.SIGUSR2)  # tracemalloc's baseline
                            traced = True
                    if proc.returncode is not None:
                        raise RuntimeError(f"steward exited ({proc.returncode}); see {log}")
                lag_days = clock.days() - args.days
                # the rest of the week, then a simulated hour for the last runs to finish
                until = clock.real_at(args.days + 1 / 24)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, until - time.time()))
                curve.append(await sample(proc.pid, port, data / "steward.db", clock, done, peers))
                print_row(curve[-1])
                cpu = cpu_s(proc.pid) - cpu0
                if traced and args.trace is not None:
                    size = args.trace.stat().st_size if args.trace.exists() else 0
                    proc.send_signal(signal.SIGUSR2)  # what Python holds beyond the baseline
                    for _ in range(300):  # a snapshot of a large heap takes a while
                        await asyncio.sleep(1.0)
                        if args.trace.exists() and args.trace.stat().st_size > size:
                            break
            finally:
                await terminate(proc)
        wall = time.perf_counter() - launched
    runs = run_counts(data / "steward.db", start + timedelta(days=args.days))
    return report(args, curve, runs, missing, mix, factor, wall, cpu, lag_days) | {
        "turns": done,
        "turns_planned": args.turns,
        "stopped_early": stop.is_set(),
    }


def cpu_s(pid: int) -> float:
    from common import cpu_seconds

    return cpu_seconds(pid)


def run_counts(db: Path, week_end: datetime) -> dict[str, Any]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        rows = c.execute(
            "SELECT kind, status, count(*), sum(due_at < ?) FROM schedule_runs"
            " GROUP BY kind, status ORDER BY kind, status",
            (week_end.isoformat(timespec="microseconds"),),
        ).fetchall()
        late = c.execute("SELECT max(late_seconds) FROM schedule_runs").fetchone()[0]
    return {
        "by_kind": {f"{k} {s}": n for k, s, n, _ in rows},
        "total": sum(n for *_, n, _ in rows),
        "in_week": sum(int(w or 0) for *_, w in rows),
        "max_late_sim_s": late,
    }


def report(
    args: argparse.Namespace,
    curve: list[dict[str, Any]],
    runs: dict[str, Any],
    missing: int,
    mix: dict[str, int],
    factor: float,
    wall: float,
    cpu: float,
    lag_days: float,
) -> dict[str, Any]:
    warm_turns = args.turns * args.warmup_days / args.days
    warm = next(
        (r for r in curve if r["day"] >= args.warmup_days and r["turns"] >= warm_turns), curve[-1]
    )
    last = curve[-1]
    rss_growth = last["rss_mib"] - warm["rss_mib"]
    vectors_added = last["vectors"] - warm["vectors"]
    index_mib = vectors_added * VECTOR_BYTES / MIB
    after = curve[curve.index(warm) :]
    quarter = max(1, len(after) // 4)
    # a leak shows as a higher peak late than early: the last quarter's peak against the first's
    growth = {
        key: {
            "at_warm": warm[key],
            "first_quarter_max": max(r[key] for r in after[:quarter]),
            "last_quarter_max": max(r[key] for r in after[-quarter:]),
            "last": last[key],
        }
        for key in ("fds_but_pools", "threads_but_pool", "tasks")
    }
    pool_peak = max(r.get("chroma_pool", 0) for r in after)
    http_peak = {
        name: max(r.get("http_pools", {}).get(name, 0) for r in after)
        for name in last.get("http_pools", {})
    }
    beyond = rss_growth - index_mib
    return {
        "turns": args.turns,
        "missing_replies": missing,
        "runs": runs,
        "schedules": mix,
        "simulated_days": args.days,
        "clock_factor": round(factor, 1),
        "turns_lagged_days": round(max(0.0, lag_days), 3),
        "wall_s": round(wall, 1),
        "steward_cpu_s": round(cpu, 1),
        "warmup": {"day": warm["day"], "turns": warm["turns"], "rss_mib": warm["rss_mib"]},
        "rss_growth_mib": round(rss_growth, 1),
        "vectors_added": vectors_added,
        "index_allowance_mib": round(index_mib, 1),
        "rss_growth_beyond_index_mib": round(beyond, 1),
        "rss_ok": beyond <= args.rss_limit,
        "growth": growth,
        "fds_grew": what_grew(warm.get("open_files", {}), last.get("open_files", {})),
        "threads_grew": what_grew(warm.get("thread_names", {}), last.get("thread_names", {})),
        "chroma_pool_peak": pool_peak,
        "http_pool_peak": http_peak,
        "no_growth": all(g["last_quarter_max"] <= g["first_quarter_max"] for g in growth.values())
        and pool_peak <= CHROMA_POOL_MAX
        and all(n <= HTTP_POOL_MAX for n in http_peak.values()),
        "curve": curve,
    }


# -- printing ---------------------------------------------------------------------------------

SPARKS = "▁▂▃▄▅▆▇█"


def print_row(row: dict[str, Any], *, header: bool = False) -> None:
    if header:
        print(
            f"{'day':>6} {'turns':>7} {'runs':>6} {'vectors':>8} {'RSS MiB':>8} {'anon':>6} "
            f"{'fds':>5} {'threads':>7} {'tasks':>6}"
        )
    print(
        f"{row['day']:>6.2f} {row['turns']:>7,} {row['runs']:>6,} {row['vectors']:>8,} "
        f"{row['rss_mib']:>8.1f} {row.get('anon_mib', 0):>6.1f} {row['fds']:>5} "
        f"{row['threads']:>7} {row['tasks']:>6}",
        flush=True,
    )


def spark(values: list[float]) -> str:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARKS[min(7, int((v - low) / span * 8))] for v in values)


def print_summary(out: dict[str, Any]) -> None:
    curve = out["curve"]
    print()
    for key in ("rss_mib", "fds", "threads", "tasks"):
        values = [float(r[key]) for r in curve]
        print(f"  {key:>8} {spark(values)}  {min(values):g} .. {max(values):g}")
    runs = out["runs"]
    print(
        f"\nturns: {out['turns']:,} of {out['turns_planned']:,}, "
        f"missing replies: {out['missing_replies']}; "
        f"self-initiated runs: {runs['total']:,} ({runs['in_week']:,} due within the week; "
        f"{', '.join(f'{k}: {n}' for k, n in runs['by_kind'].items())})"
    )
    print(
        f"RSS after warm-up (day {out['warmup']['day']}, {out['warmup']['turns']:,} turns): "
        f"{out['warmup']['rss_mib']} MiB; growth {out['rss_growth_mib']} MiB, of which the vector "
        f"index of {out['vectors_added']:,} vectors added ({VECTOR_BYTES} B each) "
        f"{out['index_allowance_mib']} MiB; beyond it {out['rss_growth_beyond_index_mib']} MiB "
        f"({'ok' if out['rss_ok'] else 'OVER'} against {32} MiB)"
    )
    growth = ", ".join(
        f"{k} {g['at_warm']} -> {g['last']} (peak {g['first_quarter_max']} in the first "
        f"quarter, {g['last_quarter_max']} in the last)"
        for k, g in out["growth"].items()
    )
    print(f"after warm-up: {growth}: {'no growth' if out['no_growth'] else 'GROWTH'}")
    print(
        f"  Chroma's SQLite pool: peak {out['chroma_pool_peak']} connections after warm-up "
        f"(bound {CHROMA_POOL_MAX}, sqlx's default; not counted above)"
    )
    pools = ", ".join(f"{name} {n}" for name, n in out["http_pool_peak"].items())
    print(
        f"  HTTP keep-alive pools: peak connections after warm-up: {pools} "
        f"(bound {HTTP_POOL_MAX} each, aiohttp's connector limit; not counted above)"
    )
    print(f"  open files added: {out['fds_grew']}; threads added: {out['threads_grew']}")
    print(
        f"wall {out['wall_s']}s (clock x{out['clock_factor']:,}; turns lagged the clock by "
        f"{out['turns_lagged_days']} days), Steward CPU {out['steward_cpu_s']}s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--week-seconds", type=float, default=660.0, help="real seconds")
    parser.add_argument("--lead", type=float, default=20.0, help="real s from launch to day 0")
    parser.add_argument("--warmup-days", type=float, default=1.0)
    parser.add_argument("--every", type=int, default=0, help="turns between samples")
    parser.add_argument("--latency", type=float, default=0.0, help="the fake model's, seconds")
    parser.add_argument("--rss-limit", type=float, default=32.0, help="MiB")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--trace", type=Path, help="tracemalloc in Steward: its report here")
    parser.add_argument(
        "--env", action="append", default=[], metavar="K=V", help="extra environment for Steward"
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = args.keep
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        out = asyncio.run(soak(args, work))
    print_summary(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    ok = out["missing_replies"] == 0 and out["rss_ok"] and out["no_growth"]
    ok = ok and not out["stopped_early"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
