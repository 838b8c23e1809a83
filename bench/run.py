"""`make bench`: Steward measured end to end against loopback fakes, next to nanobot.

    python bench/run.py            # the full run (`make bench`), under 10 minutes on 2 cores
    python bench/run.py --quick    # smaller sizes: a smoke run of every phase

`steward run` is started as a subprocess with TELEGRAM_API_BASE pointed at a FakeTelegram and
ANTHROPIC_BASE_URL at a FakeAnthropic answering after a fixed latency, so what is measured is
Steward itself. Everything listens on 127.0.0.1. Prints one table, writes bench/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peer_nanobot
import rss_breakdown
import startup
import steward_side
from bench_table import table
from common import ROOT

RESULTS = ROOT / "bench" / "results.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Steward benchmark (make bench)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--latency", type=float, default=0.02, help="fake model latency, s")
    p.add_argument("--turns", type=int, help="turns at 0 memories (footprint run); full 1000")
    p.add_argument("--memory-turns", type=int, help="turns at each memory size; full 500")
    p.add_argument("--memory-sizes", type=int, nargs="*", help="full: 10000 100000")
    p.add_argument("--chats", type=int, default=200, help="concurrency: chats sending at once")
    p.add_argument("--per-chat", type=int, default=3, help="concurrency: messages per chat")
    p.add_argument("--burst-latency", type=float, default=1.0, help="concurrency: model latency")
    p.add_argument("--schedules", type=int, help="schedules stored; full 10000")
    p.add_argument("--reminders", type=int, default=200, help="reminders falling due")
    p.add_argument("--spread", type=float, default=5.0, help="seconds the reminders span")
    p.add_argument("--lead", type=float, default=15.0, help="s from start to the first due")
    p.add_argument("--peer-turns", type=int, help="nanobot turns; full 500")
    p.add_argument("--peer-gap", type=float, default=0.0, help="think time between peer turns")
    p.add_argument("--no-peer", action="store_true", help="skip nanobot")
    p.add_argument("--start-reps", type=int, help="cold starts of each, medians; full 5")
    p.add_argument("--idle-wait", type=float, default=3.0, help="s after ready before idle RSS")
    p.add_argument("--rss-bound", type=float, default=64.0, help="MiB growth allowed over turns")
    p.add_argument("--rounds", type=int, default=1, help="retrieval latency: passes over the set")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    quick = args.quick
    args.turns = args.turns or (100 if quick else 1000)
    args.memory_turns = args.memory_turns or (50 if quick else 500)
    if args.memory_sizes is None:
        args.memory_sizes = [2000] if quick else [10_000, 100_000]
    args.schedules = args.schedules or (1000 if quick else 10_000)
    if quick:
        args.reminders = min(args.reminders, 50)
        args.chats = min(args.chats, 50)
        args.lead = min(args.lead, 15.0)
        args.idle_wait = min(args.idle_wait, 2.0)
    args.peer_turns = args.peer_turns or (30 if quick else 500)
    args.start_reps = args.start_reps or (3 if quick else 5)
    return args


async def memory_quality(quick: bool) -> dict[str, Any]:
    """recall@5 / MRR on the labelled set: bench/memory_bench.py's quality()."""
    from bench.memory_bench import LABELLED, quality
    from memory.embedder import load_embedder
    from memory.longterm.evaluation import load_labelled_set

    print("== memory: recall@5 / MRR on the labelled set (bench/memory_bench.py)", flush=True)
    embedder = await asyncio.to_thread(load_embedder, "minilm")
    labelled = load_labelled_set(LABELLED)
    with tempfile.TemporaryDirectory(prefix="steward-bench-q-") as tmp:
        return {"embedder": embedder.name, "quality": await quality(embedder, labelled, Path(tmp))}


