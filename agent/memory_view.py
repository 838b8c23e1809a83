"""How what memory finds is shown: to a person (`/memory search`), to the model
(`memory_search`) and in a turn's context (past messages recalled).

Memories and messages are told apart ("Memories" / "Messages"); each says when (in the owner's
timezone), whose words and its trust label; a message comes with the turns around it, and one
whose exchange saved a memory since corrected says so first, as recall and the history do
(R249: a search after `/memory correct` showed the old words unmarked).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.cards import describe_sources
from agent.fence import Fencer
from agent.recall import Found, correction_note, hit_label
from memory.clock import parse_iso
from memory.labels import TRUSTED, Label
from memory.longterm import Kind, LongTermMemory, Memory, Source
from memory.people import User
from memory.tokens import estimate_tokens

__all__ = [
    "SHOWN_FOUND",
    "SHOWN_RECALLED",
    "describe_deeper",
    "describe_found",
    "literal_words",
    "recalled_messages",
    "shown_cut",
    "source_words",
]

SHOWN_FOUND = 400
"""Characters of a message a search's answer shows (its turns, a long message's opening)."""
SHOWN_RECALLED = 600
"""Characters of a past message recalled into a turn's context."""


def shown_cut(text: str, limit: int) -> str:
    """`text` as it is shown within `limit` characters: whole, or cut with "…". Forgetting
    looks for these forms in what it takes the words out of (agent/forgetting.py)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _trust(label: Label) -> str:
    return "trusted" if label.trusted else f"untrusted: {describe_sources(label.sources)}"


def _when(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{local:%a %d %b %Y %H:%M}"


_SOURCE_WORDS = {
    Source.OWNER_SAID: "you said it",
    Source.USER_SAID: "the user said it",
    Source.MODEL_INFERRED: "inferred by the model",
    Source.STEWARD_SAID: "Steward said it",
    Source.WEB: "from a web page",
    Source.FEED: "from a feed",
    Source.TOOL: "from a tool's output",
    Source.MAIL: "from an e-mail",
}


def source_words(source: Source) -> str:
    """Where a memory came from, in words (`/memory show`, `/memory search`, `memory_search`);
    a source without words of its own yet is named by its value, never an error."""
    return _SOURCE_WORDS.get(source) or source.value.replace("_", " ")


async def describe_found(
    found: Found,
    *,
    store: LongTermMemory,
    timezone: str,
    viewer: User,
    chat_id: int | None = None,
    quote: bool = True,
) -> list[str]:
    """The lines a person or the model reads: memories first, then messages, each saying what
    it is, when, whose words, and its trust label; a message with its neighbouring turns, each
    with the note of what was corrected since (`quote` False in a group: the memory in force
    is named, not quoted, as recall does)."""
    zone = ZoneInfo(timezone)
    memories = [h.memory for h in found.hits if h.memory.kind is not Kind.MESSAGE]
    messages = [h.memory for h in found.hits if h.memory.kind is Kind.MESSAGE]
    shown = {m.message_id for m in messages if m.message_id is not None}
    shown |= {t.message.id for m in messages for t in found.around.get(m.id) or []}
    corrected = await store.corrections_of(viewer.id, sorted(shown))
    notes = {i: correction_note(c, quote=quote) + " " for i, c in corrected.items()}
    lines: list[str] = []
    if found.period is not None:
        lines.append(
            f"Looking first at {found.period.phrase!r}: {found.period.describe(timezone)} "
            f"({zone.key})."
        )
    if memories:
        lines.append("Memories (what I keep about you):")
        for memory in memories:
            how = source_words(memory.source)
            lines.append(
                f"- memory #{memory.id} ({memory.kind.value}, {how}; {_trust(hit_label(memory))}), "
                f"{memory.created_at.astimezone(zone):%Y-%m-%d}: {memory.text}"
            )
    if messages:
        lines.append("Messages (what was said, with the turns around it):")
        for memory in messages:
            who = _speaker(memory, viewer)
            where = "in this chat" if chat_id is not None and memory.chat_id == chat_id else ""
            head = (
                f"- message #{memory.id}: {who} wrote on {_when(memory.created_at, zone)} "
                f"({zone.key}){' ' + where if where else ''}; {_trust(hit_label(memory))}"
            )
            lines.append(head)
            turns = found.around.get(memory.id) or []
            for turn in turns:
                said = turn.message
                mark = ">" if said.id == memory.message_id else " "
                speaker = turn.speaker
                if said.direction == "in" and said.user_id == viewer.id:
                    speaker = "you"
                at = parse_iso(said.created_at).astimezone(zone)
                same_day = at.date() == memory.created_at.astimezone(zone).date()
                stamp = f"{at:%H:%M}" if same_day else f"{at:%Y-%m-%d %H:%M}"
                text = shown_cut(said.text, SHOWN_FOUND)
                untrusted = "" if said.label.trusted else " [untrusted]"
                note = notes.get(said.id, "")
                lines.append(f"  {mark} {speaker} ({stamp}){untrusted}: {note}{text}")
            if not turns:
                lines.append(f"  > {notes.get(memory.message_id or 0, '')}{memory.text}")
    return lines


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
"""SQLite's `lower`: ASCII letters only (`str.lower` shifts a position: "İ" becomes two)."""


