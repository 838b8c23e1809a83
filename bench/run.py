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


# -- the table -------------------------------------------------------------------------------


def _p(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "-"
    return f"{summary['p50']:.1f} / {summary['p95']:.1f} / {summary['p99']:.1f}"


def table(r: dict[str, Any]) -> str:
    s, peer, mem = r.get("steward", {}), r.get("peer", {}), r.get("memory", {})
    why = peer.get("error")
    rows: list[tuple[str, str, str]] = []

    def row(name: str, mine: Any, theirs: Any = "") -> None:
        rows.append((name, str(mine), str(theirs)))

    def peer_value(key: str, fmt: str = "{}") -> str:
        if why:
            return f"n/a: {why}"
        value = peer.get(key)
        return fmt.format(value) if value is not None else "-"

    lat = r["model_latency_s"]
    row(
        f"Turn overhead p50/p95/p99 ms, 0 memories ({s.get('turns')} turns; peer "
        f"{peer.get('turns', '-')})",
        _p(s.get("overhead_ms")),
        f"n/a: {why}" if why else _p(peer.get("overhead_ms")) + " (incl. 200 ms reorder wait)",
    )
    for m in s.get("with_memories", []):
        row(
            f"Turn overhead p50/p95/p99 ms, {m['memories']:,} memories "
            f"({m['overhead_ms']['n']} turns)",
            _p(m["overhead_ms"]),
            "n/a: nanobot has no long-term memory store to fill",
        )
    for m in s.get("with_memories", []):
        row(
            f"RSS MiB with {m['memories']:,} memories, after {m['overhead_ms']['n']} turns",
            m["rss_mib"],
            "",
        )

    def cpu(x: dict[str, Any]) -> str:
        if "cpu_ms_per_turn" not in x:
            return "-"
        if "embedder_cpu_ms_per_turn" not in x:
            return str(x["cpu_ms_per_turn"])
        return (
            f"{x['cpu_ms_per_turn']} (embedder {x['embedder_cpu_ms_per_turn']}, "
            f"{x['embedder_calls_per_turn']:g} calls)"
        )

    row(
        "CPU ms per turn (process; of which the embedder's own), 0 memories",
        cpu(s),
        peer_value("cpu_ms_per_turn"),
    )
    for m in s.get("with_memories", []):
        row(f"CPU ms per turn, {m['memories']:,} memories", cpu(m), "")
    if g := s.get("gc"):
        row(
            "garbage collector over those turns: full collections (their pause ms); all, ms a turn",
            f"{g['full_collections']} ({g['full_pause_ms']}); {g['ms_per_turn']}"
            f" ({g['frozen']:,} start-up objects frozen)",
            "",
        )
    c = s.get("concurrency") or {}
    if c:
        row(
            f"Concurrency: {c['chats']} chats x {c['messages'] // max(1, c['chats'])} msgs, "
            f"model {c['model_latency_s']:g} s: all replies out",
            f"{c['all_replies_s']} s, {c['messages_per_s']} msg/s",
            "not measured",
        )
        if rounds := c.get("rounds"):
            row(
                "Concurrency: each round's model calls, first-last s (the burst's shape)",
                " / ".join(
                    f"{r['model_calls_s'][0]}-{r['model_calls_s'][-1]}"
                    for r in rounds
                    if r["model_calls_s"]
                ),
                "",
            )
        row(
            "Concurrency: chats whose replies kept order / missing replies",
            f"{c['chats_in_order']}/{c['chats']} / {c['missing_replies']}",
            "",
        )
    for m in s.get("with_memories", []):
        x = m["retrieval"]
        row(
            f"Memory retrieval p50/p95 ms, {m['memories']:,} memories (one user, "
            f"{x['queries']} queries)",
            f"{x['p50_ms']:.1f} / {x['p95_ms']:.1f}",
            "n/a: no comparable store",
        )
    quality = mem.get("quality") or {}
    for mode in ("hybrid", "vector", "keyword"):
        if q := quality.get(mode):
            row(
                f"Memory recall@5 / MRR, labelled set ({quality['cases']} cases), {mode}"
                + (" (the default)" if mode == "hybrid" else " only"),
                f"{q['recall@5']:.3f} / {q['mrr']:.3f}",
                "n/a: no comparable store",
            )
    if not quality and mem.get("error"):
        row("Memory figures", mem["error"], "")
    sch = s.get("scheduler")
    if sch:
        row(
            f"Scheduler: start-up with {sch['schedules']:,} schedules (ready / scheduler up)",
            f"{sch['start_to_ready_s']:.2f} s / {sch['start_to_scheduler_up_s']:.2f} s",
            "not measured",
        )
        row(
            f"Scheduler: {sch['reminders']} reminders over {sch['spread_s']:g} s, late "
            "p50/p99/max ms",
            (
                f"{sch['late_ms']['p50']:.0f} / {sch['late_ms']['p99']:.0f} / "
                f"{sch['late_ms']['max']:.0f}"
                if sch.get("late_ms")
                else "-"
            )
            + (f" ({sch['missing']} not sent within 60 s)" if sch.get("missing") else ""),
            "not measured",
        )
    up = r.get("startup") or {}
    mine_up, theirs_up = up.get("steward") or {}, up.get("peer") or {}

    def started(side: dict[str, Any], key: str) -> str:
        if side.get("error") and key not in side:
            return f"n/a: {side['error']}"
        return f"{side[key]:.2f}" if key in side else "-"

    if up:
        reps = f"median of {up.get('reps')} fresh starts"
        row(
            f"Start to ready s (first getUpdates), {reps}",
            *(started(x, "ready_s") for x in (mine_up, theirs_up)),
        )
        row(
            f"Start to first reply s (a message waiting at start), {reps}",
            *(started(x, "first_reply_s") for x in (mine_up, theirs_up)),
        )
        row(
            "CPU s of the process at the first reply, median",
            *(started(x, "cpu_at_reply_s") for x in (mine_up, theirs_up)),
        )
    else:
        row(
            "Start to ready s (first getUpdates)",
            s.get("start_to_ready_s", "-"),
            peer_value("start_to_ready_s"),
        )
    row(
        "Idle RSS MiB, just started (Chroma up, embedder "
        + (
            "checked, then let go until the first search)"
            if s.get("embedder_let_go_at_start")
            else "loaded)"
        ),
        s.get("idle_rss_mib", "-"),
        peer_value("idle_rss_mib"),
    )
    row(
        "Idle RSS MiB, settled: after the turns and burst, embedder let go when idle",
        s.get("idle_settled_rss_mib") or "-",
        peer_value("idle_rss_mib"),
    )
    bound = r.get("rss_bound_mib", 64)
    # from the first turn on (the embedder loaded again), not from idle, where it is let go
    base = s.get("rss_after_first_turn_mib") or s.get("idle_rss_mib") or 0
    grew = (s.get("rss_after_turns_mib") or 0) - base
    held = "held" if grew <= bound else "EXCEEDED"
    row(
        f"RSS MiB after {s.get('turns')} turns (bound: after the first + {bound:g} MiB)",
        f"{s.get('rss_after_turns_mib', '-')} (+{grew:.1f}, {held})",
        peer_value("rss_after_turns_mib") + ("" if why else f" after {peer.get('turns')}"),
    )
    row(
        "Disk MiB per 1,000 turns: SQLite / Chroma",
        f"{s.get('db_mib_per_1000_turns', '-')} / {s.get('chroma_mib_per_1000_turns', '-')}",
        (
            f"n/a: {why}"
            if why
            else f"{peer.get('disk_mib', 0) / max(1, peer.get('turns', 1)) * 1000:.2f} "
            "(all files, JSONL sessions)"
        ),
    )
    tok = s.get("tokens") or {}
    ptok = peer.get("tokens") or {}

    def share(t: dict[str, Any]) -> str:
        value = t.get("cache_read_share")
        return f"{value * 100:.1f} %" if value is not None else "-"

    if tok:
        row(
            f"Input tokens per turn, mean over a {tok['turns']}-turn conversation",
            tok["input_tokens_per_turn_mean"],
            f"n/a: {why}" if why else ptok.get("input_tokens_per_turn_mean", "-"),
        )
        row(
            "Share of input tokens read from the prompt cache",
            share(tok),
            f"n/a: {why}" if why else share(ptok),
        )
    width = [max(len(x[i]) for x in rows) for i in range(3)]
    width[0] = max(width[0], 10)
    head = ("Figure", "Steward", "nanobot 0.3.5")
    width = [max(w, len(h)) for w, h in zip(width, head, strict=True)]
    lines = [
        f"make bench ({r['mode']}): fake model latency {lat * 1000:g} ms subtracted per model "
        f"call; {r['machine']['cpus']} CPUs; took {r['total_s']:.0f} s",
        "  ".join(h.ljust(w) for h, w in zip(head, width, strict=True)),
        "  ".join("-" * w for w in width),
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(x, width, strict=True)) for x in rows]
    pieces = r.get("rss_breakdown")
    if isinstance(pieces, list) and pieces:
        lines.append("")
        lines.append(
            "Where Steward's RSS goes (bench/rss_breakdown.py: pieces loaded one by one in a "
            "fresh process, nothing started):"
        )
        lines += [f"  {label:<44} {figure}" for label, figure in rss_breakdown.rows(pieces)]
    elif isinstance(pieces, dict):
        lines.append(f"RSS breakdown: {pieces.get('error')}")
    if peer.get("tiktoken"):
        lines.append(f"peer tokens: {peer['tiktoken']}")
    return "\n".join(lines)


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
