"""Long-term memory benchmark: retrieval quality and latency (`make bench-memory`).

1. Quality on the labelled set (tests/data/retrieval_set.jsonl): recall@5 and MRR for hybrid,
   vector-only and keyword-only retrieval, side by side.
2. Latency of one user's retrieval (embedding the query included) with 10,000 and 100,000
   memories in the store, p50 / p95 over the labelled set's questions, in two layouts:
   - "one user": the asking user owns every memory in the store (the worst case);
   - "100 users": the store is shared by 100 users (per-user collections at work).
   Filler memories are generated sentences with random unit vectors (embedding 100k real ones
   takes minutes; `--embed-filler` does it); the asking user's labelled memories are real.
   `--where` also times the design this replaced: one shared collection scoped by `where`.

Prints a table (and writes it as JSON with `--json FILE`). Not a test; takes a few minutes at
100k. `make bench` (bench/run.py) reuses `quality()` and the synthetic memories from here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memory.clock import FrozenClock  # noqa: E402
from memory.db import Database  # noqa: E402
from memory.embedder import Embedder, load_embedder  # noqa: E402
from memory.longterm import Kind, LongTermMemory, NewMemory, Source, VectorIndex  # noqa: E402
from memory.longterm.evaluation import (  # noqa: E402
    LabelledSet,
    evaluate,
    load_labelled_set,
    populate,
)

LABELLED = ROOT / "tests" / "data" / "retrieval_set.jsonl"
NOW = datetime(2025, 11, 1, 12, tzinfo=UTC)

# -- synthetic memories -----------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_NAMES = _words(
    "Anna Ben Chloe David Elena Farid Grace Hugo Ines Jamal Kira Liam Mei Nadia Omar Paula Quinn "
    "Rosa Sami Tara Umar Vera Wen Ximena Yusuf Zoe Aaron Bianca Carlos Dana Emil Fatima Georg "
    "Hana Ivan Jonas Kemal Lena Marco Nora Oskar Petra Raj Sofia Theo Ulla Viktor Wanda Yara"
)
_RELATIONS = _words(
    "cousin colleague neighbour friend manager landlord dentist coach teacher sister brother "
    "aunt uncle niece nephew client trainer barber accountant mentor"
)
_PLACES = _words(
    "Lisbon Porto Madrid Valencia Lyon Marseille Munich Hamburg Vienna Prague Krakow Warsaw "
    "Oslo Bergen Helsinki Tallinn Riga Dublin Cork Edinburgh Glasgow Leeds Bristol Bologna "
    "Turin Naples Athens Sofia Zagreb Ljubljana Budapest Bratislava Ghent Utrecht Rotterdam"
)
_THINGS = _words(
    "bike laptop passport camera guitar piano garden balcony kitchen sofa printer router "
    "jacket boots umbrella backpack tent kayak skis racket watch headphones tablet kettle "
    "blender oven fridge heater plant aquarium bookshelf desk chair lamp mirror rug curtain "
    "car van scooter ticket invoice contract lease insurance pension mortgage loan receipt"
)
_ACTIVITIES = _words(
    "swimming yoga pottery chess cycling hiking climbing painting baking knitting running "
    "rowing tennis squash karate salsa choir woodwork photography gardening birdwatching"
)
_FOODS = _words(
    "sushi ramen tacos curry falafel pho risotto paella dumplings lasagne bibimbap goulash "
    "pierogi shakshuka biryani moussaka ceviche gnocchi tagine pancakes"
)
_DAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
_MONTHS = _words(
    "January February March April May June July August September October November December"
)

_TEMPLATES: list[Callable[[random.Random], str]] = [
    lambda r: f"Her {r.choice(_RELATIONS)} {r.choice(_NAMES)} lives in {r.choice(_PLACES)}.",
    lambda r: f"{r.choice(_NAMES)} is a {r.choice(_RELATIONS)} who likes {r.choice(_ACTIVITIES)}.",
    lambda r: f"Goes {r.choice(_ACTIVITIES)} every {r.choice(_DAYS)} with {r.choice(_NAMES)}.",
    lambda r: f"The {r.choice(_THINGS)} needs fixing before {r.choice(_MONTHS)}.",
    lambda r: (
        f"Bought a new {r.choice(_THINGS)} in {r.choice(_PLACES)} for {r.randint(20, 900)} euros."
    ),
    lambda r: f"Prefers {r.choice(_FOODS)} over {r.choice(_FOODS)} for dinner.",
    lambda r: f"{r.choice(_NAMES)}'s birthday is on {r.randint(1, 28)} {r.choice(_MONTHS)}.",
    lambda r: (
        f"Meeting with {r.choice(_NAMES)} about the {r.choice(_THINGS)} on "
        f"{r.choice(_DAYS)} at {r.randint(8, 18)}:00."
    ),
    lambda r: (
        f"Planning a trip to {r.choice(_PLACES)} in {r.choice(_MONTHS)} to try {r.choice(_FOODS)}."
    ),
    lambda r: (
        f"Learning {r.choice(_ACTIVITIES)} from {r.choice(_NAMES)}, lessons on {r.choice(_DAYS)}s."
    ),
    lambda r: (
        f"The {r.choice(_THINGS)} {r.choice(['contract', 'warranty', 'subscription'])} "
        f"renews in {r.choice(_MONTHS)}."
    ),
    lambda r: (
        f"Conversation about the {r.choice(_THINGS)} and {r.choice(_ACTIVITIES)}: decided "
        f"to ask {r.choice(_NAMES)} in {r.choice(_PLACES)}."
    ),
]


def synthetic_texts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_TEMPLATES)(rng) for _ in range(n)]


FILLER_CENTRES = 512  # synthetic memories really embedded; the filler varies around them
FILLER_NOISE = 0.038  # per dimension: cosine ≈ 0.8 to its centre, ≈ 0.65 within a cluster


def filler_centres(embedder: Embedder, seed: int = 5) -> np.ndarray:
    return embedder.embed(synthetic_texts(FILLER_CENTRES, seed=seed))


def filler_vectors(centres: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Stand-ins for the embeddings of `n` filler memories, cheap at 100,000: a real embedding
    of a synthetic memory plus noise. Sentence embeddings cluster by topic; uniform random unit
    vectors do not, and cost Chroma's HNSW 2.4x more time to insert (measured at 50,000)."""
    rng = np.random.default_rng(seed)
    picked = centres[rng.integers(0, len(centres), n)]
    vectors = picked + rng.standard_normal(picked.shape, dtype=np.float32) * FILLER_NOISE
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


