"""What long-term memory brings to a turn: the chat's latest episode and the user's memories.

Before each turn, the episode that replaced the chat's older messages (what compaction
summarised) and the user's memories most relevant to the message go into the per-turn context
block; `agent.context.MemorySource` cuts them to STEWARD_MEMORY_TOKENS. The most important
memories ride along unasked, but only trusted ones: an untrusted memory taints the turn that
carries it, so it comes only when it is relevant.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from agent.types import TurnRequest
from memory.longterm import Kind, LongTermMemory, Memory, SearchResult
from memory.longterm.terms import STOPWORDS
from memory.people import Chat, User

__all__ = ["Recall", "Recaller"]

CONTEXT_HITS = 12  # candidates for the context block; the token budget decides how many fit
CONTEXT_MIN_SIMILARITY = 0.3  # a vector-only hit below this is not relevant enough to show
CORE_IMPORTANCE = 0.85  # memories this important join the context whenever there is room


@dataclass(frozen=True)
class Recall:
    """What memory brings to one turn."""

    memories: list[Memory]
    episode: Memory | None
    mode: str


class Recaller:
    """Reads long-term memory for turns, searches and briefings; never writes."""

    def __init__(self, store: LongTermMemory) -> None:
        self._store = store

    async def recall(self, request: TurnRequest) -> Recall:
        """The chat's latest episode and the user's memories most relevant to the message,
        best first (the context source cuts them to its token budget)."""
        episode = await self.latest_episode(request.chat, request.user) if request.chat else None
        result = await self._store.search(
            request.user.id,
            request.text,
            CONTEXT_HITS,
            min_similarity=CONTEXT_MIN_SIMILARITY,
        )
        # A briefing is written from items not yet briefed; earlier briefings would only invite
        # repeats, so its turn recalls everything but them.
        skip_kind = Kind.BRIEFING if request.kind == "briefing" else None
        memories = [
            m
            for m in result.memories
            if (episode is None or m.id != episode.id) and m.kind is not skip_kind
        ]
        seen = {m.id for m in memories}
        for memory in await self._store.records.important(request.user.id, 5, CORE_IMPORTANCE):
            # Only the owner's own word rides along unasked: an untrusted memory taints the turn
            # that carries it, so it comes only when it is relevant to the message.
            if memory.untrusted:
                continue
            if memory.id not in seen and (episode is None or memory.id != episode.id):
                memories.append(memory)
                seen.add(memory.id)
        return Recall(memories, episode, result.mode)

    async def latest_episode(self, chat: Chat, user: User) -> Memory | None:
        """The episode that replaced this chat's older messages, if it is this user's."""
        compaction = await self._store.compactions.latest(chat.id)
        if compaction is None or compaction.episode_id is None:
            return None
        found = await self._store.get(user.id, compaction.episode_id)
        return found if found is not None and found.active else None

    async def history_floor(self, chat_id: int) -> int:
        """Messages up to this id were compacted into an episode: the history starts after."""
        return await self._store.compactions.compacted_through(chat_id)

    async def search(self, user_id: int, query: str, k: int = 8) -> SearchResult:
        return await self._store.search(user_id, query, k)

    async def interests(self, user: User) -> list[str]:
        """Words from the user's preferences, most frequent first (ranks briefing items)."""
        counts: Counter[str] = Counter()
        for memory in await self._store.records.recent(user.id, 200, kinds=[Kind.PREFERENCE]):
            for word in re.findall(r"[^\W\d_]{4,}", f"{memory.subject} {memory.text}".lower()):
                if word not in STOPWORDS:
                    counts[word] += 1
        return [word for word, _ in counts.most_common(30)]
