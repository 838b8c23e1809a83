"""What long-term memory brings to a turn, and what a search finds: memories and messages.

Before each turn, the episode that replaced the chat's older messages (what compaction
summarised), the user's memories most relevant to the message, and past messages of the
transcript that bear on it go into the per-turn context block; `agent.context.MemorySource`
cuts them to STEWARD_MEMORY_TOKENS. The most important memories ride along unasked, but only
trusted ones: an untrusted memory taints the turn that carries it, so it comes only when it is
relevant. A past message is recalled only when it is close in meaning (vectors are needed): the
words it shares with the message are not enough, and a recalled untrusted message taints the
turn like an untrusted memory.

The embedder reads English, no other language reliably (R211, R214): any two Russian, Chinese,
Vietnamese or Polish sentences come out close in meaning, related or not, so a guest's group
message was recalled into the owner's every such turn and tainted it. Where the message does not
read as English (`reads_as_english`), or what it would bring is mostly in another script, only a
near restatement (cosine `UNREAD_MIN_SIMILARITY`) counts as close in meaning; a memory's shared
words still do.

A search (`memory_search`, `/memory search`) covers memories and messages, says which is which,
shows a message with the turns around it and when it was said (in the owner's timezone). A date
or period in the query ("in May", "last week") is found by `agent.query_time`: hits inside it
come first, the others still follow.

In a group (or a channel) the reply is read by everyone there, so recall and `memory_search`
draw only on what was said or kept in that chat: what the user said in private, or Steward
learned elsewhere, stays out of it (`group_scope`).

(Some 495 lines: what a turn recalls and what a search finds share their bars and their scope,
so they are kept in one place.)
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from agent import query_time
from agent.query_time import QueryTime, find_period
from agent.text_scripts import mostly_unlatin
from agent.types import TurnRequest
from memory.clock import Clock
from memory.labels import TRUSTED, Label
from memory.longterm import MEMORY_KINDS, Hit, Kind, LongTermMemory, Memory, Scope
from memory.longterm.terms import STOPWORDS, query_terms
from memory.messages import StoredMessage
from memory.people import Chat, User

if TYPE_CHECKING:
    from agent.transcript_memory import Transcript, Turn

__all__ = [
    "Found",
    "Recall",
    "Recaller",
    "correction_note",
    "hit_label",
    "message_label",
    "reads_as_english",
]

CONTEXT_HITS = 12  # candidates for the context block; the token budget decides how many fit
CONTEXT_MIN_SIMILARITY = 0.3  # a vector-only hit below this is not relevant enough to show
CONTEXT_MESSAGES = 3  # past messages recalled into a turn, at most
MESSAGE_MIN_SIMILARITY = 0.45  # a past message this close in meaning, or it is not recalled
CORE_IMPORTANCE = 0.85  # memories this important join the context whenever there is room
PERIOD_MIN_SIMILARITY = 0.35  # an in-period hit found by meaning only must be this close
NEIGHBOURS = 2  # turns shown on each side of a message found
UNREAD_MIN_SIMILARITY = 0.8  # the bar by meaning where the embedder cannot read the script


@dataclass(frozen=True)
class Recall:
    """What memory brings to one turn."""

    memories: list[Memory]
    episode: Memory | None
    mode: str
    messages: list[Memory] = field(default_factory=list)
    """Past messages of the transcript relevant to this one (kind `message`), best first."""
    timezone: str = "UTC"
    """The user's timezone (or Steward's), for the dates shown with them."""


@dataclass(frozen=True)
class Found:
    """What a search found: memories and messages (`hit.memory.kind`), best first; `around`
    holds, for a message found, the message with its neighbouring turns."""

    hits: list[Hit]
    mode: str
    period: QueryTime | None = None
    around: dict[int, list[Turn]] = field(default_factory=dict)

    @property
    def memories(self) -> list[Memory]:
        return [hit.memory for hit in self.hits]

    @property
    def label(self) -> Label:
        """The join of the labels of everything found, neighbouring turns included."""
        label = TRUSTED
        for hit in self.hits:
            label = label.join(hit_label(hit.memory))
        for turns in self.around.values():
            label = label.join(*(message_label(t.message) for t in turns))
        return label


class Recaller:
    """Reads long-term memory for turns, searches and briefings; never writes."""

    def __init__(
        self,
        store: LongTermMemory,
        *,
        clock: Clock,
        timezone: str = "UTC",
        transcript: Transcript | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._timezone = timezone
        self._transcript = transcript

    async def recall(self, request: TurnRequest) -> Recall:
        """The chat's latest episode, the user's memories most relevant to the message (best
        first; the context source cuts them to its token budget) and relevant past messages."""
        episode = await self.latest_episode(request.chat, request.user) if request.chat else None
        here = group_scope(request.chat)
        # Memories and messages are searched apart, so the transcript never crowds the
        # memories out of the candidates; messages only by meaning (see the module docstring).
        wants_messages = self._store.semantic and not request.self_initiated
        unread = not reads_as_english(request.text)
        found, said = await asyncio.gather(
            self.search(
                request.user.id,
                request.text,
                CONTEXT_HITS,
                timezone=request.user.timezone,
                kinds=MEMORY_KINDS,
                min_similarity=UNREAD_MIN_SIMILARITY if unread else CONTEXT_MIN_SIMILARITY,
                neighbours=False,
                chat=here,
            ),
            self.search(
                request.user.id,
                request.text,
                CONTEXT_MESSAGES * 3,
                timezone=request.user.timezone,
                kinds=[Kind.MESSAGE],
                min_similarity=UNREAD_MIN_SIMILARITY if unread else MESSAGE_MIN_SIMILARITY,
                neighbours=False,
                chat=here,
            )
            if wants_messages
            else _nothing(),
        )
        # A briefing is written from items not yet briefed; earlier briefings would only invite
        # repeats, so its turn recalls everything but them.
        skip_kind = Kind.BRIEFING if request.kind == "briefing" else None
        memories = [
            m
            for m in (hit.memory for hit in found.hits if _readable(hit))
            if m.kind is not Kind.MESSAGE
            and (episode is None or m.id != episode.id)
            and m.kind is not skip_kind
        ]
        messages = await self._past_messages(request, said.hits)
        seen = {m.id for m in memories}
        for memory in await self._store.records.important(request.user.id, 5, CORE_IMPORTANCE):
            # Only the owner's own word rides along unasked: an untrusted memory taints the turn
            # that carries it, so it comes only when it is relevant to the message.
            if memory.untrusted or (here is not None and memory.chat_id != here):
                continue
            if memory.id not in seen and (episode is None or memory.id != episode.id):
                memories.append(memory)
                seen.add(memory.id)
        zone = request.user.timezone or self._timezone
        return Recall(memories, episode, found.mode, messages, zone)

    async def _past_messages(self, request: TurnRequest, hits: Sequence[Hit]) -> list[Memory]:
        """Messages close in meaning to this one that are not in view already: not this message,
        nor the part of this chat's conversation the history still shows."""
        if request.self_initiated:
            return []
        floor = await self.history_floor(request.chat.id) if request.chat else 0
        picked: list[Memory] = []
        seen: set[int] = set()
        clear = _clearly_english(request.text)
        for hit in hits:
            memory = hit.memory
            if memory.kind is not Kind.MESSAGE or memory.message_id in seen:
                continue
            if hit.similarity is None or hit.similarity < _message_bar(memory, clear):
                continue
            if memory.message_id == request.message_id:
                continue
            in_view = request.chat is not None and memory.chat_id == request.chat.id
            if in_view and (memory.message_id or 0) > floor:
                continue  # still in the conversation sent with the turn
            seen.add(memory.message_id or 0)
            picked.append(memory)
            if len(picked) >= CONTEXT_MESSAGES:
                break
        # the exchange a corrected memory came from states the old belief as if it held (R95):
        # it comes with what replaced it, the rest of what it said still there (R98)
        corrected = await self._store.corrections_of(
            request.user.id, [m.message_id for m in picked if m.message_id is not None]
        )
        quote = request.chat is None or request.chat.kind == "private"
        return [
            _with_corrections(m, corrected.get(m.message_id or 0, []), quote=quote) for m in picked
        ]

    async def latest_episode(self, chat: Chat, user: User) -> Memory | None:
        """The episode that replaced this chat's older messages, if it is this user's."""
        compaction = await self._store.compactions.latest(chat.id)
        if compaction is None or compaction.episode_id is None:
            return None
        found = await self._store.get(user.id, compaction.episode_id)
        for _ in range(8):  # corrected by the owner: the summary that replaced it (R142)
            if found is None or found.active or found.superseded_by is None:
                break
            found = await self._store.get(user.id, found.superseded_by)
        return found if found is not None and found.active and found.kind is Kind.EPISODE else None

    async def history_floor(self, chat_id: int) -> int:
        """Messages up to this id were compacted into an episode: the history starts after."""
        return await self._store.compactions.compacted_through(chat_id)

    async def correction_notes(
        self, user_id: int, message_ids: list[int], *, quote: bool
    ) -> dict[int, str]:
        """For each of `message_ids` in the conversation sent with a turn whose exchange saved
        a memory of the user's since corrected, the note it is said with (R184: the history
        still said "my IBAN is …" unmarked after the owner corrected it; a recalled message
        had the note, the same message in view had not)."""
        corrected = await self._store.corrections_of(user_id, message_ids)
        return {m: correction_note(found, quote=quote) for m, found in corrected.items()}

    async def search(
        self,
        user_id: int,
        query: str,
        k: int = 8,
        *,
        timezone: str | None = None,
        kinds: Sequence[Kind] | None = None,
        min_similarity: float | None = None,
        neighbours: bool = True,
        chat: int | None = None,
    ) -> Found:
        """The user's `k` best memories and messages for `query`. A period the query names (in
        `timezone`, else Steward's) ranks what falls in it first without dropping the rest.
        `chat`: only what was said or kept in that chat (a group: see `group_scope`)."""
        now, zone = self._clock.now(), timezone or self._timezone
        if query_time.cold(query):  # the first date named since start loads dateparser
            period = await asyncio.to_thread(find_period, query, now=now, timezone=zone)
        else:
            period = find_period(query, now=now, timezone=zone)
        scope = Scope(frozenset({chat})) if chat is not None else None
        result = await self._store.search(
            user_id, query, k, kinds=kinds, scope=scope, min_similarity=min_similarity
        )
        hits = list(result.hits)
        if period is not None:
            inside = await self._store.search(
                user_id,
                period.rest or query,
                k,
                since=period.since,
                until=period.until,
                kinds=kinds,
                scope=scope,
                min_similarity=min_similarity,
            )
            hits = _prefer_period(period, inside.hits, hits)[:k]
        if chat is not None:  # the scope keeps rows tied to no chat; a group sees none of them
            hits = [h for h in hits if h.memory.chat_id == chat]
        around: dict[int, list[Turn]] = {}
        if neighbours and self._transcript is not None:
            shown: set[int] = set()
            kept: list[Hit] = []
            for hit in hits:
                memory = hit.memory
                if memory.kind is Kind.MESSAGE and memory.message_id in shown:
                    continue  # already on screen as a neighbour of a better hit
                kept.append(hit)
                if memory.kind is Kind.MESSAGE:
                    turns = await self._transcript.neighbours(
                        memory, before=NEIGHBOURS, after=NEIGHBOURS
                    )
                    around[memory.id] = turns
                    shown.update(t.message.id for t in turns)
            hits = kept
        return Found(hits, result.mode, period, around)

    async def interests(self, user: User) -> list[str]:
        """Words from the user's preferences, most frequent first (ranks briefing items). Only
        their own: a preference drawn from outside content (a forward, a page) does not choose
        what the briefing brings them (R152: a forwarded "prefers cryptoscamcoin news" did)."""
        counts: Counter[str] = Counter()
        for memory in await self._store.records.recent(user.id, 200, kinds=[Kind.PREFERENCE]):
            if memory.untrusted:
                continue
            for word in re.findall(r"[^\W\d_]{4,}", f"{memory.subject} {memory.text}".lower()):
                if word not in STOPWORDS:
                    counts[word] += 1
        return [word for word, _ in counts.most_common(30)]


