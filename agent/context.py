"""What the model sees on a turn, assembled from parts, and the label of all of it.

Layout, chosen for prompt caching: the stable part (identity and owner profile) is the system
prompt with a cache breakpoint, so tools + system are cached; the recent conversation follows, with
a breakpoint on its last message so the next turn reads it from cache; what changes every turn
(time, goals, memories) rides in the final user message, where it does not spoil the prefix.

Trust: every part comes with its label as data (`Section.label`, `StoredMessage.label`), and the
prompt's label is their join. A message, memory or goal from outside content is fenced (see
`agent/fence.py`) and taints the turn for as long as it is in the context, including Steward's
own replies written after reading such content.

(Some 480 lines: the prompt's parts, and the history with its order and labels, are built in
one place so that every part's label is joined as it is added.)
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from agent.cards import describe_sources, plain_name
from agent.delivery import is_private_chat
from agent.fence import FENCE_RULE, Fencer
from agent.media.intake import content_blocks
from agent.memory_view import recalled_messages
from agent.own_history import since_someone_else
from agent.recall import group_scope
from agent.replies import answered_section
from agent.types import TurnRequest
from memory.clock import Clock, parse_iso
from memory.labels import TRUSTED, Label
from memory.messages import WHOLE_CHAT, StoredMessage, Thread
from memory.stores import Stores
from memory.tokens import estimate_tokens  # R211: one estimate, CJK a token a character

if TYPE_CHECKING:
    from agent.recall import Recall
    from memory.longterm import Memory

__all__ = [
    "ContextBuilder",
    "ContextSource",
    "Corrections",
    "GoalsSource",
    "MemoryRecall",
    "MemorySource",
    "Prompt",
    "Section",
    "estimate_tokens",
    "load_fencer",
]

CACHE = {"type": "ephemeral"}

IDENTITY = (
    """\
You are Steward, a personal agent that lives in its owner's chats (Telegram, Slack, a console).
You remember across conversations, keep track of goals, and act through the tools you are given.
Goals are picked up without being told: when the user says they mean to achieve something over
days or more ("I want to run a half marathon in spring"), add it with goal_add and say so; when
they mention progress on an active goal, log it with goal_progress.
Answer briefly, as in a chat; use plain Markdown sparingly. When you use a tool, say what you did.
"""
    + FENCE_RULE
)

_FENCE_SECRET_KEY = "fence_secret"


async def load_fencer(stores: Stores) -> Fencer:
    """The fencer whose stable ids come from this database's secret (made on first use)."""
    secret = await stores.state.get(_FENCE_SECRET_KEY)
    if secret is None:
        secret = secrets.token_hex(32)
        await stores.state.set(_FENCE_SECRET_KEY, secret)
    return Fencer(bytes.fromhex(secret))


@dataclass(frozen=True)
class Prompt:
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    label: Label = TRUSTED
    """The join of the labels of everything in the context (history, recalled memories and
    episodes, goals): a turn that carries anything from outside is tainted from its start."""


@dataclass(frozen=True)
class Section:
    """A titled part of the per-turn context, with the label of what it shows."""

    text: str
    label: Label = TRUSTED


class ContextSource(Protocol):
    """One part of the per-turn context (goals, memories, …): a section or None."""

    async def render(self, request: TurnRequest, fencer: Fencer) -> Section | None: ...


class GoalsSource:
    """The user's active goals with next step, due date and last progress, on every turn."""

    def __init__(self, stores: Stores, default_timezone: str = "UTC") -> None:
        self._stores = stores
        self._default_timezone = default_timezone

    async def render(self, request: TurnRequest, fencer: Fencer) -> Section | None:
        if group_scope(request.chat) is not None:
            # A group reads the reply: the user's goals are theirs (agent.recall). A check-in
            # carries its own goal; a briefing posted to a channel holds its feed items only.
            return None
        goals = await self._stores.goals.active(request.user.id)
        if not goals:
            return None
        more = len(goals) - GOALS_SHOWN
        if more > 0:  # 150 goals were ~7,800 tokens a turn: the ones due soonest, then the ones
            ranked = sorted(goals, key=lambda g: g.updated_at, reverse=True)  # touched last
            ranked.sort(key=lambda g: (g.due_at is None, g.due_at or ""))
            shown = {g.id for g in ranked[:GOALS_SHOWN]}
            goals = [g for g in goals if g.id in shown]  # in their usual order (prompt cache)
        label = TRUSTED
        zone = ZoneInfo(request.user.timezone or self._default_timezone)
        latest = await self._stores.goals.latest_notes(g.id for g in goals)
        lines = []
        for g in goals:
            line = f"- #{g.id} {_cut(g.title)}"
            if g.next_step:
                line += f" — next step: {_cut(g.next_step)}"
            if g.due_at:
                line += f" — due {parse_iso(g.due_at).astimezone(zone):%Y-%m-%d}"
            note = latest.get(g.id)
            if note is not None:
                text = _cut(note.note)
                line += f" — last progress {note.created_at.astimezone(zone):%Y-%m-%d}: {text}"
            if g.label.tainted:
                line = fencer.item("goal", g.id, line, f"goal:#{g.id}")
                label = label.join(Label.untrusted(f"goal:#{g.id}"), g.label)
            lines.append(line)
        if more > 0:
            lines.append(f"(and {more} more: goal_list shows them all)")
        text = (
            "Active goals (log progress with goal_progress, set next steps with "
            "goal_next_step):\n" + "\n".join(lines)
        )
        return Section(text, label)


