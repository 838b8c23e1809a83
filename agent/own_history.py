"""Whose a private chat's conversation is: the part of it one person may see.

Shared by the history the model is shown on a turn (`agent/context.py`) and by compaction
(`agent/memory_upkeep.py`), so what is summarised into a person's memory is exactly what their
turns could read (R206: compaction summarised the owner's words into the next holder's memory).
"""

from __future__ import annotations

from memory.messages import StoredMessage

__all__ = ["since_someone_else"]


def since_someone_else(recent: list[StoredMessage], user_id: int) -> list[StoredMessage]:
    """A private chat's conversation is its person's: after another person's message there (an
    account unlinked and let back in, whose next holder is someone else), what came before it,
    and Steward's answers to it, are not this person's to see (R130, R132: the next holder's
    first turn had the owner's PIN in view). Their own first message starts it again."""
    start = 0
    for i, message in enumerate(recent):
        if message.direction == "in" and message.user_id not in (None, user_id):
            start = len(recent)  # until this person's own next message
        elif message.direction == "in" and start == len(recent):
            start = i
    return recent[start:] if start else recent
