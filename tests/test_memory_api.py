"""The public long-term memory API (issue 13): user creation, bulk saves (memories and
transcript messages), search with mode, limit, time range, kinds and scope, ranking weights as
configuration, and an honest signal while search is keyword-only. Real SQLite, real embedded
Chroma, the real embedder."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from memory.clock import FrozenClock
from memory.embedder import Embedder, load_embedder
from memory.labels import Label
from memory.longterm import (
    MEMORY_KINDS,
    Kind,
    LongTermMemory,
    NewMemory,
    NewMessage,
    Scope,
    Source,
    Trust,
    VectorIndex,
    Weights,
)
from memory.stores import Stores

NOW = datetime(2025, 9, 30, 12, tzinfo=UTC)
MAY = datetime(2025, 5, 14, 18, tzinfo=UTC)
JUNE = datetime(2025, 6, 20, 9, tzinfo=UTC)
SEPT_6 = datetime(2025, 9, 6, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return load_embedder("minilm")


@dataclass
class World:
    stores: Stores
    memory: LongTermMemory
    index: VectorIndex
    user: int
    private: int
    group: int


async def _world(tmp: Path, embedder: Embedder, weights: Weights | None = None) -> World:
    clock = FrozenClock(NOW)
    stores = await Stores.open(tmp / "steward.db", clock)
    memory = LongTermMemory.from_stores(stores, clock, weights=weights)
    index = VectorIndex.open(path=tmp / "chroma", embedder=embedder.name, dim=embedder.dim)
    user = await memory.create_user("Maya", timezone="Europe/Berlin")
    private = await memory.create_chat("maya-private")
    group = await memory.create_chat("family", kind="group")
    return World(stores, memory, index, user, private, group)


@pytest.fixture
async def world(tmp_path: Path, embedder: Embedder) -> AsyncIterator[World]:
    w = await _world(tmp_path, embedder)
    await w.memory.attach(embedder, w.index)
    yield w
    await w.memory.close()
    await w.stores.close()


def _msg(
    w: World, text: str, when: datetime, *, chat: int | None = None, **kw: object
) -> NewMessage:
    return NewMessage(w.user, chat or w.private, text, "Maya", when, **kw)  # type: ignore[arg-type]


def texts(result: object) -> list[str]:
    return [h.memory.text for h in result.hits]  # type: ignore[attr-defined]


async def test_create_user_and_bulk_save_are_searchable_at_once_and_say_keyword_only(
    tmp_path: Path, embedder: Embedder
) -> None:
    w = await _world(tmp_path, embedder)
    try:
        other = await w.memory.create_user("Daniel")
        assert other != w.user
        with pytest.raises(ValueError, match="display name"):
            await w.memory.create_user("  ")
        ids = await w.memory.save_many(
            [
                NewMemory(w.user, f"Note {i}: the plumber Okonkwo comes on day {i}.")
                for i in range(50)
            ]
        )
        assert len(ids) == 50 and len(set(ids)) == 50
        # Vectors are not attached: keyword search answers, and says it is keyword-only.
        found = await w.memory.search(w.user, "Okonkwo", limit=3)
        assert found.mode == "keyword" and found.asked == "hybrid" and found.keyword_only
        assert len(found.hits) == 3 and all("Okonkwo" in t for t in texts(found))
        assert (await w.memory.search(other, "Okonkwo", limit=3)).hits == []  # one user's only
        asked = await w.memory.search(w.user, "Okonkwo", limit=3, mode="keyword")
        assert not asked.keyword_only  # keyword was what was asked: nothing to warn about
        await w.memory.attach(embedder, w.index)
        assert await w.memory.flush_vectors() == 0  # attach embedded what was owed
        found = await w.memory.search(w.user, "who repairs the pipes?", limit=3)
        assert found.mode == "hybrid" and not found.keyword_only
        assert "Okonkwo" in texts(found)[0]
        with pytest.raises(ValueError, match="search mode"):
            await w.memory.search(w.user, "x", mode="fuzzy")  # type: ignore[arg-type]
    finally:
        await w.memory.close()
        await w.stores.close()


async def test_vectors_of_a_bulk_save_are_written_behind(world: World) -> None:
    ids = await world.memory.save_messages([_msg(world, "My cello teacher is called Ingrid", MAY)])
    assert ids[0] is not None
    # Stored and keyword-searchable on return; the vector follows in the background.
    assert "cello" in texts(await world.memory.search(world.user, "cello", mode="keyword"))[0]
    await world.memory.flush_vectors()
    found = await world.memory.search(world.user, "who gives me music lessons?", mode="vector")
    assert texts(found)[0] == "My cello teacher is called Ingrid"
    assert found.hits[0].sources == ("vector",) and found.hits[0].similarity is not None


async def test_modes_vector_finds_meaning_keyword_finds_rare_words(world: World) -> None:
    await world.memory.save_many(
        [
            NewMemory(world.user, "Adopted a grey tabby kitten from the shelter."),
            NewMemory(world.user, "The boiler service reference is XK-4471."),
            NewMemory(world.user, "Prefers trains to planes for trips under six hours."),
        ]
    )
    await world.memory.flush_vectors()
    by_meaning = await world.memory.search(
        world.user, "do I have a pet cat?", limit=1, mode="vector"
    )
    assert texts(by_meaning) == ["Adopted a grey tabby kitten from the shelter."]
    by_word = await world.memory.search(world.user, "XK-4471", limit=1, mode="keyword")
    assert texts(by_word) == ["The boiler service reference is XK-4471."]
    assert by_word.hits[0].sources == ("keyword",) and by_word.hits[0].keyword_score


async def test_since_until_filter_both_paths_and_need_aware_datetimes(world: World) -> None:
    await world.memory.save_messages(
        [
            _msg(world, "The roofer says three tiles are cracked, quote 2,400", MAY),
            _msg(world, "The roofer finished, no more drip in the attic", JUNE),
        ]
    )
    await world.memory.flush_vectors()
    may_start, june_start = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
    for mode in ("hybrid", "vector", "keyword"):
        found = await world.memory.search(
            world.user, "roofer", limit=5, mode=mode, since=may_start, until=june_start
        )
        assert texts(found) == ["The roofer says three tiles are cracked, quote 2,400"], mode
        found = await world.memory.search(
            world.user, "roofer", limit=5, mode=mode, since=june_start
        )
        assert texts(found) == ["The roofer finished, no more drip in the attic"], mode
    boosted = await world.memory.search(
        world.user, "roofer", limit=5, since=june_start, time_boost=True
    )
    assert texts(boosted)[0].startswith("The roofer finished") and len(boosted.hits) == 2
    with pytest.raises(ValueError, match="aware"):
        await world.memory.search(world.user, "roofer", since=datetime(2025, 5, 1))


async def test_dates_are_matched_as_words(world: World) -> None:
    await world.memory.save_messages(
        [
            _msg(world, "signed up for the pottery class at the arts centre", SEPT_6),
            _msg(world, "signed up for the newsletter of the arts centre", JUNE),
        ]
    )
    found = await world.memory.search(
        world.user, "what did I sign up for on 6 September?", limit=2, mode="keyword"
    )
    assert texts(found)[0] == "signed up for the pottery class at the arts centre"


async def test_kinds_and_scope(world: World) -> None:
    await world.memory.save(NewMemory(world.user, "Lives in Bristol since May.", subject="home"))
    await world.memory.save_messages(
        [
            _msg(world, "we finally moved to Bristol!", MAY),
            _msg(
                world,
                "Bristol flat party on saturday?",
                JUNE,
                chat=world.group,
                source=Source.USER_SAID,
                label=Label.untrusted("another person's message"),
            ),
        ]
    )
    await world.memory.flush_vectors()
    everything = await world.memory.search(world.user, "Bristol", limit=5)
    assert len(everything.hits) == 3
    only_messages = await world.memory.search(world.user, "Bristol", limit=5, kinds=[Kind.MESSAGE])
    assert {h.memory.kind for h in only_messages.hits} == {Kind.MESSAGE}
    only_memories = await world.memory.search(world.user, "Bristol", limit=5, kinds=MEMORY_KINDS)
    assert texts(only_memories) == ["Lives in Bristol since May."]
    private = await world.memory.search(
        world.user, "Bristol", limit=5, scope=Scope(chats=frozenset({world.private}))
    )
    assert "Bristol flat party on saturday?" not in texts(private)
    assert "we finally moved to Bristol!" in texts(private)
    group_hit = next(h for h in everything.hits if h.memory.chat_id == world.group)
    assert group_hit.memory.trust is Trust.UNTRUSTED and group_hit.memory.subject == "Maya"
    assert "message from Maya" in group_hit.memory.describe()


async def test_transcript_rows_stay_out_of_memory_lists_and_are_kept_once(world: World) -> None:
    first = await world.memory.save_messages([_msg(world, "hello there", MAY, message_id=7)])
    again = await world.memory.save_messages(
        [_msg(world, "hello there", MAY, message_id=7), _msg(world, "and more", MAY, message_id=8)]
    )
    assert first[0] is not None and again[0] is None and again[1] is not None
    assert await world.memory.records.count(world.user) == 0  # memories, not messages
    assert await world.memory.recent(world.user) == []
    saved = await world.memory.save(NewMemory(world.user, "hello there"))
    assert not saved.duplicate and saved.superseded == ()  # a memory never retires a message
    with pytest.raises(ValueError, match="aware"):
        await world.memory.save_messages([_msg(world, "naive", datetime(2025, 5, 1))])


async def test_neighbouring_turns_come_with_a_hit(world: World) -> None:
    await world.memory.save_messages(
        [
            _msg(world, "Priya made the most amazing mango sticky rice", MAY),
            _msg(world, "wanna hear how?", MAY + timedelta(minutes=1)),
            _msg(
                world,
                "coconut milk, glutinous rice, palm sugar and a pinch of salt",
                MAY + timedelta(minutes=2),
            ),
        ]
    )
    await world.memory.flush_vectors()
    found = await world.memory.search(world.user, "who made the mango sticky rice?", limit=3)
    by_text = {h.memory.text: h for h in found.hits}
    first = found.hits[0]
    assert first.memory.text == "Priya made the most amazing mango sticky rice"
    recipe = by_text["coconut milk, glutinous rice, palm sugar and a pinch of salt"]
    assert recipe.neighbour_of == first.memory.id and "neighbour" in recipe.sources
    alone = await world.memory.search(
        world.user, "who made the mango sticky rice?", limit=3, mode="keyword"
    )
    assert alone.hits[0].memory.text == first.memory.text


async def test_weights_are_configuration(tmp_path: Path, embedder: Embedder) -> None:
    keyword_only = Weights(keyword_share=1.0, informativeness=0.0, neighbour=0.0)
    w = await _world(tmp_path, embedder, weights=keyword_only)
    await w.memory.attach(embedder, w.index)
    try:
        assert w.memory.weights is keyword_only
        with pytest.raises(AttributeError):
            w.memory.weights = Weights()  # type: ignore[misc]
        await w.memory.save_many(
            [
                NewMemory(w.user, "Adopted a grey tabby kitten from the shelter."),
                NewMemory(w.user, "The cat food brand is Purrfect."),
            ]
        )
        await w.memory.flush_vectors()
        # All weight on keywords: the memory sharing the word wins over the one sharing meaning.
        found = await w.memory.search(w.user, "tell me about the cat", limit=2)
        assert found.mode == "hybrid"
        assert texts(found)[0] == "The cat food brand is Purrfect."
    finally:
        await w.memory.close()
        await w.stores.close()
    for bad in (
        {"keyword_share": 1.5},
        {"keyword_adapt": 2.0},
        {"informativeness": -0.1},
        {"normalise": "z"},
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(Weights(), **bad)  # type: ignore[arg-type]


async def test_a_kept_message_whose_text_changes_is_found_by_its_new_text(world: World) -> None:
    await world.memory.save_messages([_msg(world, "[voice note]", MAY, message_id=41)])
    await world.memory.flush_vectors()
    assert await world.memory.update_message_text(41, "the boiler makes a knocking noise") == 1
    found = await world.memory.search(world.user, "knocking", mode="keyword")
    assert texts(found) == ["the boiler makes a knocking noise"]
    assert (await world.memory.search(world.user, "voice", mode="keyword")).hits == []
    await world.memory.flush_vectors()
    by_meaning = await world.memory.search(world.user, "heating trouble", limit=1, mode="vector")
    assert texts(by_meaning) == ["the boiler makes a knocking noise"]
    assert await world.memory.update_message_text(999, "nothing") == 0


async def test_migration_0008_keeps_existing_memories_searchable_with_their_dates(
    tmp_path: Path,
) -> None:
    """A database at schema 7 with a memory in force and a retired one: after 0008 the first is
    found by its words and its date words, the retired one by neither, ids unchanged."""
    import sqlite3
    from contextlib import closing

    from memory.db import Database, load_migrations

    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " applied_at TEXT NOT NULL)"
        )
        for migration in load_migrations()[:7]:
            conn.executescript(migration.sql)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?, '2025-01-01')",
                (migration.version, migration.name),
            )
        conn.execute("INSERT INTO users (id, display_name, created_at) VALUES (5, 'Ann', 'x')")
        for memory_id, text, retired in (
            (11, "Lives in Porto.", None),
            (12, "Lives in Lyon.", "y"),
        ):
            conn.execute(
                "INSERT INTO memories (id, user_id, kind, text, source, trust, created_at,"
                " superseded_at) VALUES (?, 5, 'fact', ?, 'owner_said', 'trusted',"
                " '2025-05-14T09:00:00.000000+00:00', ?)",
                (memory_id, text, retired),
            )
        conn.commit()
    db = await Database.open(path)
    try:
        memory = LongTermMemory(db, FrozenClock(NOW))
        found = await memory.search(5, "Porto", limit=5, mode="keyword")
        assert [h.memory.id for h in found.hits] == [11]
        assert (await memory.search(5, "Lyon", limit=5, mode="keyword")).hits == []
        by_date = await memory.search(5, "14 May", limit=5, mode="keyword")
        assert [h.memory.id for h in by_date.hits] == [11]
        assert (await memory.get(5, 11)) is not None and (
            await memory.get(5, 11)
        ).message_id is None
    finally:
        await db.close()


def test_weights_come_from_a_setting_and_a_bad_one_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agent.config import load_settings
    from agent.errors import ConfigError

    parsed = Weights.parse("keyword_share=0.4, neighbour=0, normalise=max, candidates=30")
    assert Weights.parse("keyword_adapt=0.5").keyword_adapt == 0.5
    assert (parsed.keyword_share, parsed.neighbour, parsed.normalise, parsed.candidates) == (
        0.4,
        0.0,
        "max",
        30,
    )
    assert Weights.parse("") == Weights()
    monkeypatch.setenv("STEWARD_MEMORY_WEIGHTS", "keyword_share=0.4")
    assert load_settings().memory_ranking.keyword_share == 0.4
    for bad in ("keyword_share=2", "sharpness=1", "keyword_share=lots"):
        monkeypatch.setenv("STEWARD_MEMORY_WEIGHTS", bad)
        with pytest.raises(ConfigError, match="STEWARD_MEMORY_WEIGHTS"):
            load_settings()
