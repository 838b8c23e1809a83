"""The long-term memory store: SQLite records + Chroma vectors, against embedded Chroma and a real
`chroma run` server (every test runs on both).

(Over 400 lines: every case runs against both Chroma back-ends through one fixture.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from memory_support import BACKENDS, chroma_server, open_index

from memory.clock import FrozenClock
from memory.embedder import MiniLMEmbedder
from memory.longterm import (
    Kind,
    LongTermMemory,
    NewMemory,
    Source,
    Trust,
    VectorIndex,
)
from memory.longterm.terms import fts_query
from memory.people import Identity
from memory.stores import Stores

START = datetime(2025, 6, 1, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder.load()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-server") / "data") as url:
        yield url


@dataclass
class World:
    stores: Stores
    memory: LongTermMemory
    index: VectorIndex
    clock: FrozenClock
    alice: int
    bob: int
    backend: str
    tmp: Path
    url: str | None
    prefix: str

    def as_before_the_journal(self) -> None:
        """Leave every memory unindexed, as a database from before the vector journal is. An
        old Steward wrote the file, so it is changed on disk, not through the open stores."""
        with closing(sqlite3.connect(self.tmp / "steward.db")) as conn, conn:
            conn.execute("UPDATE memories SET indexed = 0")

    def reopen_index(self, embedder: MiniLMEmbedder) -> VectorIndex:
        return open_index(
            self.backend, embedder, path=self.tmp / "chroma", url=self.url, prefix=self.prefix
        )


@pytest.fixture(params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path: Path, embedder: MiniLMEmbedder
) -> AsyncIterator[World]:
    backend = request.param
    url = request.getfixturevalue("server_url") if backend == "server" else None
    clock = FrozenClock(START)
    stores = await Stores.open(tmp_path / "steward.db", clock)
    alice = await stores.people.admit(Identity("test", "alice"), "Alice")
    bob = await stores.people.admit(Identity("test", "bob"), "Bob")
    prefix = f"t{abs(hash(tmp_path)) % 10**10}"
    index = open_index(backend, embedder, path=tmp_path / "chroma", url=url, prefix=prefix)
    memory = LongTermMemory.from_stores(stores, clock)
    await memory.attach(embedder, index)
    world = World(stores, memory, index, clock, alice.id, bob.id, backend, tmp_path, url, prefix)
    try:
        yield world
    finally:
        await memory.close()
        await stores.close()


def texts(result: object) -> list[str]:
    return [m.text for m in result.memories]  # type: ignore[attr-defined]


async def test_hybrid_search_finds_by_meaning_and_by_keyword(world: World) -> None:
    m = world.memory
    for text in (
        "Allergic to penicillin.",
        "Her sister Priya lives in Lisbon.",
        "Drinks oat-milk flat whites, no coffee after 3 pm.",
    ):
        await m.save(NewMemory(world.alice, text))
    by_meaning = await m.search(world.alice, "the doctor wants to give me an antibiotic", 1)
    assert by_meaning.mode == "hybrid"
    assert texts(by_meaning) == ["Allergic to penicillin."]
    by_name = await m.search(world.alice, "Priya", 1)
    assert texts(by_name) == ["Her sister Priya lives in Lisbon."]
    assert by_name.hits[0].keyword_rank == 1
    keyword_only = await m.search(world.alice, "Priya", 3, mode="keyword")
    assert keyword_only.mode == "keyword"
    assert all(hit.vector_rank is None for hit in keyword_only.hits)


async def test_a_newer_fact_on_the_same_subject_supersedes_the_old_one(world: World) -> None:
    m = world.memory
    old = await m.save(NewMemory(world.alice, "Lives in Paris.", subject="home city"))
    world.clock.advance(timedelta(days=200))
    new = await m.save(NewMemory(world.alice, "Moved to Berlin in May.", subject="Home City"))
    assert [s.id for s in new.superseded] == [old.memory.id]
    for mode in ("hybrid", "vector", "keyword"):
        found = await m.search(world.alice, "where do I live? Paris or Berlin", 5, mode=mode)
        assert "Lives in Paris." not in texts(found), mode
        assert "Moved to Berlin in May." in texts(found), mode
    kept = await m.get(world.alice, old.memory.id)  # still in SQLite, for /memory show
    assert kept is not None and not kept.active and kept.superseded_by == new.memory.id
    assert old.memory.id not in await asyncio.to_thread(world.index.ids, world.alice)


async def test_replaces_ids_supersede_but_outside_content_never_retires_the_owners_word(
    world: World,
) -> None:
    m = world.memory
    job = await m.save(NewMemory(world.alice, "Works as a UX designer at Criteo."))
    web = await m.save(
        NewMemory(world.alice, "Works at Globex.", source=Source.WEB, replaces=(job.memory.id,))
    )
    assert web.memory.trust is Trust.UNTRUSTED
    assert web.refused == (job.memory.id,) and web.superseded == ()
    owner = await m.save(
        NewMemory(world.alice, "Started at Ecosia as lead designer.", replaces=(job.memory.id,))
    )
    assert [s.id for s in owner.superseded] == [job.memory.id]
    someone_elses = await m.save(NewMemory(world.bob, "Works at Initech.", replaces=(1, 2, 3)))
    assert someone_elses.superseded == ()  # ids of another user's memories are refused


async def test_duplicates_and_near_duplicates(world: World) -> None:
    m = world.memory
    first = await m.save(NewMemory(world.alice, "Allergic to peanuts."))
    again = await m.save(NewMemory(world.alice, "allergic to  PEANUTS."))
    assert again.duplicate and again.memory.id == first.memory.id
    restated = await m.save(NewMemory(world.alice, "Allergic to peanuts!"))
    assert [s.id for s in restated.superseded] == [first.memory.id]
    assert await m.records.count(world.alice) == 1
    # Nearly the same words but other numbers: two facts (the embedder barely sees numbers).
    await m.save(NewMemory(world.alice, "Dentist appointment on 14 November at 9:30."))
    other = await m.save(NewMemory(world.alice, "Dentist appointment on 21 November at 9:30."))
    assert other.superseded == () and await m.records.count(world.alice) == 3


async def test_one_users_memories_never_surface_for_another(world: World) -> None:
    m = world.memory
    await m.save(NewMemory(world.alice, "Alice's bank PIN hint is the cat's birthday."))
    await m.save(NewMemory(world.bob, "Bob supports Arsenal."))
    for mode in ("hybrid", "vector", "keyword"):
        found = await m.search(world.bob, "Alice's bank PIN hint cat birthday", 10, mode=mode)
        assert texts(found) in ([], ["Bob supports Arsenal."]), mode
    names = await asyncio.to_thread(world.index.users)
    assert names == sorted([world.alice, world.bob])  # one collection per user
    assert await asyncio.to_thread(world.index.count, world.bob) == 1


async def test_forgetting_removes_from_sqlite_and_chroma(world: World) -> None:
    m = world.memory
    saved = await m.save(NewMemory(world.alice, "Her locker code is 4312."))
    assert saved.memory.id in await asyncio.to_thread(world.index.ids, world.alice)
    forgotten = await m.forget(world.alice, saved.memory.id)
    assert forgotten is not None and forgotten.text == "Her locker code is 4312."
    assert await m.get(world.alice, saved.memory.id) is None
    assert saved.memory.id not in await asyncio.to_thread(world.index.ids, world.alice)
    assert await m.search(world.alice, "locker code", 5, mode="keyword") is not None
    assert texts(await m.search(world.alice, "locker code 4312", 5)) == []
    assert await m.forget(world.bob, saved.memory.id) is None  # nor can Bob forget Alice's


async def test_a_crash_between_sqlite_and_chroma_is_repaired_at_start_up(
    world: World, embedder: MiniLMEmbedder
) -> None:
    m = world.memory
    kept = await m.save(NewMemory(world.alice, "Keeps a fiddle-leaf fig."))
    retired = await m.save(NewMemory(world.alice, "Home city is Paris.", subject="home city"))
    await m.close()
    # What a crash leaves: a memory committed to SQLite whose vector was never written, a vector
    # whose memory was deleted, and the vector of a memory superseded meanwhile.
    lost = await m.records.insert(NewMemory(world.alice, "Plays the cello on Sundays."))
    await m.records.insert(
        NewMemory(world.alice, "Home city is Berlin.", subject="home city"),
        supersede=[retired.memory.id],
    )
    index = world.reopen_index(embedder)
    stale = np.zeros((1, embedder.dim), dtype=np.float32)
    stale[0, 0] = 1.0
    await asyncio.to_thread(index.upsert, world.alice, [9999], stale)
    before = await asyncio.to_thread(index.ids, world.alice)
    assert lost.id not in before and 9999 in before and retired.memory.id in before

    fresh = LongTermMemory.from_stores(world.stores, world.clock)
    report = await fresh.attach(embedder, index)
    assert report.added == 2 and report.removed == 2
    assert report.compared == [world.alice]  # Chroma held one more than SQLite knew of
    assert await asyncio.to_thread(index.ids, world.alice) == await fresh.records.active_ids(
        world.alice
    )
    assert texts(await fresh.search(world.alice, "which instrument do I play?", 1)) == [
        "Plays the cello on Sundays."
    ]
    assert kept.memory.id in await asyncio.to_thread(index.ids, world.alice)
    await fresh.close()


async def test_memory_survives_a_restart(world: World, embedder: MiniLMEmbedder) -> None:
    await world.memory.save(NewMemory(world.alice, "Her passport expires in February 2027."))
    await world.memory.close()
    again = LongTermMemory.from_stores(world.stores, world.clock)
    report = await again.attach(embedder, world.reopen_index(embedder))
    assert report.added == 0 and report.removed == 0  # nothing to repair
    assert report.compared == []  # and no id listed to find that out
    found = await again.search(world.alice, "when do I need a new travel document?", 1)
    assert texts(found) == ["Her passport expires in February 2027."]
    await again.close()


async def test_start_up_checks_only_what_changed_and_adopts_an_old_store_once(
    world: World, embedder: MiniLMEmbedder
) -> None:
    m = world.memory
    for text in ("Likes rye bread.", "Takes the 8:10 train.", "Allergic to hazelnuts."):
        await m.save(NewMemory(world.alice, text))
    forgotten = await m.save(NewMemory(world.bob, "Bob's locker is 42."))
    await m.close()
    # A crash right after the forget committed: the vector is still in Chroma, the journal
    # says it must go.
    await m.records.delete(world.bob, forgotten.memory.id)
    # A store from before the journal: nothing marked indexed.
    world.as_before_the_journal()

    again = LongTermMemory.from_stores(world.stores, world.clock)
    index = world.reopen_index(embedder)
    report = await again.attach(embedder, index)
    # the unindexed ones were embedded again (few: cheaper than listing), the removal applied
    assert (report.added, report.removed, report.compared) == (3, 1, [])
    assert forgotten.memory.id not in await asyncio.to_thread(index.ids, world.bob)
    await again.close()

    world.as_before_the_journal()
    many = LongTermMemory.from_stores(world.stores, world.clock, full_check_after=2)
    report = await many.attach(embedder, world.reopen_index(embedder))
    # past the limit the ids are compared instead, and nothing is embedded again
    assert (report.added, report.removed, report.compared) == (0, 0, [world.alice])
    await many.close()
    last = LongTermMemory.from_stores(world.stores, world.clock)
    report = await last.attach(embedder, world.reopen_index(embedder))
    assert (report.added, report.removed, report.compared) == (0, 0, [])
    await last.close()


async def test_switching_the_embedder_rebuilds_the_vectors(
    world: World, embedder: MiniLMEmbedder
) -> None:
    await world.memory.save(NewMemory(world.alice, "Her cat is called Mochi."))
    await world.memory.close()

    class Renamed:
        """The same model under another name: what another STEWARD_EMBEDDER looks like."""

        name = "another-model"
        dim = embedder.dim

        def embed(self, items: list[str]) -> np.ndarray:
            return embedder.embed(items)

    other = Renamed()
    index = open_index(
        world.backend, other, path=world.tmp / "chroma", url=world.url, prefix=world.prefix
    )
    again = LongTermMemory.from_stores(world.stores, world.clock)
    report = await again.attach(other, index)
    assert report.added == 1  # the old model's collection was dropped and rebuilt
    assert texts(await again.search(world.alice, "what is my cat's name?", 1)) == [
        "Her cat is called Mochi."
    ]
    await again.close()


async def test_recency_and_importance_decide_between_equally_relevant_memories(
    world: World,
) -> None:
    m = world.memory
    old = await m.save(NewMemory(world.alice, "Stand-up is at 9:45.", importance=0.5))
    world.clock.advance(timedelta(days=300))
    new = await m.save(NewMemory(world.alice, "Stand-up is at 11:00.", importance=0.5))
    hits = (await m.search(world.alice, "stand-up", 2, mode="keyword")).hits
    assert hits[0].keyword_rank == hits[1].keyword_rank == 1  # a tie in the keyword ranking
    assert [h.memory.id for h in hits] == [new.memory.id, old.memory.id]  # the newer wins
    vital = await m.save(NewMemory(world.alice, "Stand-up is at 10:15.", importance=1.0))
    world.clock.advance(timedelta(days=100))
    hits = (await m.search(world.alice, "stand-up", 3, mode="keyword")).hits
    assert [h.memory.id for h in hits] == [vital.memory.id, new.memory.id, old.memory.id]


async def test_keyword_only_until_vectors_are_attached(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    clock = FrozenClock(START)
    stores = await Stores.open(tmp_path / "s.db", clock)
    user = await stores.people.admit(Identity("test", "u"), "U")
    memory = LongTermMemory.from_stores(stores, clock)
    saved = await memory.save(NewMemory(user.id, "Her dentist is Dr. Okafor.", kind=Kind.FACT))
    found = await memory.search(user.id, "Okafor", 3)
    assert found.mode == "keyword" and texts(found) == ["Her dentist is Dr. Okafor."]
    index = VectorIndex.open(path=tmp_path / "chroma", embedder=embedder.name, dim=embedder.dim)
    report = await memory.attach(embedder, index)
    assert report.added == 1 and saved.memory.id in index.ids(user.id)
    assert (await memory.search(user.id, "who fixes my teeth?", 1)).mode == "hybrid"
    await memory.close()
    await stores.close()


async def test_a_word_is_found_as_it_is_written_whatever_its_letters(tmp_path: Path) -> None:
    """Queries were case-folded ("Straße" -> "strasse") but the index only lower-cases, so no
    word with an ß was ever found, even typed exactly (R57)."""
    clock = FrozenClock(START)
    stores = await Stores.open(tmp_path / "s.db", clock)
    user = await stores.people.admit(Identity("test", "u"), "U")
    memory = LongTermMemory.from_stores(stores, clock)
    await memory.save(NewMemory(user.id, "Ann wohnt in der Schillerstraße 12."))
    await memory.save(NewMemory(user.id, "Prefers aisle seats."))
    for query in ("Schillerstraße", "schillerstraße?"):
        found = await memory.search(user.id, query, 3)
        assert texts(found)[:1] == ["Ann wohnt in der Schillerstraße 12."], query
    await stores.close()


@pytest.mark.parametrize(
    "text",
    ['"unbalanced', "NEAR(a b)", "a AND OR NOT", "*", "col:value", "^start", "()", "-x", "∑∂√"],
)
async def test_any_text_is_a_safe_keyword_query(tmp_path: Path, text: str) -> None:
    clock = FrozenClock(START)
    stores = await Stores.open(tmp_path / "s.db", clock)
    user = await stores.people.admit(Identity("test", "u"), "U")
    memory = LongTermMemory.from_stores(stores, clock)
    await memory.save(NewMemory(user.id, "Prefers aisle seats."))
    result = await memory.search(user.id, text, 5)
    assert result.mode == "keyword"
    await stores.close()


def test_keyword_queries_keep_meaningful_words_only() -> None:
    assert fts_query("What is my sister's name?") == '"sister" OR "name"'
    assert fts_query("what is it?") is None


CRASHING_WRITER = """
import asyncio, sys
from pathlib import Path
from memory.clock import SystemClock
from memory.embedder import MiniLMEmbedder
from memory.longterm import LongTermMemory, NewMemory, VectorIndex
from memory.people import Identity
from memory.stores import Stores