def literal_words(query: str) -> bool:
    """Whether to look for `query` as typed in the rest of long messages: 4 characters or more
    ("the" would be in every one), 1,000 at most."""
    return 4 <= len(query.strip()) <= 1000


def describe_deeper(
    found: Sequence[tuple[Memory, str]], words: str, *, viewer: User, timezone: str
) -> list[str]:
    """Messages whose words lie past what search reads of them (`long_messages_saying`): the
    number `/memory forget` takes, where in the message the words are, and its opening as a
    search shows a long message (the form forgetting takes out of earlier answers too)."""
    if not found:
        return []
    zone = ZoneInfo(timezone)
    lines = ["Found further into long messages (search reads a message's first 4,000 characters):"]
    for memory, whole in found:
        at = whole.translate(_ASCII_LOWER).find(words.translate(_ASCII_LOWER))  # as SQLite
        lines.append(
            f"- message #{memory.id}: {_speaker(memory, viewer)} wrote on "
            f"{_when(memory.created_at, zone)} ({zone.key}); {_trust(hit_label(memory))}; "
            f"the words are at character {max(at, 0) + 1:,} of {len(whole):,}"
        )
        lines.append(f"  > {shown_cut(whole, SHOWN_FOUND)}")
    return lines


def _speaker(memory: Memory, viewer: User) -> str:
    if memory.source in (Source.STEWARD_SAID, Source.MODEL_INFERRED):
        return "Steward"
    if memory.source is Source.OWNER_SAID and viewer.is_owner:
        return "you"
    return memory.subject or "someone"


def recalled_messages(
    messages: Sequence[Memory], fencer: Fencer, budget: int, timezone: str = "UTC"
) -> tuple[str | None, Label, int]:
    """The context block of past messages recalled for a turn, within `budget` tokens: the
    block (None when none fit), the join of the labels of what it shows, the tokens spent.
    An untrusted message is fenced as data; dates are in `timezone`."""
    zone = ZoneInfo(timezone)
    lines: list[str] = []
    label = TRUSTED
    spent = 0
    for memory in messages:
        who = memory.subject or "someone"
        text = shown_cut(memory.text, SHOWN_RECALLED)
        when = f"{memory.created_at.astimezone(zone):%a %Y-%m-%d %H:%M} {zone.key}"
        line = f"- #{memory.id} ({when}) {who}: {text}"
        if memory.untrusted:  # whose words, as the history's fences say (R184)
            source = f"message #{memory.id} ({describe_sources(hit_label(memory).sources)})"
            line = fencer.item("message", memory.id, line, source)
        cost = estimate_tokens(line)  # R211: a Chinese line had cost a quarter of itself
        if spent + cost > budget:
            continue
        spent += cost
        lines.append(line)
        label = label.join(hit_label(memory))
    if not lines:
        return None, TRUSTED, 0
    head = "Earlier messages that may bear on this (memory_search shows the turns around them)"
    return head + ":\n" + "\n".join(lines), label, spent
