"""The table `make bench` prints from its results (bench/results.json): Steward's figures side
by side with nanobot's, and the targets' ratios."""

from __future__ import annotations

from typing import Any

import rss_breakdown


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
    if quality:  # the default weights were picked on every case, these included
        row("  (in-sample: held-out figures are `make bench-memory`'s)", "", "")
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