async def main(root):
    stores = await Stores.open(root / "steward.db", SystemClock())
    user = await stores.people.admit(Identity("test", "u"), "U")
    embedder = MiniLMEmbedder.load()
    index = VectorIndex.open(path=root / "chroma", embedder=embedder.name, dim=embedder.dim)
    memory = LongTermMemory.from_stores(stores, SystemClock())
    await memory.attach(embedder, index)
    n = 0
    while True:
        n += 1
        text = f"Note {n}: bed {n % 7} of the garden needs compost."
        saved = await memory.save(NewMemory(user.id, text, subject=f"note {n % 25}"))
        if n % 4 == 0:
            await memory.forget(user.id, saved.memory.id)
        print(n, flush=True)

asyncio.run(main(Path(sys.argv[1])))
"""


async def test_sqlite_and_chroma_agree_again_after_a_kill_mid_write(
    tmp_path: Path, embedder: MiniLMEmbedder
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_WRITER,
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    written = 0
    async with asyncio.timeout(60):
        while written < 40:
            line = await process.stdout.readline()
            assert line, (await process.stderr.read()).decode()  # type: ignore[union-attr]
            written = int(line)
    process.kill()  # SIGKILL: no cleanup, wherever it was
    await process.wait()

    clock = FrozenClock(START)
    stores = await Stores.open(tmp_path / "steward.db", clock)
    user = await stores.people.resolve(Identity("test", "u"))
    assert user is not None
    index = VectorIndex.open(path=tmp_path / "chroma", embedder=embedder.name, dim=embedder.dim)
    memory = LongTermMemory.from_stores(stores, clock)
    await memory.attach(embedder, index)
    in_sqlite = await memory.records.active_ids(user.id)
    assert len(in_sqlite) >= 10
    assert await asyncio.to_thread(index.ids, user.id) == in_sqlite
    await memory.close()
    await stores.close()


async def test_a_restored_database_has_every_vector_compared_once(
    world: World, embedder: MiniLMEmbedder
) -> None:
    """R155: restored beside a Chroma server that kept what came after the backup (a memory
    forgotten, another added), the counts matched and nothing was compared: the restored
    memory was never found by meaning, and the later one's vector stayed. `steward restore`
    marks the database, and the next attach compares every id, once."""
    from memory.backup import owe_withdrawal

    m = world.memory
    saved = [
        await m.save(NewMemory(world.alice, text))
        for text in ("Likes rye bread.", "Her sister lives in Porto.", "Takes the 8:10 train.")
    ]
    await m.close()
    index = world.reopen_index(embedder)  # what the server holds: one forgotten, one added
    await asyncio.to_thread(index.delete, world.alice, [saved[1].memory.id])
    later = np.zeros((1, embedder.dim), dtype=np.float32)
    later[0, 0] = 1.0
    await asyncio.to_thread(index.upsert, world.alice, [9999], later)
    owe_withdrawal(world.tmp / "steward.db")  # as `steward restore` leaves it

    restored = LongTermMemory.from_stores(world.stores, world.clock)
    report = await restored.attach(embedder, index)
    assert report.compared == [world.alice] and (report.added, report.removed) == (1, 1)
    assert await asyncio.to_thread(index.ids, world.alice) == {s.memory.id for s in saved}
    found = await restored.search(world.alice, "where does my sibling live?", 1)
    assert texts(found) == ["Her sister lives in Porto."]
    await restored.close()
    again = LongTermMemory.from_stores(world.stores, world.clock)
    report = await again.attach(embedder, world.reopen_index(embedder))
    assert report.compared == []  # once
    await again.close()


async def test_an_id_saved_again_after_a_restore_gets_its_own_vector(
    world: World, embedder: MiniLMEmbedder
) -> None:
    """R158: after a restore, a memory saved before vectors were attached (the embedder still
    loading, the Chroma server not up) took the id of one saved after the backup, whose vector
    the server still held: compared by id alone, it kept that vector, for good."""
    from memory.backup import owe_withdrawal

    m = world.memory
    for text in ("Likes rye bread.", "Her sister lives in Porto."):
        await m.save(NewMemory(world.alice, text))
    await m.close()
    index = world.reopen_index(embedder)  # the server kept the vector of #3, said after the backup
    dentist = await asyncio.to_thread(embedder.embed, ["Her dentist is Dr. Okafor."])
    await asyncio.to_thread(index.upsert, world.alice, [3], dentist)
    owe_withdrawal(world.tmp / "steward.db")

    restored = LongTermMemory.from_stores(world.stores, world.clock)
    train = await restored.save(NewMemory(world.alice, "Takes the 8:10 train to Leeds."))
    assert train.memory.id == 3  # the id comes round again
    await restored.attach(embedder, index)
    found = await restored.search(world.alice, "which train do I take?", 1)
    teeth = await restored.search(world.alice, "who fixes my teeth?", 3)
    await restored.close()
    assert found.mode == "hybrid" and texts(found) == ["Takes the 8:10 train to Leeds."]
    assert "Takes the 8:10 train to Leeds." not in texts(teeth)[:1]