GOALS_SHOWN = 20
"""Active goals shown on every turn; the rest are counted (goal_list lists them)."""


def _cut(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class MemoryRecall(Protocol):
    async def recall(self, request: TurnRequest) -> Recall: ...


class MemorySource:
    """Long-term memory for this turn, within a token budget: the summary of this chat's older,
    compacted messages, then the user's memories most relevant to the message (and the most
    important ones). Memories from outside content are fenced as untrusted data."""

    def __init__(self, memory: MemoryRecall, *, token_budget: int) -> None:
        self._memory = memory
        self._budget = token_budget

    async def render(self, request: TurnRequest, fencer: Fencer) -> Section | None:
        if self._budget <= 0:
            return None
        recall = await self._memory.recall(request)
        budget = self._budget
        parts: list[str] = []
        label = TRUSTED
        if recall.episode is not None:
            text = recall.episode.text
            limit = max(200, budget // 2 * 4)  # at most half the budget, in characters
            if len(text) > limit:
                text = text[: limit - 1] + "…"
            block = (
                "Earlier in this chat (older messages, summarised; memory_search finds more):\n"
                + _memory_text(fencer, recall.episode, text)
            )
            label = label.join(_memory_label(recall.episode))
            budget -= estimate_tokens(block)
            parts.append(block)
        lines: list[str] = []
        zone = ZoneInfo(recall.timezone)  # the user's day, as "Now:" is (R120)
        for memory in recall.memories:
            day = memory.created_at.astimezone(zone)
            line = _memory_text(fencer, memory, f"- #{memory.id} ({day:%Y-%m-%d}) {memory.text}")
            cost = estimate_tokens(line)
            if cost > budget:
                continue
            budget -= cost
            lines.append(line)
            label = label.join(_memory_label(memory))
        if lines:
            head = "What you remember about them (correct one: memory_save with replaces=[id])"
            if recall.mode == "keyword":
                head += "; keyword recall only right now"
            parts.append(head + ":\n" + "\n".join(lines))
        # issue 13: past messages of the transcript that bear on this one, labels joined
        said, said_label, _ = recalled_messages(recall.messages, fencer, budget, recall.timezone)
        if said is not None:
            parts.append(said)
            label = label.join(said_label)
        return Section("\n\n".join(parts), label) if parts else None


def _memory_label(memory: Memory) -> Label:
    if not memory.untrusted:
        return TRUSTED
    return Label.untrusted(f"memory:#{memory.id}").join(memory.label)


def _memory_text(fencer: Fencer, memory: Memory, text: str) -> str:
    if not memory.untrusted:
        return text
    return fencer.item("memory", memory.id, text, f"memory:#{memory.id} {memory.source.value}")


class Corrections(Protocol):
    async def __call__(
        self, user_id: int, message_ids: list[int], *, quote: bool
    ) -> dict[int, str]: ...


class ContextBuilder:
    def __init__(
        self,
        stores: Stores,
        clock: Clock,
        *,
        default_timezone: str,
        history_tokens: int,
        sources: list[ContextSource],
        history_floor: Callable[[int], Awaitable[int]] | None = None,
        corrections: Corrections | None = None,
    ) -> None:
        """`history_floor(chat_id)`: the last message id already summarised into an episode
        (long-term memory's compaction); the history sent to the model starts after it.
        `corrections(user_id, message_ids, quote=…)`: the note each message in view is said
        with whose exchange saved a memory of the person's since corrected."""
        self._stores = stores
        self._clock = clock
        self._default_timezone = default_timezone
        self._history_tokens = history_tokens
        self._sources = sources
        self._history_floor = history_floor
        self._corrections = corrections
        self._fencer: Fencer | None = None

    async def build(self, request: TurnRequest) -> Prompt:
        fencer = await self._load_fencer()
        history, label = await self._history(request, fencer)
        if history:
            last = history[-1]["content"][-1]
            last["cache_control"] = CACHE
        situation, situation_label = await self._situation(request, fencer)
        trigger = request.text or "(a message without text)"
        if request.kind == "chat" and request.label.tainted:  # another person's, or forwarded
            source = describe_sources(request.label.sources)
            trigger = fencer.item("message", request.message_id or 0, trigger, source)
        # issue 17: the message replied to (in the context), the message's files, with labels
        answered, answered_label = answered_section(request.answered, fencer)
        if answered:
            situation = situation.removesuffix("\n</context>") + f"\n\n{answered}\n</context>"
        files, files_label = content_blocks(request.attachments)
        history.append(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": situation},
                    {"type": "text", "text": trigger},
                    *files,
                ],
            }
        )
        return Prompt(
            system=self.system(request),
            messages=_alternate(history),
            label=label.join(situation_label, answered_label, files_label),
        )

    async def _load_fencer(self) -> Fencer:
        if self._fencer is None:
            self._fencer = await load_fencer(self._stores)
        return self._fencer

    def system(self, request: TurnRequest) -> list[dict[str, Any]]:
        user = request.user
        if user.is_owner:
            profile = [f"You are talking with {user.display_name or 'your owner'}."]
            profile.append("They are your owner.")
        else:  # a name they chose on their platform: data, one plain line, never instructions
            name = plain_name(user.display_name) or "someone"
            profile = [f'You are talking with a person whose chosen name is "{name}".']
            profile.append("They are not your owner.")
        profile.append(f"Their timezone: {user.timezone or self._default_timezone}.")
        if user.profile:
            profile.append(f"About them: {user.profile}")
        text = IDENTITY + "\n\n" + " ".join(profile)
        return [{"type": "text", "text": text, "cache_control": CACHE}]

    async def _situation(self, request: TurnRequest, fencer: Fencer) -> tuple[str, Label]:
        zone = ZoneInfo(request.user.timezone or self._default_timezone)
        now = self._clock.now().astimezone(zone)
        parts = [f"Now: {now:%A %Y-%m-%d %H:%M} ({zone.key})."]
        if request.self_initiated:
            parts.append(
                f"This turn was started by Steward itself ({request.kind}), not by a message."
            )
        label = TRUSTED
        for source in self._sources:
            section = await source.render(request, fencer)
            if section is not None and section.text:
                parts.append(section.text)
                label = label.join(section.label)
        return "<context>\n" + "\n\n".join(parts) + "\n</context>", label

    async def _history(
        self, request: TurnRequest, fencer: Fencer
    ) -> tuple[list[dict[str, Any]], Label]:
        """The recent conversation within the token budget, and the join of its labels."""
        if request.chat is None or self._history_tokens <= 0:
            return [], TRUSTED
        recent = await self._stores.messages.recent(
            request.chat.id, before_id=request.message_id, limit=200, thread=_thread(request)
        )
        if self._history_floor is not None:
            floor = await self._history_floor(request.chat.id)
            recent = [message for message in recent if message.id > floor]
        if request.chat.kind == "private":
            recent = since_someone_else(recent, request.user.id)
        recent = await self._paired(recent)
        kept, left_out = _within(recent, self._history_tokens)
        notes: dict[int, str] = {}
        shown = [m.id for m in kept if m.id not in left_out]
        if self._corrections is not None and shown:
            private = request.chat.kind == "private"
            notes = await self._corrections(request.user.id, shown, quote=private)
        stamps = self._day_stamps(request, kept, left_out)
        picked: list[dict[str, Any]] = []
        label = TRUSTED
        for message in kept:
            role = "user" if message.direction == "in" else "assistant"
            if message.id in left_out:  # none of its words: nothing to fence or label
                picked.append(
                    {"role": role, "content": [{"type": "text", "text": _LEFT_OUT[role]}]}
                )
                continue
            text = message.text
            if message.label.tainted:
                label = label.join(message.label)
                what = "message" if role == "user" else "your reply"
                source = f"{what} #{message.id} ({describe_sources(message.label.sources)})"
                text = fencer.item("message", message.id, text, source)
            if message.id in notes:  # outside any fence: it is Steward's, not the message's
                text = f"{notes[message.id]} {text}"
            if message.id in stamps:  # outside any fence too
                text = f"{stamps[message.id]} {text}"
            picked.append({"role": role, "content": [{"type": "text", "text": text}]})
        picked.reverse()
        if picked and picked[0]["role"] != "user":
            # It starts with Steward's words: keep them in view (the next message may refer to
            # them) behind a note saying what they were, as the API wants a user message first.
            note = {"type": "text", "text": await self._lead_in(kept[-1])}
            picked.insert(0, {"role": "user", "content": [note]})
        return picked, label

    def _day_stamps(
        self, request: TurnRequest, kept: list[StoredMessage], left_out: set[int]
    ) -> dict[int, str]:
        """The day each earlier day's first message in view was written, by message id: a
        quiet chat's history spans weeks, and a "tomorrow" said on 1 March read as current
        beside "Now: 20 March" (R212). Only the person's messages, never Steward's own (a reply
        would learn to begin with a date), and none for today's."""
        zone = ZoneInfo(request.user.timezone or self._default_timezone)
        today = self._clock.now().astimezone(zone).date()
        stamps: dict[int, str] = {}
        days = set()
        for message in reversed(kept):  # oldest first
            if message.direction != "in" or message.id in left_out:
                continue
            day = parse_iso(message.created_at).astimezone(zone).date()
            if day != today and day not in days:
                days.add(day)
                stamps[message.id] = f"(written {day:%A %Y-%m-%d})"
        return stamps

    async def _lead_in(self, first: StoredMessage) -> str:
        """The note before a history that opens with Steward's words: a reply whose message fell
        out of view is said to answer one no longer shown, not to be written "on its own" (R206:
        16 of 40 group turns called an answer self-started); a briefing or reminder is that."""
        if first.turn_id is not None and await self._stores.turns.triggers([first.turn_id]):
            return "(Steward's reply to an earlier message, no longer shown.)"
        return "(Steward wrote the following on its own.)"

    async def _paired(self, recent: list[StoredMessage]) -> list[StoredMessage]:
        """Each answer right after the message it answers. Stored in the order they came, two
        messages sent quickly read as one user turn "first / second" and one answer "re: first
        / re: second" (R156). Only where two incoming messages are next to each other is the
        turns table asked which message each answer answered."""
        if not any(a.direction == b.direction == "in" for a, b in itertools.pairwise(recent)):
            return recent
        answers = {m.turn_id for m in recent if m.direction == "out" and m.turn_id is not None}
        triggers = await self._stores.turns.triggers(answers)
        incoming = {m.id for m in recent if m.direction == "in"}

        def place(message: StoredMessage) -> tuple[int, int]:
            trigger = triggers.get(message.turn_id or 0) if message.direction == "out" else None
            if trigger is not None and trigger in incoming and trigger < message.id:
                return trigger, message.id
            return message.id, 0

        return sorted(recent, key=place)


