"""Long-term memory: SQLite records (the truth) + Chroma vectors, searched together.

Retrieval is hybrid: the user's nearest vectors in Chroma and their best FTS5 keyword matches are
fused by normalised score, then weighed by priors (`ranking.py`, `retrieval.py`). Until vectors
are attached (the embedder and Chroma load in the background at start-up) and whenever no
embedder can load, search is keyword-only and says so (`SearchResult.keyword_only`).

The public API (issue 13): `create_user`, `save` (one memory, with supersession), `save_many`
and `save_messages` (bulk: stored and keyword-searchable on return, vectors written behind by a
background task; `flush_vectors` waits for them), `search` (mode, limit, since/until, kinds,
scope). Ranking weights are a frozen `Weights` given at construction.

(Some 555 lines: this is the store's whole public surface, and each method is a thin
delegation to records, retrieval, vectors-behind or the shared text-vector cache.)

Consistency: a memory is committed to SQLite first, then its vector is written; forgetting
deletes from SQLite first, then from Chroma. A crash in between leaves Chroma missing a vector or
holding a stale one; `reconcile()` (run when vectors are attached) re-embeds the missing and
deletes the stale, so the two agree again. Chroma holds vectors of memories in force only.

Supersession: a newer memory retires older ones (kept in SQLite, left out of retrieval) when the
model names them (`replaces`), when a fact or preference has the same `subject` key, or when it
restates one almost word for word (cosine >= `duplicate_similarity` and the same numbers).
Outside (untrusted) content never retires what the owner said (trusted). A memory dated back
(`created_at`: when the words it was drawn from were said) never retires one made after those
words: it is kept as already replaced by the newest of them, and retires nothing. The same text
said again is the memory kept already (a duplicate), dated at the later saying: its date is when
its words were last said, so a repeated "next Tuesday" is read from the new day (R212).

Chroma and the embedder are blocking: every call to them runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from memory.backup import RESTORED_VECTORS
from memory.clock import Clock
from memory.db import Database
from memory.embedder import Embedder
from memory.longterm.behind import VectorsBehind
from memory.longterm.compactions import CompactionLog, NewCompaction
from memory.longterm.keyword import RowFilter
from memory.longterm.lookups import RowLookups
from memory.longterm.ranking import SearchMode, SearchResult, Weights
from memory.longterm.reconcile import reconcile
from memory.longterm.records import MemoryRecords
from memory.longterm.retrieval import Candidates, Retriever
from memory.longterm.text_vectors import TextVectors
from memory.longterm.types import (
    MAX_TEXT_CHARS,
    Kind,
    Memory,
    NewMemory,
    NewMessage,
    Saved,
    Scope,
    Trust,
    normalize_text,
)
from memory.longterm.vector_ops import (
    ReconcileReport,
    embed_and_query,
    index_write,
    same_numbers,
)
from memory.longterm.vectors import VectorIndex
from memory.state import StateStore

if TYPE_CHECKING:
    from memory.stores import Stores

__all__ = ["LongTermMemory", "ReconcileReport"]

log = logging.getLogger(__name__)

QUERY_CACHE = 1024  # query embeddings kept (1.5 KiB each): a burst's messages until written behind
# More unindexed memories than this for one user (a database from before the vector journal, a
# bulk import): compare every id with Chroma rather than embed them all again.
FULL_CHECK_AFTER = 1000

_SLOTTED = (Kind.FACT, Kind.PREFERENCE)  # kinds where one subject holds one current value
_NO_AUTO = (Kind.EPISODE, Kind.GOAL_NOTE, Kind.BRIEFING)  # retired only when named


def _said_since(old: Memory, new: NewMemory, trust: Trust) -> bool:
    """Whether `old` was made after the words `new` was drawn from (`new.created_at`, as
    compaction, extraction and `memory_save` date a fact): an older word never retires a newer
    memory (the owner's correction of what a conversation compacted later said, or typed while
    the turn that saves the old value ran). Outside content is no newer word than the owner's:
    it never retires what the owner said either way."""
    if new.created_at is None or old.created_at <= new.created_at:
        return False
    return not (old.trust is Trust.UNTRUSTED and trust is Trust.TRUSTED)


class LongTermMemory:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        weights: Weights | None = None,
        query_cache: int = QUERY_CACHE,
        full_check_after: int = FULL_CHECK_AFTER,
    ) -> None:
        """`query_cache`: how many query embeddings to keep (0: none, as the benchmark wants);
        `full_check_after`: see FULL_CHECK_AFTER."""
        self.records = MemoryRecords(db, clock)
        self._state = StateStore(db)
        self.compactions = CompactionLog(db, clock)
        self._lookups = RowLookups(db)
        self._weights = weights or Weights()
        self._clock = clock
        self._embedder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._ready = False
        self._vector_lock = asyncio.Lock()
        self._texts = TextVectors(query_cache)
        self._retriever = Retriever(self.records, self._lookups, clock, self._attached, self._texts)
        self._behind = VectorsBehind(
            self.records, self._lookups, self._vector_lock, self._attached, self._texts
        )
        self._full_check_after = full_check_after

    @classmethod
    def from_stores(
        cls,
        stores: Stores,
        clock: Clock,
        *,
        full_check_after: int = FULL_CHECK_AFTER,
        weights: Weights | None = None,
    ) -> LongTermMemory:
        """Long-term memory in the database the other stores use."""
        return cls(stores.db, clock, full_check_after=full_check_after, weights=weights)

    @property
    def weights(self) -> Weights:
        """The ranking configuration given at construction (read only)."""
        return self._weights

    @property
    def clock(self) -> Clock:
        """What "now" is for the store: when a memory saved undated was said (R212)."""
        return self._clock

    async def create_user(self, display_name: str, *, timezone: str | None = None) -> int:
        """A new user to keep memories for; returns the id (channels link to it later)."""
        if not display_name.strip():
            raise ValueError("a user needs a display name")
        return await self._lookups.create_user(display_name, self._clock.now(), timezone)

    async def create_chat(
        self, title: str, *, kind: str = "private", channel: str = "import"
    ) -> int:
        """A chat to keep transcript rows under (an imported or benchmark conversation; live
        chats come from the channels)."""
        return await self._lookups.create_chat(channel, title, kind, self._clock.now())

    def yield_to(self, busy: Callable[[], int] | None) -> None:
        """Replies first: vectors written behind wait while `busy()` > 0 (`behind.py`)."""
        self._behind.yield_to(busy)

    def _attached(self) -> tuple[Embedder, VectorIndex] | None:
        if self._ready and self._embedder is not None and self._index is not None:
            return self._embedder, self._index
        return None

    # -- vectors ------------------------------------------------------------------------------

    @property
    def semantic(self) -> bool:
        """True once vectors are attached and reconciled: searches are hybrid from then on."""
        return self._ready

    @property
    def embedder(self) -> Embedder | None:
        return self._embedder if self._ready else None

    @property
    def index(self) -> VectorIndex | None:
        return self._index if self._ready else None

    async def attach(self, embedder: Embedder, index: VectorIndex) -> ReconcileReport:
        """Start using vectors: bring Chroma in line with SQLite, then switch to hybrid search.

        Saves made while this runs are caught by a second, short pass that runs with writes
        held, so nothing saved or forgotten meanwhile is missed."""
        self._embedder, self._index = embedder, index
        self._texts.clear()
        report = await self.reconcile()
        async with self._vector_lock:
            self._ready = True
            report += await self.reconcile()
        return report

    async def close(self) -> None:
        await self._behind.stop()
        self._texts.close()
        async with self._vector_lock:
            self._ready = False
            index, self._index = self._index, None
        if index is not None:
            await asyncio.to_thread(index.close)

    async def reconcile(self) -> ReconcileReport:
        """Make Chroma hold exactly the vectors of the memories in force in SQLite (see
        `reconcile.py`)."""
        if self._index is None or self._embedder is None:
            return ReconcileReport()
        restored = await self._state.get(RESTORED_VECTORS) == "1"
        report = await reconcile(
            self.records,
            self._index,
            self._embedder,
            self._full_check_after,
            compare_all=restored,
        )
        if restored:  # done once: the index is the restored memories' now
            await self._state.set(RESTORED_VECTORS, "0")
        return report

    async def embed(self, texts: Sequence[str]) -> np.ndarray | None:
        embedder = self.embedder
        if embedder is None:
            return None
        return await asyncio.to_thread(embedder.embed, list(texts))

    # -- writing ------------------------------------------------------------------------------

    async def save(
        self,
        new: NewMemory,
        *,
        vector: np.ndarray | None = None,
        compaction: NewCompaction | None = None,
    ) -> Saved:
        """Save a memory (see the module docstring for supersession). `vector`: its embedding,
        when the caller has it already (a batch embedded at once). `compaction`: the mark of the
        messages this episode summarises, stored in the same transaction as it (R254: a stop
        between the two left an episode with no mark, and its messages were summarised again);
        the vector is written after, as for any memory (restored by `reconcile` if cut off)."""
        trust = new.resolved_trust
        same = await self.records.same_text(new.user_id, new.text)
        if same is not None and (same.trust is Trust.TRUSTED or trust is Trust.UNTRUSTED):
            saved = Saved(await self._said_again(same, new, trust), duplicate=True)
            if compaction is not None:  # the episode is kept already: only the mark to add
                await self.compactions.add(compaction, saved.memory.id)
            return saved
        vector, similar = await self._similar(new, vector)
        targets: set[int] = set(new.replaces)
        if same is not None:
            targets.add(same.id)  # the owner now says what outside content said: theirs wins
        if new.kind in _SLOTTED and new.subject.strip():  # a correction too: one value a slot
            targets.update(
                m.id for m in await self.records.same_subject(new.user_id, new.subject, _SLOTTED)
            )
        close = [i for i, sim in similar if sim >= self.weights.duplicate_similarity]
        found = await self.records.get_many(new.user_id, [*targets, *close])
        if new.kind is not Kind.MESSAGE:  # a memory never retires a transcript row
            found = {i: m for i, m in found.items() if m.kind is not Kind.MESSAGE}
            close = [i for i in close if i in found]
        if new.kind not in _NO_AUTO and not new.replaces_only:  # a restatement: same numbers
            targets.update(i for i in close if i in found and same_numbers(found[i].text, new.text))
        allowed: list[Memory] = []
        newer: list[Memory] = []  # made after the words the new memory was drawn from
        refused: list[int] = []
        for memory_id in sorted(targets):
            old = found.get(memory_id)
            if old is None or (trust is Trust.UNTRUSTED and old.trust is Trust.TRUSTED):
                refused.append(memory_id)
            elif old.kind in _NO_AUTO and memory_id not in new.replaces:
                continue
            elif _said_since(old, new, trust):
                newer.append(old)
            else:
                allowed.append(old)
        if newer:  # an older word: it stands as already replaced, and replaces nothing
            refused += [m.id for m in allowed]
            allowed = []
        refused = [i for i in refused if i in new.replaces]
        latest = max(newer, key=lambda m: (m.created_at, m.id)).id if newer else None
        marks = self.compactions
        try:
            memory = await self.records.insert(
                new,
                supersede=[m.id for m in allowed],
                retired_by=latest,
                also=None
                if compaction is None
                else lambda tx, memory_id: marks.record_in(tx, compaction, memory_id),
            )
        finally:
            if compaction is not None:  # committed or rolled back: its marks are read afresh
                marks.changed(compaction.chat_id)
        retired = await self.records.get_many(
            new.user_id, [m.id for m in allowed], active_only=False
        )
        superseded = tuple(
            retired[m.id] for m in allowed if retired.get(m.id, m).superseded_by == memory.id
        )
        if memory.active:  # Chroma holds vectors of memories in force only
            await self._write_vectors(memory, vector, [m.id for m in superseded])
        return Saved(memory, superseded, refused=tuple(refused))

    async def subject_retires(self, new: NewMemory) -> list[Memory]:
        """The memories `save(new)` would retire by its subject key, as `save` picks them: in
        force, a fact or preference under the same key, never the owner's word for outside
        content; none when `new` is a duplicate. R235: a card showed only `replaces`, and the
        approved save retired an earlier memory under that subject without naming it."""
        if new.kind not in _SLOTTED or not new.subject.strip():
            return []
        trust = new.resolved_trust
        same = await self.records.same_text(new.user_id, new.text)
        if same is not None and (same.trust is Trust.TRUSTED or trust is Trust.UNTRUSTED):
            return []  # the same words kept already: the save retires nothing
        found = await self.records.same_subject(new.user_id, new.subject, _SLOTTED)
        allowed = [m for m in found if trust is Trust.TRUSTED or m.trust is not Trust.TRUSTED]
        if any(_said_since(m, new, trust) for m in allowed):
            return []  # an older word: kept as already replaced, and retires nothing
        return sorted(allowed, key=lambda m: m.id)

    async def _said_again(self, same: Memory, new: NewMemory, trust: Trust) -> Memory:
        """The memory `same` with the date of its words said again in `new`: dated at the later
        saying (R212: "next Tuesday" said on 9 April kept 5 March, so it read as 10 March).
        Never moved back (older words date nothing newer), nor by outside content restating
        the owner's words, nor for kinds a restatement does not touch (a goal's log)."""
        at = new.created_at or self._clock.now()
        if at <= same.created_at or trust is not same.trust:
            return same
        if same.kind in _NO_AUTO or new.kind in _NO_AUTO:
            return same
        return await self.records.said_again(same.user_id, same.id, at) or same

    async def _similar(
        self, new: NewMemory, vector: np.ndarray | None
    ) -> tuple[np.ndarray | None, list[tuple[int, float]]]:
        embedder, index = self.embedder, self.index
        if embedder is None or index is None:
            return None, []
        vector = vector if vector is not None else self._texts.get(new.text)  # said lately
        try:
            if vector is not None:
                found = await asyncio.to_thread(index.query, new.user_id, vector, 5)
                return vector, found
            return await asyncio.to_thread(embed_and_query, embedder, index, new.user_id, new.text)
        except Exception:
            log.warning("memory: similarity check failed; saving without it", exc_info=True)
            return None, []

    async def _write_vectors(
        self, memory: Memory, vector: np.ndarray | None, retired: list[int]
    ) -> None:
        async with self._vector_lock:
            if not self._ready or self._index is None or self._embedder is None:
                return  # attach() will pick this memory up
            try:
                await asyncio.to_thread(
                    index_write, self._embedder, self._index, memory, vector, retired
                )
                await self.records.mark_indexed([memory.id], user_id=memory.user_id)
                await self.records.clear_removals(retired)
            except Exception:
                log.warning(
                    "memory #%d: vector not written (kept in SQLite; restored at the next start)",
                    memory.id,
                    exc_info=True,
                )

    async def save_many(
        self, rows: Sequence[NewMemory], *, vectors: np.ndarray | None = None
    ) -> list[int]:
        """Save many memories in one transaction (import, transcripts, benchmarks): no
        supersession checks. Stored and keyword-searchable on return; their vectors are written
        behind by a background task (`flush_vectors` waits for it), or at once when given
        (`vectors`: one row per memory, embedded by the caller). Returns the ids in order."""
        if vectors is not None and len(vectors) != len(rows):
            raise ValueError(f"{len(rows)} memories but {len(vectors)} vectors")
        ids = await self.records.insert_many(rows)
        if vectors is not None:
            await self._behind.write_given(rows, ids, vectors)
        self._behind.kick(len(rows))
        return ids

    async def save_messages(
        self, rows: Sequence[NewMessage], *, vectors: np.ndarray | None = None
    ) -> list[int | None]:
        """Keep transcript messages searchable (kind `message`, the speaker as subject), the
        same way as `save_many`. A message already kept for the same user (same
        `message_id`) is skipped: its place in the result is None."""
        for row in rows:
            if row.created_at.tzinfo is None:
                raise ValueError("a message's created_at must be an aware datetime")
        ids = await self.save_many([row.as_memory() for row in rows], vectors=vectors)
        return [i or None for i in ids]

    async def update_message_text(self, message_id: int, text: str) -> int:
        """A kept message's text changed (a voice note transcribed, a photo described): every
        member's row follows, keyword-searchable at once, its vector rewritten behind. Returns
        the rows changed."""
        text = normalize_text(text)
        if not text or len(text) > MAX_TEXT_CHARS:
            raise ValueError("a message's text is 1 to 4,000 characters")
        async with self._vector_lock:  # not while a chunk of vectors is being written
            changed = await self._lookups.update_message_text(message_id, text)
        self._behind.kick()
        return changed

    async def replace_words(
        self, user_id: int, kind: Kind, old: str, new: str, goal_id: int
    ) -> int:
        """`old` as `new` in a user's memories of `kind` about one goal (its subject: a
        forgotten goal's title in its notes), keyword-searchable at once, vectors rewritten
        behind; how many changed."""
        async with self._vector_lock:
            changed = await self._lookups.replace_words(user_id, kind, old, new, f"goal {goal_id}")
        if changed:
            self._behind.kick()
        return changed

    def vectors_owed(self) -> None:
        """Rows were marked for (re)writing outside this store (memories moved to another
        user by a link): write them soon rather than at the next pass."""
        self._behind.kick()

    async def flush_vectors(self) -> int:
        """Write every vector still owed (bulk saves write theirs behind); returns how many
        were left. Nothing to do while vectors are not attached."""
        return await self._behind.flush()

    async def settle_subjects(self, user_id: int, memory_ids: list[int]) -> int:
        """After an import: of the facts and preferences in force that share a subject with one
        of `memory_ids`, the newest stays and the older ones are marked replaced by it, as a
        save would have done (R110: an old home city imported stayed in force beside the
        current one, both in every turn); outside content never retires the owner's word.
        How many were retired."""
        retired = 0
        found = await self.records.get_many(user_id, memory_ids)
        for memory in found.values():
            if memory.kind not in _SLOTTED or not memory.subject.strip():
                continue
            same = await self.records.same_subject(user_id, memory.subject, _SLOTTED)
            if len(same) < 2:
                continue
            # the owner's newest word stands over outside content either way, as in a save
            # (R111: an outside memory newest made every trusted one stay in force)
            trusted = [m for m in same if m.trust is Trust.TRUSTED]
            newest = max(trusted or same, key=lambda m: (m.created_at, m.id))
            for old in same:
                if old.id != newest.id:
                    at = max(newest.created_at, old.created_at)
                    retired += await self.records.retire(user_id, old.id, newest.id, at)
        return retired

    async def forget(self, user_id: int, memory_id: int) -> Memory | None:
        """Delete a memory from SQLite and Chroma both; None when the user has no such memory."""
        memory = await self.records.delete(user_id, memory_id)
        if memory is None:
            return None
        await self._drop_vectors([(memory_id, user_id)])
        return memory

    async def made_in_turn(self, user_id: int, turn_id: int, kind: Kind) -> list[Memory]:
        return await self._lookups.made_in_turn(user_id, turn_id, kind)

    async def long_messages_saying(
        self, user_id: int, words: str, *, chat_id: int | None = None, limit: int = 5
    ) -> list[tuple[Memory, str]]:
        """`RowLookups.long_messages_saying`: what search cannot see of long messages."""
        return await self._lookups.long_messages_saying(user_id, words, chat_id, limit)

    async def corrections_of(
        self, user_id: int, message_ids: list[int]
    ) -> dict[int, list[tuple[int, Memory | None]]]:
        """Of `message_ids`, those of an exchange a corrected memory came from: (its id, the
        memory in force in its place, if any) for each (`RowLookups.corrections_of`)."""
        return await self._lookups.corrections_of(user_id, message_ids)

    async def forget_message(self, message_id: int) -> int:
        """Delete every member's transcript row of one message, vectors too; how many."""
        rows = await self._lookups.delete_message_rows(message_id)
        await self._drop_vectors(rows)
        return len(rows)

    async def _drop_vectors(self, rows: list[tuple[int, int]]) -> None:
        """Delete the vectors of removed rows ((id, user id)); those Chroma does not take now
        stay in the removals journal, applied at the next start."""
        async with self._vector_lock:
            if not rows or not self._ready or self._index is None:
                return
            for user_id in {user for _, user in rows}:
                ids = [memory_id for memory_id, user in rows if user == user_id]
                try:
                    await asyncio.to_thread(self._index.delete, user_id, ids)
                    await self.records.clear_removals(ids)
                except Exception:
                    log.warning("memories %s: vectors not deleted yet", ids, exc_info=True)

    # -- reading ------------------------------------------------------------------------------

    async def search(
        self,
        user_id: int,
        query: str,
        k: int | None = None,
        *,
        limit: int | None = None,
        mode: SearchMode = "hybrid",
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Sequence[Kind] | None = None,
        scope: Scope | None = None,
        min_similarity: float | None = None,
        time_boost: bool = False,
    ) -> SearchResult:
        """The user's `limit` (or `k`; default 5) best memories in force for `query`,
        transcript messages included unless `kinds` leaves them out. `since`/`until` (aware)
        keep what was said in [since, until) (`time_boost`: rank it higher, keep the rest);
        `scope` keeps rows of its chats. `mode` is what is asked; the result's `mode` is what
        ran (`keyword_only` while vectors are not attached)."""
        if mode not in ("hybrid", "vector", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        count = limit if limit is not None else (k if k is not None else 5)
        if mode != "keyword":
            await self._behind.settle()
        return await self._retriever.search(
            user_id,
            query,
            max(1, count),
            weights=self._weights,
            mode=mode,
            filter=RowFilter.of(since, until, kinds, scope),
            min_similarity=min_similarity,
            time_boost=time_boost,
        )

    async def candidates(
        self,
        user_id: int,
        query: str,
        *,
        limit: int | None = None,
        mode: SearchMode = "hybrid",
        since: datetime | None = None,
        until: datetime | None = None,
        kinds: Sequence[Kind] | None = None,
        scope: Scope | None = None,
        time_boost: bool = False,
    ) -> Candidates:
        """What `search` ranks, for ranking again under other weights (`Candidates.rank`):
        both lists (`limit` each, default `weights.candidates`), the rows and the neighbouring
        turns of every candidate. Fitting the weights uses it (bench/memory_bench.py)."""
        return await self._retriever.candidates(
            user_id,
            query,
            limit or self._weights.candidates,
            mode=mode,
            filter=RowFilter.of(since, until, kinds, scope),
            time_boost=time_boost,
            neighbours_of=None,
            reach=self._weights.neighbour_reach,
        )

    async def recent(self, user_id: int, limit: int = 10) -> list[Memory]:
        return await self.records.recent(user_id, limit)

    async def get(self, user_id: int, memory_id: int) -> Memory | None:
        return await self.records.get(user_id, memory_id)