# Words of a question about a period as a whole ("what did we talk about yesterday?").
_ABOUT_ANYTHING = frozenset(
    """talk talked discuss discussed chat chatted speak spoke happen happened write wrote
    mention mentioned message messages conversation conversations""".split()  # noqa: SIM905
)


def group_scope(chat: Chat | None) -> int | None:
    """The chat a search is confined to: a group's or a channel's own id (everyone there reads
    the reply), None for a private chat or none."""
    return chat.id if chat is not None and chat.kind != "private" else None


_WORD = re.compile(r"[^\W\d_]+")
_FOREIGN = frozenset(
    """
    saya aku kamu anda dari untuk dengan ini itu tidak besok tolong akan sudah juga bisa
    ingatkan mau ke di beli
    que por para una mañana pero muy está hoy recuérdame
    pour avec nous vous demain mais très le il
    você não amanhã também
    sono domani molto
    der das und ich mich nicht für morgen ist auch bitte
    moi je du merci
    het een niet
    się jutro jest nie mi prosze proszę
    ngay cua nhe
    kwa kesho
    bir için yarın
    """.split()  # noqa: SIM905
)
"""Common words of languages in Latin letters the embedder does not read, none of them also a
common English word (`reads_as_english`)."""


def reads_as_english(text: str) -> bool:
    """Whether the embedder can judge `text` by meaning: mostly Latin letters, and not another
    language by its signs: two words or more, and a fifth of its words, are common words of one
    (Indonesian "saya", Spanish "para", Polish "jutro"…) or, not capitalised as a name is
    (not the first word), carry letters beyond Latin-1 (Polish "ł", Vietnamese "ợ": Latin-1's
    accents are English loanwords' too, "crème brûlée"); and such words outnumber English stop
    words.
    Emoji, punctuation, lists and URLs decide nothing
    (R216: by English stop words alone, 25 of 71 English messages, lists and notes, lost recall
    by meaning). Vietnamese, Polish and Indonesian are Latin letters the embedder does not read
    (R214: 0.52-0.62 between unrelated sentences, above the bar)."""
    if mostly_unlatin(text):
        return False
    words = _WORD.findall(text)
    foreign = _foreign_signs(words)
    english = sum(word.lower() in STOPWORDS for word in words)
    return not (foreign >= 2 and foreign * 5 >= len(words) and foreign > english)


