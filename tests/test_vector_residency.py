"""Embedded Chroma keeps a bounded number of users' HNSW indexes loaded, and loses nothing by
evicting them: each loaded index costs ~2.6 MiB however few vectors it holds, so without a bound
200 users cost ~520 MiB; and an index evicted before its writes reached disk reloads without
them ("Nothing found on disk"), which persisting every write prevents.

The scenario runs in a fresh interpreter so that its resident set is Chroma's alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USERS = 200
PER_USER = 5
# Unbounded: ~2.6 MiB x 200 = ~520 MiB. Bounded at 64 indexes (the default is 128): 180-200 MiB.
MAX_GROWTH_MIB = 320

SCENARIO = r"""
import json, sys
from pathlib import Path
import numpy as np
from memory.longterm.vectors import VectorIndex

path, users, per_user = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
DIM = 32

def rss_mib():
    with open("/proc/self/statm") as f:
        import os
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def vectors(user):
    rows = np.random.default_rng(user).standard_normal((per_user, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)

def ids(user):
    return [user * 100 + i for i in range(per_user)]

def missing(index):
    # Users whose vectors are not all found by a query, with what went wrong.
    bad = {}
    for user in range(1, users + 1):
        try:
            held = index.count(user)
            found = {i for i, _ in index.query(user, vectors(user)[0], per_user)}
            if held != per_user or found != set(ids(user)):
                bad[user] = f"count {held}, found {len(found)}"
        except Exception as exc:
            bad[user] = str(exc)[:100]
    return bad

index = VectorIndex.open(path=path, embedder="test-embedder", dim=DIM, resident=64)
start = rss_mib()
for user in range(1, users + 1):
    index.upsert(user, ids(user), vectors(user))
    index.count(user)  # touched once in this process, as reconcile does at start
growth = rss_mib() - start
after_eviction = missing(index)
index.close()
index = VectorIndex.open(path=path, embedder="test-embedder", dim=DIM, resident=64)
after_reopen = missing(index)
index.close()
print(json.dumps({"growth": growth, "after_eviction": after_eviction,
                  "after_reopen": after_reopen}))
"""


# Collections written before this change keep Chroma's default sync threshold (1000): opening
# them must lower it before they are first loaded, or their replayed log stays in memory only.
LEGACY = r"""
import json, sys
from pathlib import Path
import chromadb
import numpy as np
from chromadb.config import Settings
from memory.longterm.vectors import VectorIndex

path, users, per_user = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
DIM = 32

def vectors(user):
    rows = np.random.default_rng(user).standard_normal((per_user, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)

def ids(user):
    return [user * 100 + i for i in range(per_user)]

client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
for user in range(1, users + 1):
    collection = client.create_collection(
        f"steward_user_{user}",
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"embedder": "test-embedder", "dim": DIM},
        embedding_function=None,
    )
    collection.upsert(ids=[str(i) for i in ids(user)], embeddings=vectors(user))
client.close()

index = VectorIndex.open(path=path, embedder="test-embedder", dim=DIM, resident=64)
for user in range(1, users + 1):
    index.count(user)  # reconcile at start: the first touch replays Chroma's log
bad = {}
for user in range(1, users + 1):
    try:
        found = {i for i, _ in index.query(user, vectors(user)[0], per_user)}
        if found != set(ids(user)):
            bad[user] = f"found {len(found)}"
    except Exception as exc:
        bad[user] = str(exc)[:100]
index.close()
print(json.dumps({"bad": bad}))
"""


def run(script: str, path: Path, users: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(users), str(PER_USER)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run(SCENARIO, tmp_path_factory.mktemp("residency") / "chroma", USERS)


@pytest.mark.timeout(120)
def test_resident_memory_is_bounded_for_many_small_users(outcome: dict) -> None:
    assert outcome["growth"] < MAX_GROWTH_MIB, (
        f"{USERS} users x {PER_USER} vectors grew RSS by {outcome['growth']:.0f} MiB"
    )


@pytest.mark.timeout(120)
def test_evicted_vectors_are_still_found(outcome: dict) -> None:
    bad = outcome["after_eviction"]
    assert not bad, f"{len(bad)} users lost vectors after eviction: {dict(list(bad.items())[:5])}"


@pytest.mark.timeout(120)
def test_vectors_are_found_after_reopening(outcome: dict) -> None:
    bad = outcome["after_reopen"]
    assert not bad, f"{len(bad)} users lost vectors after reopening: {dict(list(bad.items())[:5])}"


@pytest.mark.timeout(120)
def test_collections_written_before_are_made_safe_to_evict(tmp_path: Path) -> None:
    bad = run(LEGACY, tmp_path / "chroma", 150)["bad"]
    assert not bad, (
        f"{len(bad)} older users lost vectors after eviction: {dict(list(bad.items())[:5])}"
    )
