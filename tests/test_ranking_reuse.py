"""Fitting ranks the same candidates under ~80 weights and keeps each fusion and each prior
for the next (`Candidates.rank(reuse=True)`): it must rank exactly as a fresh ranking does,
under every weights of the grid and under a change of any one setting."""

from __future__ import annotations

import random
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest

from memory.longterm import Candidates, Kind, Memory, Source, Trust, Weights
from memory.longterm.fitting import configurations

NOW = datetime(2025, 11, 1, 12, tzinfo=UTC)
WORDS = [
    *("roof", "leak", "plumber", "invoice", "coconut", "milk", "vanilla", "recipe"),
    *("ok", "thanks", "sure", "the", "a"),
]


def _candidates(seed: int) -> Candidates:
    rng = random.Random(seed)
    rows = {}
    for i in range(1, 61):
        rows[i] = Memory(
            id=i,
            user_id=1,
            chat_id=1,
            kind=Kind.MESSAGE if i % 3 else Kind.FACT,
            text=" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9))),
            subject="",
            source=Source.OWNER_SAID,
            source_ref="",
            trust=Trust.TRUSTED,
            importance=rng.random(),
            turn_id=None,
            created_at=NOW - timedelta(days=rng.randint(0, 900)),
        )
    ids = list(rows)
    vector = sorted(((i, rng.uniform(0.0, 0.9)) for i in rng.sample(ids, 40)), key=lambda p: -p[1])
    keyword = sorted(
        ((i, -rng.uniform(0.1, 12.0)) for i in rng.sample(ids, 30)), key=lambda p: p[1]
    )
    neighbours = {
        i: [(j, abs(i - j)) for j in (i - 2, i - 1, i + 1, i + 2) if j in rows] for i in ids
    }
    return Candidates(vector, keyword, rows, NOW, "hybrid", "hybrid", neighbours=neighbours)


def _ranked(candidates: Candidates, weights: Weights, mode: str, reuse: bool) -> list[tuple]:
    hits = candidates.rank(weights, mode=mode, reuse=reuse)  # type: ignore[arg-type]
    return [(h.memory.id, round(h.score, 12), h.neighbour_of) for h in hits]


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_reused_rankings_equal_fresh_ones_across_the_grid(mode: str) -> None:
    for seed in range(3):
        kept, fresh = _candidates(seed), _candidates(seed)
        grid = configurations(mode)  # type: ignore[arg-type]
        for weights in grid + grid[::-1]:  # each twice, in two orders
            assert _ranked(kept, weights, mode, True) == _ranked(fresh, weights, mode, False)


def test_a_change_of_any_one_setting_is_never_served_from_what_was_kept() -> None:
    """A setting left out of `fusion_key` or `prior_key` would hand the ranking of the weights
    before: every numeric setting moved alone must rank as a fresh ranking does."""
    base = Weights()
    changed = 0
    for f in fields(Weights):
        value = getattr(base, f.name)
        if isinstance(value, str):
            others = {"fusion": "rrf", "normalise": "max"}
            if f.name not in others:
                continue
            moved = replace(base, **{f.name: others[f.name]})
        elif isinstance(value, int):
            moved = replace(base, **{f.name: value + 1})
        else:
            moved = replace(base, **{f.name: min(1.0, value * 0.5 + 0.3)})
        kept, fresh = _candidates(7), _candidates(7)
        _ranked(kept, base, "hybrid", True)
        if _ranked(kept, moved, "hybrid", True) != _ranked(fresh, moved, "hybrid", False):
            pytest.fail(f"{f.name} changed, and the kept ranking was served")
        changed += _ranked(fresh, moved, "hybrid", False) != _ranked(fresh, base, "hybrid", False)
    assert changed >= 10  # the moves do move rankings: the check above could fail
