"""Long-term memory, agent side: the facade the rest of Steward holds, and start-up.

(Over 400 lines: a facade, each method a few lines handing over to the parts named below;
the rest of Steward holds this one object instead of the parts.)

- Start-up stays quick: the embedder and Chroma load in a background task (worker threads), then
  Chroma is reconciled with SQLite. A turn that arrives before that uses keyword-only (FTS5)
  retrieval. If no embedder can load, Steward runs on keyword memory and says so once (a log
  line at start-up, and a line in /status).
- The whole transcript is memory too (`agent.transcript_memory`): every message is kept as a
  searchable row as soon as it is stored, and a database from before is backfilled once.
- The work is in the parts this composes: `agent.recall` (what a turn recalls; searches over
  memories and messages, with dates and periods in the query), `agent.memory_upkeep`
  (extraction and compaction after a turn, over `agent.side_call`), `agent.memory_portability`
  (JSONL export and import). Writes that tools, goals and the scheduler make (`remember`,
  `record_event`, `forget`) are here, the `agent.ports.Remembering` port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.background_chains import BackgroundChains
from agent.forgetting import Forgetting, Forgotten
from agent.memory_portability import ImportReport, MemoryPortability
from agent.memory_upkeep import MemoryUpkeep
from agent.model import Model
from agent.recall import Found, Recall, Recaller
from agent.side_call import SideCall
from agent.transcript_memory import Transcript
from agent.types import TurnOutcome, TurnRequest
from memory.clock import Clock
from memory.embedder import (
    EMBEDDER_OFF,
    IDLE_RELEASE_S,
    Embedder,
    EmbedderUnavailable,
    load_embedder,
)
from memory.labels import Label
from memory.longterm import (
    Hit,
    Kind,
    LongTermMemory,
    Memory,
    NewMemory,
    Saved,
    Source,
    Trust,
    VectorIndex,
    Weights,
)
from memory.people import Chat, User
from memory.stores import Stores

__all__ = ["Found", "ImportReport", "MemoryConfig", "MemoryService", "MemoryState", "Recall"]

log = logging.getLogger(__name__)

MAX_EVENT_CHARS = 600  # a goal note or briefing kept as a memory: the gist, not the whole
UPKEEP_GRACE = 5.0
"""Seconds the upkeep under way at shutdown gets to finish before it is cancelled."""


class MemoryState(StrEnum):
    STARTING = "starting"
    HYBRID = "hybrid"
    KEYWORD_ONLY = "keyword-only"


@dataclass(frozen=True)
class MemoryConfig:
    embedder: str = "minilm"
    embedder_dir: Path | None = None
    embedder_idle: float | None = IDLE_RELEASE_S  # s; None keeps the model (STEWARD_EMBEDDER_IDLE)
    chroma_path: Path = Path("data/chroma")
    chroma_url: str | None = None
    context_tokens: int = 800
    history_tokens: int = 6000
    collection_prefix: str = "steward"
    server_retry_seconds: float = 30.0
    timezone: str = "UTC"  # the owner's, when a user has none: dates in queries and results
    weights: Weights | None = None  # ranking (STEWARD_MEMORY_WEIGHTS); None: the defaults
    workspace: Path | None = None  # where a forgotten voice note's recording is deleted


EmbedderLoader = Callable[[], Embedder]
IndexOpener = Callable[[Embedder], VectorIndex]


CLOSE_TO_BEST = 0.75
"""A hit found by meaning alone is shown only this close to the best one (and above the
floor): at half, "KX-4421" brought the cabin's wifi password along (review 36)."""
SEARCH_FLOOR = 0.2
"""Under this cosine (all-MiniLM-L6-v2), with no word in common, a search found nothing related:
"quantum chromodynamics" reaches 0.13 against everyday memories; "what I drink in coffee"
reaches 0.22 against "Prefers oat milk"."""