def _foreign_signs(words: list[str]) -> int:
    """How many of `words` are signs of a language other than English (`reads_as_english`)."""
    return sum(
        word.lower() in _FOREIGN or (max(word) > "\u00ff" and not (i and word[0].isupper()))
        for i, word in enumerate(words)
    )  # a capitalised word with such letters, not the first, is a name ("Łukasz"), not a sign


def _readable(hit: Hit) -> bool:
    """Whether a memory hit is relevant for more than a cosine the embedder cannot give (R211):
    found by its words, or close in meaning in a script the embedder reads."""
    if hit.keyword_rank is not None or hit.similarity is None:
        return True
    return hit.similarity >= UNREAD_MIN_SIMILARITY or not mostly_unlatin(hit.memory.text)


def _message_bar(memory: Memory, query_clear: bool) -> float:
    """How close in meaning a past message must be to be recalled: nearly a restatement unless
    the embedder can judge it. The person's own words: when they read as English. Another
    person's or outside words (labelled so): only when both they and the new message are
    clearly English (`query_clear`), the way a guest's words reach the owner's turns (R217);
    R219: asking that of the owner's own "Parking spot B12" lost it to "Where did I park?"."""
    if memory.label.tainted:
        readable = query_clear and _clearly_english(memory.text)
    else:
        readable = reads_as_english(memory.text)
    return MESSAGE_MIN_SIMILARITY if readable else UNREAD_MIN_SIMILARITY


