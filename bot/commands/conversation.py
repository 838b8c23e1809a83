"""/new: a new conversation in this chat — what was said before goes out of view.

Why it exists (R188): a turn's reply carries the label of everything the turn saw, so once a
page was read in a chat, each reply is tainted by the one before and every write there keeps
asking — for good, not until the page scrolls out. That is what keeps a page from getting an
order echoed from reply to reply; the way out is the owner's own: `/new` moves the chat's
history window past every message so far (a compaction mark with no episode). Nothing is
deleted: the messages stay searchable in memory, and one recalled later comes with its label.
"""

from __future__ import annotations

from agent.memory_service import MemoryService
from agent.types import Address
from bot.commands.privacy import in_group
from bot.commands.registry import CommandGroup
from memory.people import Chat, Identity, User
from memory.stores import Stores

__all__ = ["group"]

group = CommandGroup()

new = group.command(
    "new",
    summary="start a new conversation here: what was said before goes out of view",
    usage="/new",
    example="/new",
)


@new.sub("")
async def new_conversation(
    user: User,
    chat: Chat,
    address: Address,
    sender: Identity,
    stores: Stores,
    memory: MemoryService,
) -> str:
    if in_group(chat) and not user.is_owner:  # the group's view is everyone's
        return "In a group only the owner can start a new conversation."
    waiting = [a.id for a in await stores.approvals.pending() if a.chat_id == chat.id]
    if waiting:  # R191: decided after /new, a paused turn wrote its tainted reply into it
        listed = ", ".join(f"#{approval_id}" for approval_id in waiting[:5])
        return (
            f"Decide what waits here first ({listed}: /approve or /deny), then /new: a turn "
            "paused on it would carry the old conversation into the new one."
        )
    compactions = memory.store.compactions
    through = await compactions.compacted_through(chat.id)
    if not await stores.messages.history_tokens_after(chat.id, through):
        return "This is a new conversation already."
    last = await stores.messages.last_id()
    await compactions.record(
        chat_id=chat.id,
        first_message_id=through + 1,
        last_message_id=last,
        episode_id=None,
        facts_saved=0,
        turn_id=None,
    )
    await stores.audit.record(
        "conversation.new", actor=str(sender), subject=f"chat:{chat.id}", through=last
    )
    whole = " (every thread of this channel too)" if address.thread_id and in_group(chat) else ""
    return (
        f"New conversation{whole}: what we said before is out of view, so a page read in it no "
        "longer makes actions here ask. It is still in memory (/memory search finds it, "
        "labelled)."
    )