def _save_partial(results: dict[str, Any]) -> None:
    """Figures so far, so an interrupted run still leaves them in bench/results.json."""
    RESULTS.write_text(json.dumps(results | {"partial": True}, indent=2) + "\n", encoding="utf-8")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    results: dict[str, Any] = {
        "mode": "quick" if args.quick else ("full" if len(sys.argv) == 1 else "custom"),
        "argv": sys.argv[1:],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model_latency_s": args.latency,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    phases: dict[str, float] = {}
    try:
        t = time.perf_counter()
        results["memory"] = await memory_quality(args.quick)
        phases["memory_quality"] = time.perf_counter() - t

        work = scratch / "steward"
        work.mkdir()
        print("== steward: footprint, turn overhead, tokens, concurrency", flush=True)
        t = time.perf_counter()
        results["steward"] = await steward_side.footprint_and_turns(
            work,
            turns=args.turns,
            latency=args.latency,
            idle_wait=args.idle_wait,
            concurrency={
                "chats": args.chats,
                "per_chat": args.per_chat,
                "latency": args.burst_latency,
            },
        )
        phases["steward_turns"] = time.perf_counter() - t
        _save_partial(results)
        results["steward"]["with_memories"] = []
        peer_setup: asyncio.Task[peer_nanobot.Prepared] | None = None
        for size in args.memory_sizes:
            t = time.perf_counter()
            if size == max(args.memory_sizes) and not args.no_peer:
                # the peer's install overlaps the largest store's filling, never a measurement
                peer_setup = asyncio.create_task(asyncio.to_thread(peer_nanobot.prepare))
            row = await steward_side.overhead_with_memories(
                work,
                total=size,
                turns=args.memory_turns,
                latency=args.latency,
                idle_wait=args.idle_wait,
                rounds=args.rounds,
                alongside=peer_setup,
            )
            results["steward"]["with_memories"].append(row)
            phases[f"steward_{size}_memories"] = time.perf_counter() - t
            _save_partial(results)
        print("== steward: scheduler", flush=True)
        t = time.perf_counter()
        results["steward"]["scheduler"] = await steward_side.scheduler(
            work,
            schedules=args.schedules,
            reminders=args.reminders,
            spread_s=args.spread,
            lead_s=args.lead,
            latency=args.latency,
        )
        phases["steward_scheduler"] = time.perf_counter() - t
        _save_partial(results)

        if args.no_peer:
            results["peer"] = {"error": "skipped (--no-peer)"}
        else:
            print("== peer: nanobot", flush=True)
            t = time.perf_counter()
            results["peer"] = await peer_nanobot.measure(
                scratch / "nanobot",
                turns=args.peer_turns,
                latency=args.latency,
                idle_wait=args.idle_wait,
                gap=args.peer_gap,
                prepared=await peer_setup if peer_setup is not None else None,
            )
            phases["peer"] = time.perf_counter() - t
        print("== start-up: start to ready, start to first reply (bench/startup.py)", flush=True)
        t = time.perf_counter()
        prepared = None
        if not args.no_peer:
            prepared = await peer_setup if peer_setup is not None else peer_nanobot.prepare()
        results["startup"] = await startup.compare(
            scratch / "startup", reps=args.start_reps, latency=args.latency, prepared=prepared
        )
        phases["startup"] = time.perf_counter() - t
        print("== steward: where the resident memory goes (bench/rss_breakdown.py)", flush=True)
        t = time.perf_counter()
        try:
            results["rss_breakdown"] = await asyncio.to_thread(rss_breakdown.breakdown)
        except (RuntimeError, OSError, ValueError) as exc:
            results["rss_breakdown"] = {"error": str(exc)[:300]}
        phases["rss_breakdown"] = time.perf_counter() - t
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"(scratch kept: {scratch})")
    results["phases_s"] = {k: round(v, 1) for k, v in phases.items()}
    results["total_s"] = round(time.perf_counter() - began, 1)
    results["rss_bound_mib"] = args.rss_bound
    return results


def cli(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = asyncio.run(main(args))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print()
    print(table(results))
    print(f"\n(written to {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