# -- helpers ----------------------------------------------------------------------------------


async def new_users(db: Database, names: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name in names:
        ids[name] = await db.execute(
            "INSERT INTO users (display_name, created_at) VALUES (?, ?)", (name, NOW.isoformat())
        )
    return ids


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def quality(embedder: Embedder, labelled: LabelledSet, tmp: Path) -> dict[str, Any]:
    db = await Database.open(tmp / "quality.db")
    clock = FrozenClock(NOW)
    store = LongTermMemory(db, clock)
    users = await new_users(db, labelled.users)
    index = VectorIndex.open(path=tmp / "quality-chroma", embedder=embedder.name, dim=embedder.dim)
    await store.attach(embedder, index)
    keys = await populate(store, labelled, users, NOW)
    out: dict[str, Any] = {"cases": len(labelled.cases), "memories": len(labelled.memories)}
    for mode in ("hybrid", "vector", "keyword"):
        result = await evaluate(store, labelled, users, keys, mode=mode)  # type: ignore[arg-type]
        out[mode] = {
            "recall@5": round(result.recall, 3),
            "mrr": round(result.mrr, 3),
            "superseded_returned": result.forbidden_hits,
            "by_category": {
                name: {"cases": n, "recall@5": round(r, 3), "mrr": round(m, 3)}
                for name, (n, r, m) in result.by_category().items()
            },
        }
    await store.close()
    await db.close()
    return out


async def build_store(
    tmp: Path,
    embedder: Embedder,
    labelled: LabelledSet,
    *,
    total: int,
    users: int,
    embed_filler: bool,
) -> tuple[Database, LongTermMemory, VectorIndex, dict[str, int], float]:
    """A store of `total` memories shared by `users` users; the labelled set's people are among
    them (their real memories), the rest is filler. With one user, that user owns everything.
    Returns each labelled person's user id (the asking users)."""
    db = await Database.open(tmp / "steward.db")
    clock = FrozenClock(NOW)
    store = LongTermMemory(db, clock, query_cache=0)  # every query is embedded, as in use
    if users == 1:
        only = (await new_users(db, ["everyone"]))["everyone"]
        names = ["everyone"]
        ids = dict.fromkeys(labelled.users, only) | {"everyone": only}
    else:
        names = list(labelled.users) + [f"filler{i}" for i in range(max(0, users - 4))]
        ids = await new_users(db, names)
    index = VectorIndex.open(path=tmp / "chroma", embedder=embedder.name, dim=embedder.dim)
    started = time.perf_counter()
    real = [m for m in labelled.memories]
    real_ids = await store.records.insert_many(
        [
            NewMemory(
                user_id=ids[m["user"]],
                text=m["text"],
                kind=Kind(m.get("kind", "fact")),
                subject=m.get("subject", ""),
                source=Source.OWNER_SAID,
                importance=float(m.get("importance", 0.5)),
                created_at=NOW - timedelta(days=float(m.get("days_ago", 0))),
            )
            for m in real
        ]
    )
    vectors = embedder.embed([m["text"] for m in real])
    by_user: dict[int, list[int]] = {}
    for memory_id, record in zip(real_ids, real, strict=True):
        by_user.setdefault(ids[record["user"]], []).append(memory_id)
    position = {memory_id: i for i, memory_id in enumerate(real_ids)}
    for user_id, memory_ids in by_user.items():
        index.upsert(user_id, memory_ids, vectors[[position[i] for i in memory_ids]])
    await store.records.mark_indexed(real_ids)
    centres = filler_centres(embedder)
    filler_count = total - len(real)
    texts = synthetic_texts(filler_count)
    user_ids = [ids[n] for n in names]
    rng = random.Random(3)
    chunk = 5000
    for start in range(0, filler_count, chunk):
        part = texts[start : start + chunk]
        owners = [user_ids[(start + i) % len(user_ids)] for i in range(len(part))]
        memory_ids = await store.records.insert_many(
            [
                NewMemory(
                    user_id=owner,
                    text=text,
                    importance=rng.choice((0.3, 0.5, 0.7)),
                    created_at=NOW - timedelta(days=rng.randint(0, 900)),
                )
                for owner, text in zip(owners, part, strict=True)
            ]
        )
        part_vectors = (
            embedder.embed(part) if embed_filler else filler_vectors(centres, len(part), seed=start)
        )
        groups: dict[int, list[int]] = {}
        for i, owner in enumerate(owners):
            groups.setdefault(owner, []).append(i)
        for owner, rows in groups.items():
            index.upsert(owner, [memory_ids[i] for i in rows], part_vectors[rows])
        await store.records.mark_indexed(memory_ids)
        print(f"    {min(filler_count, start + chunk) + len(real):,} memories", end="\r")
    print()
    build_seconds = time.perf_counter() - started
    await store.attach(embedder, index)  # reconcile finds nothing to do
    return db, store, index, ids, build_seconds


async def latency(
    store: LongTermMemory,
    index: VectorIndex,
    embedder: Embedder,
    labelled: LabelledSet,
    ids: dict[str, int],
    rounds: int,
) -> dict[str, Any]:
    cases = labelled.cases
    first_user = ids[cases[0]["user"]]
    cold_start = time.perf_counter()
    await store.search(first_user, cases[0]["query"], 5)
    cold_ms = (time.perf_counter() - cold_start) * 1000
    for case in cases[:20]:  # warm every user's index
        await store.search(ids[case["user"]], case["query"], 5)
    total: list[float] = []
    embed: list[float] = []
    vector: list[float] = []
    keyword: list[float] = []
    for _ in range(rounds):
        for case in cases:
            user_id = ids[case["user"]]
            start = time.perf_counter()
            await store.search(user_id, case["query"], 5)
            total.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            query_vector = embedder.embed([case["query"]])[0]
            embed.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            index.query(user_id, query_vector, store.weights.candidates)
            vector.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await store.records.keyword(user_id, case["query"], store.weights.candidates)
            keyword.append((time.perf_counter() - start) * 1000)
    return {
        "queries": len(total),
        "cold_first_query_ms": round(cold_ms, 1),
        "p50_ms": round(statistics.median(total), 2),
        "p95_ms": round(pct(total, 95), 2),
        "embed_p50_ms": round(statistics.median(embed), 2),
        "chroma_p50_ms": round(statistics.median(vector), 2),
        "chroma_p95_ms": round(pct(vector, 95), 2),
        "fts_p50_ms": round(statistics.median(keyword), 2),
        "fts_p95_ms": round(pct(keyword, 95), 2),
    }


def where_filter_latency(
    tmp: Path, embedder: Embedder, labelled: LabelledSet, total: int, users: int
) -> dict[str, Any]:
    """The replaced design: one shared collection, scoped by `where={"user": …}`."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(
        path=str(tmp / "where-chroma"), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection(
        "shared", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    names = list(labelled.users) + [f"filler{i}" for i in range(max(0, users - 4))]
    real = labelled.memories
    collection.add(
        ids=[f"r{i}" for i in range(len(real))],
        embeddings=embedder.embed([m["text"] for m in real]),
        metadatas=[{"user": m["user"]} for m in real],
    )
    filler = total - len(real)
    centres = filler_centres(embedder)
    for start in range(0, filler, 5000):
        n = min(5000, filler - start)
        collection.add(
            ids=[f"f{start + i}" for i in range(n)],
            embeddings=filler_vectors(centres, n, seed=start),
            metadatas=[{"user": names[(start + i) % len(names)]} for i in range(n)],
        )
    timings: list[float] = []
    for case in labelled.cases:
        vector = embedder.embed([case["query"]])[0]
        start = time.perf_counter()
        collection.query(
            query_embeddings=vector.reshape(1, -1),
            n_results=30,
            where={"user": case["user"]},
            include=["distances"],
        )
        timings.append((time.perf_counter() - start) * 1000)
    return {
        "chroma_where_p50_ms": round(statistics.median(timings), 2),
        "chroma_where_p95_ms": round(pct(timings, 95), 2),
    }


# -- main -------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load = time.perf_counter()
    embedder = load_embedder("minilm")
    load_ms = (time.perf_counter() - load) * 1000
    labelled = load_labelled_set(LABELLED)
    results: dict[str, Any] = {"embedder": embedder.name, "embedder_load_ms": round(load_ms)}
    tmp_root = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    try:
        print(f"Quality: {len(labelled.cases)} labelled cases, {len(labelled.memories)} memories")
        results["quality"] = await quality(embedder, labelled, tmp_root / "q")
        results["latency"] = []
        for total in args.sizes:
            for users in args.layouts:
                label = "one user" if users == 1 else f"{users} users"
                print(f"Latency: {total:,} memories, {label} ...")
                tmp = tmp_root / f"{total}-{users}"
                tmp.mkdir(parents=True)
                db, store, index, ids, build_s = await build_store(
                    tmp,
                    embedder,
                    labelled,
                    total=total,
                    users=users,
                    embed_filler=args.embed_filler,
                )
                row = await latency(store, index, embedder, labelled, ids, args.rounds)
                row |= {"memories": total, "layout": label, "build_s": round(build_s, 1)}
                if args.where and users > 1:
                    print("    timing a shared collection with a where filter ...")
                    row |= where_filter_latency(tmp, embedder, labelled, total, users)
                results["latency"].append(row)
                await store.close()
                await db.close()
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - started)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\n(written to {args.json})")
    return 0


def print_table(results: dict[str, Any]) -> None:
    quality = results["quality"]
    print()
    print(
        f"Retrieval quality ({quality['cases']} labelled cases, {quality['memories']} memories, "
        f"embedder {results['embedder']})"
    )
    print(f"{'mode':<10} {'recall@5':>9} {'MRR':>7} {'superseded returned':>20}")
    for mode in ("hybrid", "vector", "keyword"):
        row = quality[mode]
        print(
            f"{mode:<10} {row['recall@5']:>9.3f} {row['mrr']:>7.3f} "
            f"{row['superseded_returned']:>20}"
        )
    print()
    print("Retrieval latency, one user's query, query embedding included (ms)")
    head = (
        f"{'memories':>9} {'layout':<10} {'p50':>6} {'p95':>6} {'embed':>6} "
        f"{'chroma p50/p95':>15} {'fts p50/p95':>12} {'cold':>6}"
    )
    if any("chroma_where_p50_ms" in row for row in results["latency"]):
        head += f" {'where-filter p50/p95':>21}"
    print(head)
    for row in results["latency"]:
        chroma = f"{row['chroma_p50_ms']:.1f}/{row['chroma_p95_ms']:.1f}"
        fts = f"{row['fts_p50_ms']:.1f}/{row['fts_p95_ms']:.1f}"
        line = (
            f"{row['memories']:>9,} {row['layout']:<10} {row['p50_ms']:>6.1f} {row['p95_ms']:>6.1f}"
            f" {row['embed_p50_ms']:>6.1f} {chroma:>15} {fts:>12}"
            f" {row['cold_first_query_ms']:>6.0f}"
        )
        if "chroma_where_p50_ms" in row:
            where = f"{row['chroma_where_p50_ms']:.1f}/{row['chroma_where_p95_ms']:.1f}"
            line += f" {where:>21}"
        print(line)
    print(f"\nTarget: p95 <= 30 ms at 100,000 memories. Took {results['seconds']} s.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--layouts",
        type=int,
        nargs="+",
        default=[1, 100],
        help="users sharing the store (1: the asking user owns everything)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    parser.add_argument("--embed-filler", action="store_true", help="embed filler for real")
    parser.add_argument("--where", action="store_true", help="also time a where-filter design")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
