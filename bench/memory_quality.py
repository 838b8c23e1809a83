"""Retrieval quality on both labelled sets, for `make bench-memory` (bench/memory_bench.py).

- the realistic conversations (tests/data/conversations/, bench/conversations_gen.py): every turn
  kept as a transcript row with `save_messages`; any@10, all@10 and MRR by question type;
- the original set (tests/data/retrieval_set.jsonl): memories saved one by one; recall@5 (=
  any@5 = all@5 there: one expected memory a case, nearly always) and MRR by category.

Hybrid, vector-only and keyword-only each get their weights by 5-fold cross-validation
(memory.longterm.fitting): every figure printed is held out — scored with weights chosen
without the fold the question is in. Only the public memory API is used.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.clock import FrozenClock
from memory.db import Database
from memory.embedder import Embedder
from memory.longterm import LongTermMemory, VectorIndex, Weights
from memory.longterm.evaluation import load_labelled_set
from memory.longterm.fitting import configurations, cross_validate
from memory.longterm.labelled import (
    Collected,
    collect,
    load_conversations,
    old_set_cases,
    store_conversations,
    summary,
)

__all__ = ["CONVERSATIONS", "MODES", "collect_both", "print_quality", "quality_tables"]

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = ROOT / "tests" / "data" / "conversations"
LABELLED = ROOT / "tests" / "data" / "retrieval_set.jsonl"
NOW = datetime(2025, 11, 1, 12, tzinfo=UTC)
MODES = ("hybrid", "vector", "keyword")


async def collect_both(
    embedder: Embedder, tmp: Path, *, conversations: list[str] | None = None, limit: int = 40
) -> tuple[list[Collected], dict[str, float]]:
    """Store both sets in a fresh store (vectors by `embedder`) and collect every question's
    candidates once. Returns them and timings (s)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    db = await Database.open(tmp / "quality.db")
    store = LongTermMemory(db, FrozenClock(NOW), query_cache=0)
    index = VectorIndex.open(path=tmp / "quality-chroma", embedder=embedder.name, dim=embedder.dim)
    await store.attach(embedder, index)
    try:
        cases = await store_conversations(store, load_conversations(CONVERSATIONS, conversations))
        cases += await old_set_cases(store, load_labelled_set(LABELLED), NOW)
        await store.flush_vectors()
        timings["store_s"] = time.perf_counter() - started
        started = time.perf_counter()
        collected = await collect(store, cases, limit=limit)
        timings["collect_s"] = time.perf_counter() - started
    finally:
        await store.close()
        await db.close()
    return collected, timings


def quality_tables(
    collected: list[Collected], *, folds: int = 5, quick: bool = False
) -> dict[str, Any]:
    """Held-out figures per mode and set, by question type; the weights each fold chose and
    the weights chosen on everything (the shipped default should be these)."""
    out: dict[str, Any] = {"folds": folds, "modes": {}}
    for mode in MODES:
        configs = configurations(mode)
        if quick:
            configs = configs[:: max(1, len(configs) // 8)]
        started = time.perf_counter()
        cv = cross_validate(collected, mode, folds=folds, configs=configs)
        sets = {}
        for name in ("conversations", "original"):
            scores = [s for s in cv.held_out if s.case.set == name]
            if scores:
                sets[name] = summary(scores)
        for wording in ("natural", "paraphrased"):
            scores = [s for s in cv.held_out if s.case.wording == wording]
            if scores:
                sets[f"conversations:{wording}"] = summary(scores)
        out["modes"][mode] = {
            "sets": sets,
            "configs": len(configs),
            "seconds": round(time.perf_counter() - started, 1),
            "final": _knobs(cv.final),
            "per_fold": [_knobs(w) for w in cv.chosen],
        }
    return out


def _knobs(weights: Weights) -> dict[str, Any]:
    keys = (
        "keyword_share",
        "keyword_adapt",
        "normalise",
        "informativeness",
        "neighbour",
        "vector_floor",
    )
    return {k: v for k, v in asdict(weights).items() if k in keys}


def print_quality(result: dict[str, Any], embedder: str) -> None:
    modes = result["modes"]
    for name, k in (("conversations", 10), ("original", 5)):
        if not any(name in modes[m]["sets"] for m in MODES):
            continue
        label = (
            "realistic conversations (tests/data/conversations)"
            if name == "conversations"
            else "original set (tests/data/retrieval_set.jsonl)"
        )
        print(f"\nRetrieval on the {label}, embedder {embedder}")
        print(f"held-out figures ({result['folds']}-fold cross-validation of the weights)")
        head = f"{'any@' + str(k):>7} {'all@' + str(k):>7}"
        print(f"{'mode':<8} {'question type':<14} {'cases':>5} {head} {'MRR':>6}")
        for mode in MODES:
            rows = modes[mode]["sets"].get(name, {})
            for qtype, row in rows.items():
                if qtype == "all":
                    continue
                print(
                    f"{mode:<8} {qtype:<14} {row['cases']:>5} {row['any']:>7.3f} "
                    f"{row['all']:>7.3f} {row['mrr']:>6.3f}"
                )
            row = rows["all"]
            print(
                f"{mode:<8} {'ALL':<14} {row['cases']:>5} {row['any']:>7.3f} {row['all']:>7.3f} "
                f"{row['mrr']:>6.3f}"
                + (f"  superseded returned: {row['forbidden']}" if name == "original" else "")
            )
        best_part = max(modes[m]["sets"][name]["all"]["any"] for m in ("vector", "keyword"))
        hybrid = modes["hybrid"]["sets"][name]["all"]["any"]
        verdict = "holds" if hybrid >= best_part else "DOES NOT HOLD"
        print(f"hybrid any@{k} {hybrid:.3f} >= best part {best_part:.3f}: {verdict}")
    slices = [
        n
        for n in ("conversations:natural", "conversations:paraphrased")
        if n in modes["hybrid"]["sets"]
    ]
    if slices:
        print("\nRealistic set by wording (held out): questions naming the evidence's words")
        print("(natural) and paraphrased ones; any@10 / all@10 / MRR")
        print(f"{'wording':<12} {'cases':>5} " + " ".join(f"{m:>20}" for m in MODES))
        for name in slices:
            rows = {m: modes[m]["sets"][name]["all"] for m in MODES}
            cells = " ".join(
                f"{r['any']:>6.3f} {r['all']:>6.3f} {r['mrr']:>6.3f}" for r in rows.values()
            )
            best_part = max(rows["vector"]["any"], rows["keyword"]["any"])
            verdict = "holds" if rows["hybrid"]["any"] >= best_part else "DOES NOT HOLD"
            print(
                f"{name.split(':')[1]:<12} {rows['hybrid']['cases']:>5} {cells}  "
                f"hybrid >= best part: {verdict}"
            )
    print("\nWeights chosen on every case (the default to ship), per mode:")
    for mode in MODES:
        info = modes[mode]
        print(
            f"  {mode:<8} {info['final']}  ({info['configs']} configurations, {info['seconds']} s)"
        )