def _clearly_english(text: str) -> bool:
    """Whether a text is English by a sign of English, not by the lack of another language's:
    an English stop word or more, and no more signs of another language. The bar for past
    messages, the way another person's words reach the owner's turns (R217: short Indonesian,
    Polish or Vietnamese messages pass `reads_as_english`, a few words with no sign either way,
    and a guest's group message in such a language was recalled into the owner's turn and
    tainted it). Memories are the person's own, and keep the looser `reads_as_english`."""
    if mostly_unlatin(text):
        return False
    words = _WORD.findall(text)
    english = sum(word.lower() in STOPWORDS for word in words)
    return english >= 1 and _foreign_signs(words) <= english


async def _nothing() -> Found:
    return Found([], "keyword")


PERIOD_KEPT = 2
"""In-period hits put first when none passed the bar (PERIOD_MIN_SIMILARITY, a shared word)."""


def _prefer_period(
    period: QueryTime, inside: Sequence[Hit], everywhere: Sequence[Hit]
) -> list[Hit]:
    """Both lists merged; the hits the in-period search found relevant (by their words without
    the date, or close in meaning) come first, the others after them. A query
    that is little more than its period ("what did we talk about yesterday?") finds all of it
    relevant."""
    only_when = all(term in _ABOUT_ANYTHING for term in query_terms(period.rest))
    relevant = {
        hit.memory.id
        for hit in inside
        if only_when
        or hit.keyword_rank is not None
        or (hit.similarity is not None and hit.similarity >= PERIOD_MIN_SIMILARITY)
    }
    if not relevant:
        # none close enough: the period's best still come first, as its question asks (R120:
        # "in January about the automobile" showed twelve March car messages, and nothing of
        # the January Volvo, which came closest within the month)
        ranked = sorted(inside, key=lambda h: -h.score)[:PERIOD_KEPT]
        relevant = {hit.memory.id for hit in ranked}
    best: dict[int, Hit] = {}
    for hit in [*inside, *everywhere]:
        if hit.memory.id not in best or hit.score > best[hit.memory.id].score:
            best[hit.memory.id] = hit
    return sorted(
        best.values(), key=lambda h: (h.memory.id not in relevant, -h.score, -h.memory.id)
    )


