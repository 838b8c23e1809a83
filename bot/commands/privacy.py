"""What a command answers in a group: everyone there reads it.

Lists of a person's own things (memories, goals, reminders, feeds, mail rules) answer in their
private chat only; in a group they say so. The rule for turns is `agent.recall.group_scope`.
"""

from __future__ import annotations

from agent.recall import group_scope
from memory.people import Chat

__all__ = ["IN_PRIVATE", "in_group"]

IN_PRIVATE = "Everyone here would read that: ask me in our private chat."


def in_group(chat: Chat | None) -> bool:
    """A group or a channel (or a chat of unknown kind): not one person's private chat."""
    return group_scope(chat) is not None
