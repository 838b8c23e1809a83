"""/web: a one-time login link to the web console (owner and approvers); /web logout ends every
session. The link is sent privately to whoever asked, valid for ten minutes and one use."""

from __future__ import annotations

from agent.config import Settings
from agent.delivery import Unrecorded
from bot.commands.registry import CommandGroup
from bot.web.auth import NOT_YOURS, OFF, STARTING, console_down, issue_link
from memory.people import Chat, Identity, User
from memory.stores import Stores
from memory.web_sessions import WebRole

__all__ = ["NOT_YOURS", "OFF", "group"]

group = CommandGroup()

PRIVATE = "Ask me for a console link in a private chat: a login link must not be seen by others."

web = group.command(
    "web",
    summary="a one-time link to the web console (owner, approvers); /web logout ends sessions",
    usage="/web | /web logout",
    example="/web",
    problem="Send /web for a login link, or /web logout to end every session.",
)


@web.sub("")
async def login_link(
    sender: Identity, user: User, chat: Chat, stores: Stores, settings: Settings
) -> str:
    if not settings.web:
        return OFF
    if chat.kind != "private":
        return PRIVATE
    if (down := await console_down(stores)) == STARTING:
        return "The web console is still starting: send /web again in a few seconds."
    if down is not None:
        return f"The web console is not running: {down}. Set STEWARD_HTTP_PORT, then restart."
    link = await issue_link(stores, settings, sender, user, via="chat")
    if link is None:
        return NOT_YOURS
    scope = "approvals only" if link.role is WebRole.APPROVER else "the whole console"
    head = f"Your web console link ({scope}), valid for {link.minutes} minutes and one use:\n"
    tail = (
        "\n\nDon't share it: whoever opens it and signs in first is signed in as you. "
        "/web logout ends every session."
    )
    # the log keeps a placeholder: only the token's hash is ever stored
    return Unrecorded(
        head + link.url + tail, head + "(a login link, not kept; send /web for a new one)" + tail
    )


@web.sub("logout")
async def logout(sender: Identity, user: User, stores: Stores, settings: Settings) -> str:
    if not user.is_owner and sender not in settings.approvers:
        return NOT_YOURS
    ended = await stores.web_sessions.end_all(None if user.is_owner else user.id)
    await stores.audit.record("web.logout_all", actor=str(sender), count=ended, via="chat")
    whose = "every" if user.is_owner else "each of your"
    return f"Ended {whose} web console session ({ended}). Unused links no longer work either."
