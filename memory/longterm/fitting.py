"""Choosing ranking weights by k-fold cross-validation, reporting only held-out figures.

Every case's candidates are collected once (`labelled.collect`); each configuration of the grid
ranks them all; for each fold, the configuration with the best utility on the other folds is
chosen and scored on that fold. The held-out scores of all folds together are what the bench
reports; the configuration chosen on every case is what ships as the default `Weights`.

Choosing: among the configurations that reach, on every set and on every wording slice of a set
(questions that reuse their evidence's words, and paraphrases), the any@k of the best
configuration using one list alone, the best mean utility (any@k, near-ties broken by all@k and
MRR; a superseded fact coming back loses its case). Sets count equally, whatever their size.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from memory.longterm.labelled import CaseScore, Collected, score, story_groups
from memory.longterm.ranking import SearchMode, Weights

__all__ = ["K_FOR_SET", "CrossValidation", "configurations", "cross_validate", "fold_of"]

K_FOR_SET = {"conversations": 10, "original": 5}

GRID: dict[str, Sequence[Any]] = {
    "keyword_share": [0.0, 0.15, 0.25, 0.35, 0.5, 0.65, 1.0],
    "keyword_adapt": [0.0, 0.5],  # per query: lean on keywords when their best hit stands out
    # (normalise, bm25_scale): one. With "max" too, a fold chose it on its training folds and
    # lost paraphrased questions on its own (more choice than the data can hold)
    "scaling": [("fixed", 6.0)],
    "informativeness": [0.0, 0.8, 0.95],
    "neighbour": [0.0, 0.25],
}


def configurations(
    mode: SearchMode, base: Weights | None = None, grid: dict[str, Sequence[Any]] | None = None
) -> list[Weights]:
    """The grid for a mode. One list alone ranks the same under any share or scaling (they
    scale every score of a query alike), so vector- and keyword-only vary the priors only."""
    base = base or Weights()
    grid = dict(grid or GRID)
    grid.setdefault("keyword_adapt", [base.keyword_adapt])
    if mode != "hybrid":
        grid["keyword_share"] = [base.keyword_share]
        grid["keyword_adapt"] = [base.keyword_adapt]
        grid["scaling"] = [(base.normalise, base.bm25_scale)]
    out = []
    for share, adapt, (normalise, scale), informativeness, neighbour in itertools.product(
        grid["keyword_share"],
        grid["keyword_adapt"],
        grid["scaling"],
        grid["informativeness"],
        grid["neighbour"],
    ):
        if share in (0.0, 1.0) and adapt > 0 and len(grid["keyword_adapt"]) > 1:
            continue  # a part alone stays alone (share 1 is keywords whatever the adapt)
        out.append(
            replace(
                base,
                keyword_share=share,
                keyword_adapt=adapt,
                normalise=normalise,
                bm25_scale=scale,
                informativeness=informativeness,
                neighbour=neighbour,
            )
        )
    return out


def fold_of(case_id: str, folds: int) -> int:
    """A case's (or a story's) fold: stable across runs and machines. The conversations are
    eight retellings of the same 35 story arcs: folded by question, 7 of every question's 8
    retellings (585 with the very same words) were in the folds its weights were chosen on,
    so a "held-out" figure was not; folded by question of an arc ("roof.3"), an arc's other
    questions, about the same evidence, were (review 33). Folded by story (`story_groups`:
    arcs joined where a question spans them; the original set's questions joined where their
    answers share a memory), none is."""
    return int(hashlib.sha256(case_id.encode()).hexdigest()[:8], 16) % folds


def _score_all(
    collected: Sequence[Collected], weights: Weights, mode: SearchMode
) -> list[CaseScore]:
    by_set: dict[str, list[Collected]] = {}
    for item in collected:
        by_set.setdefault(item.case.set, []).append(item)
    scores: dict[str, CaseScore] = {}
    for name, items in by_set.items():
        for s in score(items, weights, mode, K_FOR_SET.get(name, 10)):
            scores[s.case.id] = s
    return [scores[item.case.id] for item in collected]


def _per_set(scores: Sequence[CaseScore]) -> dict[str, tuple[float, float]]:
    """Set -> (utility, any@k). Utility: any@k, with all@k and MRR breaking near-ties; on the
    original set a superseded memory coming back loses the case."""
    values: dict[str, list[tuple[float, float]]] = {}
    for s in scores:
        hit = s.any if not s.forbidden else 0.0
        values.setdefault(s.case.set, []).append((hit + 0.5 * s.all + 0.1 * s.rr, hit))
        if s.case.wording:  # a slice: floors only (see _choose), not counted twice in utility
            values.setdefault(f"{s.case.set}:{s.case.wording}", []).append((0.0, hit))
    return {
        name: (sum(u for u, _ in v) / len(v), sum(a for _, a in v) / len(v))
        for name, v in values.items()
    }


@dataclass(frozen=True)
class CrossValidation:
    mode: SearchMode
    held_out: list[CaseScore]  # every case, scored by weights chosen without its fold
    chosen: list[Weights]  # per fold
    final: Weights  # chosen on every case (the default to ship)
    folds: list[int]  # the fold each case of `held_out` was held out in


def _choose(configs: Sequence[Weights], table: list[list[CaseScore]], rows: Sequence[int]) -> int:
    """The configuration to pick on these cases: the best mean utility over the sets among
    those that, on every set, reach the any@k of the best one-list configuration
    (keyword_share 0 or 1: a part alone, priors included); if none does, the one that falls
    short of a part the least."""
    per = [_per_set([table[c][i] for i in rows]) for c in range(len(configs))]
    sets = sorted({name for p in per for name in p})
    whole = [name for name in sets if ":" not in name]
    parts = [
        c
        for c, w in enumerate(configs)
        if w.keyword_share == 1.0 or (w.keyword_share == 0.0 and w.keyword_adapt == 0.0)
    ]
    floor = {name: max((per[c][name][1] for c in parts), default=0.0) for name in sets}

    def rank(c: int) -> tuple[float, float, int]:
        shortfall = min(0.0, *(per[c][name][1] - floor[name] for name in sets))
        utility = sum(per[c][name][0] for name in whole) / max(1, len(whole))
        return (round(shortfall, 9), utility, -c)

    return max(range(len(configs)), key=rank)


def cross_validate(
    collected: Sequence[Collected],
    mode: SearchMode,
    *,
    folds: int = 5,
    configs: Sequence[Weights] | None = None,
) -> CrossValidation:
    """Held-out scores of every case: for each fold, the configuration chosen on the other
    folds (`_choose`) ranks the fold's cases."""
    configs = list(configs or configurations(mode))
    table = [_score_all(collected, weights, mode) for weights in configs]
    stories = story_groups([item.case for item in collected])
    fold = [fold_of(case.group, folds) for case in stories]
    held_out: dict[int, CaseScore] = {}
    chosen: list[Weights] = []
    for f in range(folds):
        train = [i for i, g in enumerate(fold) if g != f]
        test = [i for i, g in enumerate(fold) if g == f]
        if not test:
            continue
        best = _choose_with_priors(configs, table, train)
        chosen.append(configs[best])
        held_out.update((i, table[best][i]) for i in test)
    final = _choose_with_priors(configs, table, range(len(collected)))
    order = sorted(held_out)
    return CrossValidation(
        mode, [held_out[i] for i in order], chosen, configs[final], [fold[i] for i in order]
    )


def _priors(weights: Weights) -> tuple[float, float]:
    return (weights.informativeness, weights.neighbour)


def _choose_with_priors(
    configs: Sequence[Weights], table: list[list[CaseScore]], rows: Sequence[int]
) -> int:
    """`_choose`, in two steps where the grid fuses: the priors (informativeness, neighbours:
    properties of the memories, whichever list ranks them) are those the vector list alone
    does best with on these cases; then the fusion's own knobs, among configurations with
    those priors. Chosen all at once, folds took other priors than the parts and lost the
    paraphrased questions to vector search on their held-out cases."""
    vector = [c for c, w in enumerate(configs) if w.keyword_share == 0.0 and w.keyword_adapt == 0.0]
    if not vector or len(vector) == len(configs):
        return _choose(configs, table, rows)
    priors = _priors(
        configs[vector[_choose([configs[c] for c in vector], [table[c] for c in vector], rows)]]
    )
    kept = [c for c, w in enumerate(configs) if _priors(w) == priors]
    return kept[_choose([configs[c] for c in kept], [table[c] for c in kept], rows)]