# -- labels (agent/memory_view.py presents what is found) ----------------------------------


def hit_label(memory: Memory) -> Label:
    """The label a memory or kept message brings into whatever shows it."""
    if not memory.untrusted:
        return TRUSTED
    kind = "message" if memory.kind is Kind.MESSAGE else "memory"
    return Label.untrusted(f"{kind}:#{memory.id}").join(memory.label)


def message_label(message: StoredMessage) -> Label:
    return message.label if message.label.tainted else TRUSTED


def _with_corrections(
    message: Memory, corrections: list[tuple[int, Memory | None]], *, quote: bool
) -> Memory:
    """A recalled message whose exchange saved a memory since corrected, said first so a cut
    never drops it: what was kept from it then no longer holds."""
    if not corrections:
        return message
    return replace(message, text=f"{correction_note(corrections, quote=quote)} {message.text}")


def correction_note(corrections: list[tuple[int, Memory | None]], *, quote: bool = True) -> str:
    """What a message whose exchange saved memories since corrected is said with. The memory
    in force is quoted only when it is the person's own word: an outside one is named by its
    number, never put into their line (R102); in a group (`quote` False), none is: the
    correction may have been made in private."""
    notes = []
    for old, now in corrections:
        if now is None:
            notes.append(f"memory #{old} taken from this exchange was since replaced")
        elif now.untrusted or not quote:
            notes.append(
                f"memory #{old} taken from this exchange was since replaced by #{now.id}"
                + (", from outside content (memory_search shows it)" if now.untrusted else "")
            )
        else:
            shown = now.text if len(now.text) <= 200 else now.text[:199] + "…"
            notes.append(
                f"memory #{old} taken from this exchange was since corrected to #{now.id}: {shown}"
            )
    return f"[{'; '.join(notes)}]"
