"""Cold start, Steward next to nanobot: start to ready and start to first reply.

    python bench/startup.py               # 5 starts of each, alternating; medians
    python bench/startup.py --reps 9 --no-peer

A message already waits on the fake Telegram when the process starts. *Start to ready* is the
process's first getUpdates; *start to first reply* is the moment the answer to the waiting
message (through the fake model) arrives as a sendMessage. Each start uses a fresh data
directory (Steward) or a fresh config and HOME (nanobot), so both do their first-start work.
The process's CPU seconds at the reply are given too: on a shared machine they move less than
wall time. bench/run.py calls `compare()` for its table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_nanobot
from common import TimedAnthropic, TimedTelegram, cpu_seconds, first_poll, marker, terminate
from steward_side import OWNER_TG, STEWARD, steward_env

WAITING = marker(OWNER_TG, 7)


async def _one(
    work: Path, spawn: Any, tg: TimedTelegram, log_name: str, limit: float
) -> dict[str, Any]:
    """Start, wait for the first poll and the waiting message's reply; figures in seconds."""
    tg.push_message(f"please note {WAITING}", user_id=OWNER_TG)
    with (work / log_name).open("wb") as log:
        started = time.perf_counter()
        proc = await spawn(log)
        try:
            if why := await first_poll(tg, proc, started, limit):
                return {"error": f"{why}; see {work / log_name}"}
            assert tg.first_poll_at is not None
            try:
                sent, _, _ = await tg.reply_to(WAITING, limit)
            except TimeoutError:
                return {"error": f"no reply to the waiting message; see {work / log_name}"}
            cpu = cpu_seconds(proc.pid)
            return {
                "ready_s": tg.first_poll_at - started,
                "first_reply_s": sent - started,
                "cpu_at_reply_s": cpu,
            }
        finally:
            await terminate(proc)


async def steward_start(work: Path, *, latency: float, limit: float = 60.0) -> dict[str, Any]:
    async with TimedAnthropic(latency) as fa, TimedTelegram() as tg:

        async def spawn(log: Any) -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                *STEWARD,
                env=steward_env(work / "data", tg, fa),
                cwd=peer_nanobot.ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

        return await _one(work, spawn, tg, "steward.log", limit)


async def nanobot_start(
    work: Path, prepared: peer_nanobot.Prepared, *, latency: float, limit: float = 60.0
) -> dict[str, Any]:
    async with TimedAnthropic(latency) as fa, TimedTelegram() as tg:

        async def spawn(log: Any) -> asyncio.subprocess.Process:
            return await peer_nanobot.start_gateway(work, tg, fa, prepared.tiktoken_cache, log)

        return await _one(work, spawn, tg, "gateway.log", limit)


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"starts": len(runs), "ok": len(good)}
    if errors := [r["error"] for r in runs if "error" in r]:
        out["error"] = errors[0]
    for key in ("ready_s", "first_reply_s", "cpu_at_reply_s"):
        values = sorted(r[key] for r in good)
        if values:
            out[key] = round(statistics.median(values), 3)
            out[f"{key}_all"] = [round(v, 3) for v in values]
    return out


async def compare(
    scratch: Path,
    *,
    reps: int,
    latency: float,
    prepared: peer_nanobot.Prepared | None,
) -> dict[str, Any]:
    """`reps` starts of each, alternating (Steward, nanobot, Steward, ...); medians.
    `prepared` None: Steward only."""
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    peer = prepared is not None and not prepared.error
    # one start of each first, not counted: it writes Steward's .pyc files and fills the
    # page cache for both
    await steward_start(_fresh(scratch / "warm-steward"), latency=latency)
    if peer:
        assert prepared is not None
        await nanobot_start(_fresh(scratch / "warm-nanobot"), prepared, latency=latency)
    for i in range(reps):
        mine.append(await steward_start(_fresh(scratch / f"steward-{i}"), latency=latency))
        print(f"  start {i + 1}/{reps}: steward {_brief(mine[-1])}", end="", flush=True)
        if peer:
            assert prepared is not None
            work = _fresh(scratch / f"nanobot-{i}")
            theirs.append(await nanobot_start(work, prepared, latency=latency))
            print(f"; nanobot {_brief(theirs[-1])}", end="", flush=True)
        print(flush=True)
    out = {"reps": reps, "steward": _medians(mine)}
    if prepared is None:
        out["peer"] = {"error": "skipped"}
    elif prepared.error:
        out["peer"] = {"error": prepared.error}
    else:
        out["peer"] = _medians(theirs)
    return out


def _fresh(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _brief(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"error: {r['error']}"
    return f"ready {r['ready_s']:.2f} s, reply {r['first_reply_s']:.2f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5, help="starts of each")
    p.add_argument("--latency", type=float, default=0.02, help="fake model latency, s")
    p.add_argument("--no-peer", action="store_true", help="Steward only")
    args = p.parse_args(argv)
    prepared = None if args.no_peer else peer_nanobot.prepare()
    scratch = Path(tempfile.mkdtemp(prefix="steward-startup-"))
    try:
        result = asyncio.run(
            compare(scratch, reps=args.reps, latency=args.latency, prepared=prepared)
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