class MemoryService:
    def __init__(
        self,
        *,
        stores: Stores,
        clock: Clock,
        model: Model | None,
        config: MemoryConfig,
        load_embedder_fn: EmbedderLoader | None = None,
        open_index_fn: IndexOpener | None = None,
        owns_model: bool = False,
    ) -> None:
        """`owns_model`: the model is this service's own (STEWARD_MEMORY_MODEL) and is closed
        with it. The loaders replace the default embedder and Chroma (tests, benchmarks)."""
        self.store = LongTermMemory.from_stores(stores, clock, weights=config.weights)
        self.config = config
        self.transcript = Transcript(
            store=self.store, messages=stores.messages, people=stores.people, state=stores.state
        )
        self.transcript.listen()  # every message stored from now on is kept searchable
        self.recaller = Recaller(
            self.store, clock=clock, timezone=config.timezone, transcript=self.transcript
        )
        self.upkeep = MemoryUpkeep(
            store=self.store,
            messages=stores.messages,
            turns=stores.turns,
            side=SideCall(model, stores.turns) if model is not None else None,
            history_tokens=config.history_tokens,
            timezone=config.timezone,
        )
        self.portability = MemoryPortability(self.store, stores.people)
        self.forgetting = Forgetting(
            self.store,
            stores.messages,
            stores.turns,
            stores.approvals,
            stores.message_files,
            config.workspace,
            schedules=stores.schedules,
            goals=stores.goals,
        )
        self._model = model
        self._owns_model = owns_model
        self._load_embedder = load_embedder_fn or (
            lambda: load_embedder(
                config.embedder, config.embedder_dir, idle_release=config.embedder_idle
            )
        )
        self._open_index = open_index_fn or self._default_index
        self.state = MemoryState.STARTING
        self.detail = "loading the embedder and Chroma"
        if load_embedder_fn is None and config.embedder.strip().lower() in EMBEDDER_OFF:
            # nothing will load: say so from the first /status (R129: "while the embedder
            # and Chroma load" until the start-up task had run)
            self.state = MemoryState.KEYWORD_ONLY
            self.detail = "embeddings are disabled (STEWARD_EMBEDDER=none)"
        self._ready = asyncio.Event()
        self._hybrid = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._upkeeps = BackgroundChains("memory-upkeep")

    # -- lifecycle ---------------------------------------------------------------------------

    def _default_index(self, embedder: Embedder) -> VectorIndex:
        return VectorIndex.open(
            path=None if self.config.chroma_url else self.config.chroma_path,
            url=self.config.chroma_url,
            prefix=self.config.collection_prefix,
            embedder=embedder.name,
            dim=embedder.dim,
        )

    async def start(self) -> None:
        """Begin loading vectors in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._connect(), name="memory-vectors")
        self.transcript.start()  # catch up (a database from before: the backfill) behind

    async def wait_ready(self) -> None:
        """Wait until start-up settled: hybrid, or keyword-only (wrap in asyncio.timeout)."""
        await self._ready.wait()

    async def wait_hybrid(self) -> None:
        """Wait until semantic search is on (a Chroma server may come up late)."""
        await self._hybrid.wait()

    def yield_to(self, busy: Callable[[], int]) -> None:
        """Replies first: vectors written behind the turns wait while `busy()` (the turns in
        flight, `ChatSequencer.in_flight`) is above 0, a few seconds at most, then catch up
        in batches (memory.longterm.behind)."""
        self.store.yield_to(busy)

    @property
    def settled(self) -> bool:
        return self._ready.is_set()

    async def stop(self) -> None:
        await self._upkeeps.stop(UPKEEP_GRACE)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # already logged by _connect
                pass
            self._task = None
        await self.transcript.stop()
        await self.store.close()
        close = getattr(self._model, "close", None)
        if self._owns_model and close is not None:
            await close()

    async def _connect(self) -> None:
        try:
            embedder = await asyncio.to_thread(self._load_embedder)
        except EmbedderUnavailable as exc:
            self._keyword_only(str(exc))
            return
        except Exception as exc:
            self._keyword_only(f"the embedder failed to load: {exc}")
            return
        warned = False
        while True:
            try:
                index = await asyncio.to_thread(self._open_index, embedder)
                break
            except Exception as exc:
                if not self.config.chroma_url:
                    self._keyword_only(f"Chroma could not be opened: {exc}")
                    return
                if not warned:  # a server may come up later: keep trying, say so once
                    self._keyword_only(f"the Chroma server is not reachable yet ({exc})")
                    warned = True
                await asyncio.sleep(self.config.server_retry_seconds)
        try:
            report = await self.store.attach(embedder, index)
        except Exception as exc:
            log.exception("memory: reconciling Chroma with SQLite failed")
            self._keyword_only(f"Chroma could not be reconciled: {exc}")
            return
        self.state = MemoryState.HYBRID
        self.detail = f"{embedder.name}, {index.where}"
        log.info(
            "long-term memory: hybrid search ready (%s); %d vectors restored, %d stale removed",
            self.detail,
            report.added,
            report.removed,
        )
        self._hybrid.set()
        self._ready.set()
        await self._let_go_until_needed(embedder)

    async def _let_go_until_needed(self, embedder: Embedder) -> None:
        """The model was loaded to prove it works and to reconcile; a start is usually followed
        by idle, so it is let go now (~106 MiB) and loaded again by the first search (~0.1 s),
        unless STEWARD_EMBEDDER_IDLE is 0 (keep it)."""
        release = getattr(embedder, "release", None)
        if self.config.embedder_idle is None or release is None:
            return
        if await asyncio.to_thread(release):
            log.debug("embedder let go until the first search")

    def _keyword_only(self, reason: str) -> None:
        self.state = MemoryState.KEYWORD_ONLY
        self.detail = reason
        log.warning("long-term memory: keyword search only (FTS5) — %s", reason)
        self._ready.set()

    async def status_line(self, user_id: int | None = None, *, detailed: bool = True) -> str:
        """How memory is searched, and how many memories there are: `user_id`'s own, or (for
        the owner's /status) everyone's. `detailed` False (another person's /memory, R239):
        not the deployment's embedder, Chroma's place or why it failed, as /status hides them."""
        count = await self.store.records.count(user_id)
        if self.state is MemoryState.HYBRID:
            how = f"hybrid search ({self.detail})" if detailed else "hybrid search"
        elif self.state is MemoryState.STARTING:
            how = "keyword search while the embedder and Chroma load"
        else:
            how = f"keyword search only — {self.detail}" if detailed else "keyword search only"
        return f"Memory: {count} memor{'y' if count == 1 else 'ies'}; {how}"

    # -- reading (agent.recall) --------------------------------------------------------------

    async def recall(self, request: TurnRequest) -> Recall:
        return await self.recaller.recall(request)

    async def latest_episode(self, chat: Chat, user: User) -> Memory | None:
        return await self.recaller.latest_episode(chat, user)

    async def history_floor(self, chat_id: int) -> int:
        return await self.recaller.history_floor(chat_id)

    async def correction_notes(
        self, user_id: int, message_ids: list[int], *, quote: bool
    ) -> dict[int, str]:
        return await self.recaller.correction_notes(user_id, message_ids, quote=quote)

    async def search(
        self,
        user_id: int,
        query: str,
        k: int = 8,
        *,
        timezone: str | None = None,
        kinds: list[Kind] | None = None,
        chat: int | None = None,
    ) -> Found:
        """Memories and transcript messages for `query` (see `agent.recall`); `timezone` is the
        user's, for the dates the query names; `chat`: only that chat's (a group's).

        Relevance is judged on the whole result: a search for "quantum chromodynamics" listed
        every memory, however unrelated. When no words matched and nothing came close in
        meaning (best cosine under SEARCH_FLOOR) there is nothing; otherwise what only
        vector search found must come close to the best (CLOSE_TO_BEST) and above the floor.
        A period the query names ("yesterday") is relevance of its own: what falls in it is
        kept, and when something does, only word matches from outside it."""
        found = await self.recaller.search(
            user_id, query, k, timezone=timezone, kinds=kinds, chat=chat
        )
        if not found.hits:
            return found
        period = found.period

        def in_period(hit: Hit) -> bool:
            at = hit.memory.created_at
            return (
                period is not None
                and (period.since is None or at >= period.since)
                and (period.until is None or at < period.until)
            )

        def own(hit: Hit) -> bool:  # found in its own right, not only as a neighbouring turn
            return hit.keyword_rank is not None or hit.vector_rank is not None

        judged = [hit for hit in found.hits if not in_period(hit) and own(hit)]
        worded = any(hit.keyword_rank is not None for hit in judged)
        # hits found by meaning alone are measured against each other: a strong word match
        # raised the bar past the appointment itself (review 37)
        by_meaning = [hit.similarity or 0.0 for hit in judged if hit.keyword_rank is None]
        best = max(by_meaning, default=0.0)
        # what the period holds answers a question about it; beyond it, words must match
        period_found = any(in_period(hit) for hit in found.hits)

        def relevant(hit: Hit) -> bool:
            if in_period(hit) or hit.keyword_rank is not None:
                return True
            if period_found or (not worded and best < SEARCH_FLOOR):
                return False
            floor = max(SEARCH_FLOOR, best * CLOSE_TO_BEST)
            return hit.similarity is None or hit.similarity >= floor

        kept = [hit for hit in found.hits if own(hit) and relevant(hit)]
        ids = {hit.memory.id for hit in kept}
        # a turn found only as a neighbour stays with the hit it neighbours, and goes with it
        kept += [hit for hit in found.hits if not own(hit) and hit.neighbour_of in ids]
        order = {id(hit): n for n, hit in enumerate(found.hits)}
        kept.sort(key=lambda hit: order[id(hit)])
        around = {key: turns for key, turns in found.around.items() if key in ids}
        return replace(found, hits=kept, around=around)

    async def interests(self, user: User) -> list[str]:
        return await self.recaller.interests(user)

    # -- writing -----------------------------------------------------------------------------

    async def remember(self, new: NewMemory) -> Saved:
        saved = await self.store.save(new)
        if new.turn_id is not None:
            self.upkeep.saved_during(new.turn_id)
        return saved

    async def record_event(
        self,
        user_id: int,
        text: str,
        *,
        kind: Kind,
        source: Source,
        label: Label,
        subject: str = "",
        chat_id: int | None = None,
        turn_id: int | None = None,
        importance: float = 0.4,
    ) -> Saved | None:
        """Goal progress and briefing history as memories, so later turns can recall them.
        `label` is that of what wrote the event (the turn, the goal). The event already
        happened: a failure to remember it is logged, never raised."""
        try:
            return await self.store.save(
                NewMemory(
                    user_id=user_id,
                    text=text[:MAX_EVENT_CHARS],
                    kind=kind,
                    subject=subject,
                    source=source,
                    trust=Trust.UNTRUSTED if label.tainted else None,
                    importance=importance,
                    chat_id=chat_id,
                    turn_id=turn_id,
                    label=label,
                )
            )
        except Exception:
            log.exception("could not remember a %s for user %s", kind.value, user_id)
            return None

    async def get(self, user_id: int, memory_id: int) -> Memory | None:
        return await self.store.get(user_id, memory_id)

    async def forget(self, user_id: int, memory_id: int, *, purge: bool = True) -> Forgotten | None:
        """The memory and the exchange it came from (agent/forgetting.py). Upkeep still running
        is waited for first: a compaction that read the transcript before the forget would
        save the fact again after it (review 77). `purge=False`: the caller forgets more and
        calls `purge_forgotten` once after them."""
        await self.upkeep_settled()
        forgotten = await self.forgetting.forget(user_id, memory_id)
        if purge and forgotten is not None and forgotten.underway is None:
            await self.forgetting.purge()
        return forgotten

    async def purge_forgotten(self) -> None:
        """Forgotten words out of the database file (agent/forgetting.py `purge`)."""
        await self.forgetting.purge()

    # -- after a turn (agent.memory_upkeep), export / import (agent.memory_portability) -------

    def after_turn(self, request: TurnRequest, outcome: TurnOutcome) -> None:
        """Extraction, then compaction, for a chat turn that completed, handed to the
        background: returns at once. The turn's reply is out (or queued) by now, and the
        chat's next message must not wait behind these model calls. One chat's upkeeps run
        one after the other, in the order of their turns; chats' run side by side, as their
        turns do. `upkeep_settled` waits for them; `stop` lets them finish for UPKEEP_GRACE
        seconds, then cancels the rest."""
        key = request.chat.id if request.chat is not None else None
        self._upkeeps.add(key, lambda: self.upkeep.after_turn(request, outcome))  # never raises

    async def upkeep_settled(self) -> None:
        """Until every upkeep handed off is done, those handed off meanwhile included."""
        await self._upkeeps.settled()

    async def export_records(self) -> list[dict[str, Any]]:
        return await self.portability.export_records()

    async def import_records(self, records: Iterable[dict[str, Any]]) -> ImportReport:
        return await self.portability.import_records(records)