_LEFT_OUT = {
    "user": "(A long message was left out here: too long to show.)",
    "assistant": "(A long reply of yours was left out here: too long to show.)",
}


def _within(recent: list[StoredMessage], budget: int) -> tuple[list[StoredMessage], set[int]]:
    """The newest messages that fit `budget`, newest first, and the ids of those among them
    shown as a short note instead: one message longer than the whole budget could never be
    shown, so it is left out and older ones still come (R206: it hid itself and every older
    message, and a lease pasted after "my landlord is Mr Abernathy" hid the landlord)."""
    kept: list[StoredMessage] = []
    left_out: set[int] = set()
    whole = budget
    for message in reversed(recent):
        cost = estimate_tokens(message.text)
        too_long = cost > whole
        if too_long:
            role = "user" if message.direction == "in" else "assistant"
            cost = estimate_tokens(_LEFT_OUT[role])
        if cost > budget:
            break
        budget -= cost
        kept.append(message)
        if too_long:
            left_out.add(message.id)
    return kept, left_out


def _thread(request: TurnRequest) -> Thread:
    """The conversation a turn's history is: in a Slack channel (or group DM) each thread is
    one, and a message at the top starts its own (its history is what Steward said in it, if
    anything), so parallel threads do not read, or taint, one another; a turn with no thread
    there sees Steward's own posts at the top. A Slack direct chat is one conversation (Slack
    gives each message in it a thread); Telegram (forum topics too) and the console, the chat."""
    chat = request.chat  # told by its id, not its kind: a channel first stored as the
    # destination of a "/briefing to here" typed in it is of kind "private"
    if chat is None or chat.channel != "slack" or is_private_chat("slack", chat.platform_chat_id):
        return WHOLE_CHAT
    return request.address.thread_id if request.address is not None else None


def _alternate(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge neighbours with the same role: the API wants user and assistant to alternate."""
    merged: list[dict[str, Any]] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"].extend(message["content"])
        else:
            merged.append({"role": message["role"], "content": list(message["content"])})
    return merged
