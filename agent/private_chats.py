"""Where a person can be reached in private: which platform chat ids are private chats, and
the private chat to use for a user on the channels that run.

Apart from `agent.delivery` (which re-exports both) because the scheduler's jobs need it too,
and delivery imports the scheduler's recurrence wording: a job moved off a channel that is not
running (R262) would otherwise have closed an import cycle.
"""

from __future__ import annotations

import re

from agent.types import Address
from memory.people import Chat
from memory.stores import Stores

__all__ = ["is_private_chat", "private_address"]

_PRIVATE = {"telegram": re.compile(r"^\d+$"), "slack": re.compile(r"^[DUW]")}


def is_private_chat(channel: str, chat_id: str) -> bool:
    """Whether a platform chat id is a private chat: a Telegram user's own id, a Slack DM (D…)
    or a Slack user (U…, W…), for whom Slack opens the DM."""
    form = _PRIVATE.get(channel)
    return form is not None and form.match(chat_id) is not None


async def private_address(
    stores: Stores, user_id: int, channels: list[str], prefer: str | None = None
) -> tuple[Address, Chat] | None:
    """Where to reach a user privately on one of `channels`: the private chat they wrote in most
    recently (on `prefer` if they have one there), else a direct message to their identity."""
    chats = [c for c in await stores.people.private_chats(user_id) if c.channel in channels]
    chats.sort(key=lambda c: c.channel != prefer)  # stable: most recent first within each
    if chats:
        chat = chats[0]
        return Address(chat.channel, chat.platform_chat_id), chat
    identities = [i for i in await stores.people.identities_of(user_id) if i.channel in channels]
    identities.sort(key=lambda i: i.channel != prefer)
    for identity in identities:
        if is_private_chat(identity.channel, identity.platform_user_id):
            # a Telegram user's private chat has their id; Slack opens the DM for a user id
            chat = await stores.people.chat(identity.channel, identity.platform_user_id)
            return Address(identity.channel, identity.platform_user_id), chat
    return None
