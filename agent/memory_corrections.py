"""The owner corrects what Steward believes: a memory replaced by their own words.

Shared by `/memory correct` in chat and the console's Correct form. A correction supersedes the
old memory (kept, no longer recalled) with the text given, as something the owner said. Unless
the memory came from outside content and the text carries its words over: pressing "save" on a
page's order with one word fixed does not make it the owner's, so such a correction keeps the
old memory's outside label (and importance).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memory.labels import Label
from memory.longterm import Kind, Memory, NewMemory, Source, Trust
from memory.people import User

if TYPE_CHECKING:
    from agent.memory_service import MemoryService

__all__ = ["Corrected", "correct_memory", "correction_said", "repeats"]


@dataclass(frozen=True)
class Corrected:
    old_id: int
    new_id: int | None = None
    """The memory that replaces it; None when nothing was saved (see the flags)."""
    replaced_already_by: int | None = None
    """The memory was replaced before (a stale page) by one that still exists: correct that
    one instead."""
    known_as: int | None = None
    """The text is already this other memory; the old one is unchanged."""
    kept_outside: bool = False
    """The text repeats outside content's words: saved, but still marked as outside content."""
    message_kept: bool = False
    """The old one is a message (what was said): the correction is a note beside it."""
    summaries: tuple[int, ...] = ()
    """The old one was drawn from these summaries of earlier conversation, which still say
    what they said (R142: the old belief reached later turns through them, unnamed)."""


async def correct_memory(
    service: MemoryService, user: User, memory_id: int, text: str, *, via: str
) -> Corrected | None:
    """None when the user has no such memory; ValueError for text no memory may hold. Another
    person's correction is their word, as their /remember is: never the owner's, trusted.
    Upkeep still running is waited for first, as a forget does (it could save the old words
    after the correction)."""
    await service.upkeep_settled()
    old = await service.store.get(user.id, memory_id)
    if old is None:
        return None
    if await _replacement(service, old) is not None:
        return Corrected(old.id, replaced_already_by=old.superseded_by)
    # replaced by a memory since forgotten: corrected again, it is pointed at the new one
    orphaned = old.kind is not Kind.MESSAGE and (
        old.superseded_at is not None or old.superseded_by is not None
    )
    kept = old.untrusted and repeats(old.text, text)
    if kept:
        source, trust, label = (
            old.source,
            Trust.UNTRUSTED,
            old.label.join(Label.untrusted(old.source.value)),
        )
    elif user.is_owner:
        source, trust, label = Source.OWNER_SAID, Trust.TRUSTED, Label()
    else:
        source, trust, label = (
            Source.USER_SAID,
            Trust.UNTRUSTED,
            Label.untrusted(f"person:#{user.id}"),
        )
    saved = await service.remember(
        NewMemory(
            user_id=user.id,
            text=text,
            # a message corrected is a note of what is true: a message row is what was said
            # (it would be shown as something said, and listed nowhere)
            kind=Kind.NOTE if old.kind is Kind.MESSAGE else old.kind,
            subject=old.subject,
            source=source,
            trust=trust,
            importance=old.importance if kept else max(old.importance, 0.6),
            source_ref=via,
            replaces=() if old.kind is Kind.MESSAGE or orphaned else (old.id,),
            replaces_only=True,  # R142: not a near-duplicate the owner did not name
            chat_id=old.chat_id,  # a group's memory stays that group's, a summary its chat's
            label=label,
        )
    )
    summaries = await _summaries_of(service, old)
    if orphaned and not saved.duplicate:  # retired already: it now points at this one
        await service.store.records.retire(
            user.id, old.id, saved.memory.id, saved.memory.created_at
        )
        return Corrected(old.id, new_id=saved.memory.id, kept_outside=kept, summaries=summaries)
    if old.kind is Kind.MESSAGE:
        if saved.duplicate:  # the text is a memory already: nothing was saved
            return Corrected(old.id, known_as=saved.memory.id)
        return Corrected(old.id, new_id=saved.memory.id, kept_outside=kept, message_kept=True)
    if old.id not in [m.id for m in saved.superseded]:
        return Corrected(old.id, known_as=saved.memory.id)
    return Corrected(old.id, new_id=saved.memory.id, kept_outside=kept, summaries=summaries)


async def _summaries_of(service: MemoryService, old: Memory) -> tuple[int, ...]:
    """The summaries in force that a fact drawn by compaction came with (as a forget names)."""
    if old.kind in (Kind.MESSAGE, Kind.EPISODE) or old.turn_id is None:
        return ()
    if not old.source_ref.startswith("messages:"):
        return ()
    episodes = await service.store.made_in_turn(old.user_id, old.turn_id, Kind.EPISODE)
    return tuple(e.id for e in episodes if e.active)


async def _replacement(service: MemoryService, old: Memory) -> Memory | None:
    """What replaced `old`, if it still exists: one since forgotten leaves it to correct again
    (it said "correct that one", and the console sent the owner to a page that was gone)."""
    if old.superseded_by is None:
        return None
    return await service.store.get(old.user_id, old.superseded_by)


def repeats(outside: str, text: str) -> bool:
    """Whether `text` carries over words of `outside`: a run of 24 characters or more, or
    most of it (a short fact with a word changed). Case and spacing do not count."""
    a, b = " ".join(outside.casefold().split()), " ".join(text.casefold().split())
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    longest = matcher.find_longest_match(0, len(a), 0, len(b)).size
    return longest >= min(24, len(b)) or matcher.ratio() >= 0.6


def correction_said(done: Corrected) -> str:
    """What the owner is told of a saved correction."""
    note = (
        " It repeats the outside content's words, so it stays marked as outside content; "
        "write it in your own words to make it yours."
        if done.kept_outside
        else ""
    )
    if done.message_kept:
        return (
            f"Saved #{done.new_id} as a note; message #{done.old_id} stays as what was said "
            f"(/memory forget {done.old_id} removes it).{note}"
        )
    for summary in done.summaries:
        note += (
            f" Summary #{summary}, of the conversation it was drawn from, still says what it"
            f" said: correct or forget #{summary} too."
        )
    return f"Saved #{done.new_id}; it replaces #{done.old_id}.{note}"
