"""send_message: post to a chat on any configured channel (Telegram, Slack).

Its risk class is `external_effect`: it puts words in front of people, so the policy asks the
owner first (the default policy's `to_owner` rule lets a post to the owner's own private chat
go unasked in a clean turn). The message goes through the courier like every reply: stored,
sent, marked, and kept for redelivery when the channel cannot take it yet.
"""

from __future__ import annotations

import re
from typing import Any

from agent.cards import plain_name
from agent.delivery import Courier, is_private_chat, private_address
from agent.outbox import Switchboard
from agent.tools.registry import Risk, ToolContext, ToolError, tool
from agent.types import Address

__all__ = ["MESSAGING_TOOLS", "send_message"]

_CHAT_FORMS = {
    "telegram": re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$"),
    "slack": re.compile(r"^[CDGUW][A-Z0-9]{2,20}$"),
}


async def _preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The whole message: the card shows it escaped and says how much it could not fit."""
    owner = ctx.user.is_owner
    mine = "your own private chat" if owner else f"{ctx.user.display_name}'s own private chat"
    where = arguments.get("chat") or plain_name(mine, 96)
    return f"Post to {arguments.get('channel')} ({where}):\n{arguments.get('text', '')}"


@tool(risk=Risk.EXTERNAL_EFFECT, preview=_preview)
async def send_message(ctx: ToolContext, channel: str, text: str, chat: str | None = None) -> str:
    """Post a message to a chat on Telegram or Slack.

    For example a briefing to Telegram or a status note to a Slack channel; replies to the
    current chat need no tool.

    Args:
        channel: "telegram" or "slack".
        text: The message, in Markdown.
        chat: A Telegram chat id, or a Slack channel (C…) or user (U…) id; omit it for the
            user's own private chat on that channel.
    """
    outbox = ctx.deps.outbox
    if outbox is None:
        raise ToolError("no channels are connected")
    channel = channel.strip().lower()
    running = outbox.channels if isinstance(outbox, Switchboard) else [channel]
    if channel not in running or channel not in _CHAT_FORMS:
        names = ", ".join(c for c in running if c in _CHAT_FORMS) or "none"
        raise ToolError(f"{channel!r} is not a configured channel (configured: {names})")
    if not text.strip():
        raise ToolError("the message is empty")
    if chat:
        chat = chat.strip()
        if not _CHAT_FORMS[channel].match(chat):
            raise ToolError(f"{chat!r} is not a {channel} chat id")
        kind = "private" if is_private_chat(channel, chat) else "group"
        row = await ctx.stores.people.chat(channel, chat, kind)
        address = Address(channel, chat)
    else:
        found = await private_address(ctx.stores, ctx.user.id, [channel], prefer=channel)
        if found is None:
            raise ToolError(
                f"I don't know the user's {channel} account; link it with /link or give a chat id"
            )
        address, row = found
    courier = Courier(ctx.stores, outbox)
    if await courier.send(address, row.id, text, turn_id=ctx.turn_id, label=ctx.label):
        return f"Sent to {address}."
    return f"{channel} could not take it right now; it is queued and will be sent when it can."


MESSAGING_TOOLS = (send_message,)
