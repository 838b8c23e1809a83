"""/approve and /deny: the owner's answer to an approval request, typed or by a button press.

Approval ids and previews stay between the owner (and STEWARD_APPROVERS) and Steward: only they
get the list of what waits (`/approve`) and the whole escaped preview (`/approve show <id>`).
A button press carries the platform id of the message pressed; it decides only the approval
whose card that message is, in the chat the card was sent to, so callback data copied from one
card onto another runs nothing (and is audited).
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from agent.approvals import ApprovalService, arguments_preview
from agent.cards import escape_invisible, plain_text, render_preview
from agent.config import Settings
from agent.recall import group_scope
from agent.types import Address, Choice, Press
from bot.commands.handlers import DecideApproval, Handler
from bot.commands.registry import CommandGroup
from memory.approvals import Approval
from memory.people import Chat, Identity, User
from memory.stores import Stores

__all__ = ["NOT_YOURS", "WRONG_CARD", "group"]

group = CommandGroup()

NOT_YOURS = "Only the owner can see and decide approval requests."
WRONG_CARD = "That button does not belong to the request it names, so nothing ran."
_LIST_LINE = 80

approve = group.command(
    "approve",
    summary="approve a pending action (no id: list what is pending; show <id>: all of it)",
    usage="/approve [id] [always] | /approve show <id>",
    example="/approve k3f9",
    problem="Give one approval id and optionally `always`.",
)
deny = group.command(
    "deny",
    summary="deny a pending action",
    usage="/deny <id>",
    example="/deny k3f9",
    problem="Give one approval id.",
    missing="Say which request to deny.",
)


def _may_see(approvals: ApprovalService | None, sender: Identity, user: User) -> bool:
    return approvals is not None and approvals.may_decide(sender, user)


def _visible(user: User, chat: Chat, approval: Approval) -> bool:
    """The owner sees every request; another approver those of their own turns or this chat.
    In a group everyone reads the answer: there, only that chat's own requests."""
    if group_scope(chat) is not None:
        return chat.id == approval.chat_id
    return user.is_owner or user.id == approval.user_id or chat.id == approval.chat_id


async def _refuse(
    stores: Stores, sender: Identity, what: str, approvals: ApprovalService | None
) -> str:
    if approvals is not None:  # audited at each doubling of their count
        await approvals.refused("approval.list_refused", sender, what)
    else:
        await stores.audit.record("approval.list_refused", actor=str(sender), subject=what)
    return NOT_YOURS


@approve.sub("")
async def list_pending(
    sender: Identity,
    user: User,
    chat: Chat,
    stores: Stores,
    settings: Settings,
    approvals: ApprovalService | None = None,
) -> str:
    if not _may_see(approvals, sender, user):
        return await _refuse(stores, sender, "list", approvals)
    zone = ZoneInfo(user.timezone or settings.timezone)
    pending = [a for a in await stores.approvals.pending() if _visible(user, chat, a)]
    if not pending:
        return "Nothing is waiting for your approval."
    lines = []
    for a in pending:
        shown = (
            await approvals.preview_for(a, user, private=chat.kind == "private")
            if approvals
            else arguments_preview(a)
        )
        first = "".join(render_preview(shown)[0]).strip().split("\n", 1)[0]
        if len(first) > _LIST_LINE:
            first = first[: _LIST_LINE - 1] + "…"
        first = plain_text(first, _LIST_LINE)  # the action's words, shown as typed (review 62)
        expires = a.expires_at.astimezone(zone)
        lines.append(f"{a.id} — {a.tool}: {first} (expires {expires:%H:%M} {zone.key})")
    return (
        "Waiting for your approval:\n"
        + "\n".join(lines)
        + "\n\nReply /approve <id> or /deny <id>; /approve show <id> shows a request whole."
    )


@approve.sub("show <approval_id>", problem="Give the approval id to show.")
async def show_request(
    approval_id: str,
    sender: Identity,
    user: User,
    chat: Chat,
    stores: Stores,
    approvals: ApprovalService | None = None,
) -> str:
    """The whole request, escaped as on its card; long ones arrive in several messages."""
    approval_id = approval_id.removeprefix("#")  # as ids are shown
    if not _may_see(approvals, sender, user):
        return await _refuse(stores, sender, approval_id[:16], approvals)
    approval = await stores.approvals.get(approval_id.strip().lower())
    if approval is None or not _visible(user, chat, approval):
        return f"There is no approval request {escape_invisible(approval_id[:16])!r}."
    shown = (
        await approvals.preview_for(approval, user, private=chat.kind == "private")
        if approvals
        else ""
    )
    tokens, warnings = render_preview(shown or arguments_preview(approval))
    body = "".join(tokens)
    inside = [*warnings, f"Why: {escape_invisible(approval.reason)}", "", body]
    content = "\n".join(inside)
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    return (
        f"Request {approval.id}: `{escape_invisible(approval.tool)}`, "
        f"{approval.status.value} ({len(body):,} characters)\n\n{fence}\n{content}\n{fence}"
    )


def _typed(*, approve: bool, always: bool = False) -> Handler:
    """A typed decision (`/approve <id> [always]`, `/deny <id>`): the approver's scope first
    (`_hidden`), then the core decides. In a group or a channel everyone reads the answer: it
    names the tool and the id, the rest goes to a private chat (`in_the_open`, R262)."""

    async def decide(
        approval_id: str,
        sender: Identity,
        user: User,
        chat: Chat,
        stores: Stores,
        decide_approval: DecideApproval,
        approvals: ApprovalService | None = None,
    ) -> str:
        approval_id = approval_id.removeprefix("#")  # "/approve #k3f9", as ids are shown
        if hidden := await _hidden(approval_id, sender, user, chat, stores, approvals):
            return hidden
        return await decide_approval(
            approval_id,
            identity=sender,
            user=user,
            approve=approve,
            always=always,
            in_the_open=group_scope(chat) is not None,
        )

    return decide


approve_always = approve.sub("<approval_id> always")(_typed(approve=True, always=True))
approve_request = approve.sub("<approval_id>")(_typed(approve=True))
deny_request = deny.sub("<approval_id>")(_typed(approve=False))


async def _hidden(
    approval_id: str,
    sender: Identity,
    user: User,
    chat: Chat,
    stores: Stores,
    approvals: ApprovalService | None,
) -> str | None:
    """An approver decides what they may see (their own turns' requests, or this chat's), as in
    the list and the web console; anything else is answered as if it did not exist, and
    audited. None: go on (deciding refuses, and audits, whoever may not decide at all)."""
    if user.is_owner or not _may_see(approvals, sender, user):
        return None  # the owner decides anywhere (in a group, the answer names the tool alone)
    approval = await stores.approvals.get(approval_id.strip().lower())
    if approval is None or _visible(user, chat, approval):
        return None
    await stores.audit.record("approval.hidden", actor=str(sender), subject=approval.id)
    return f"There is no approval request {escape_invisible(approval_id[:16])!r}."


@group.on_press
async def pressed(
    press: Press,
    sender: Identity,
    user: User,
    chat: Chat,
    address: Address,
    stores: Stores,
    approvals: ApprovalService | None,
    decide_approval: DecideApproval,
) -> str:
    """A button on an approval card: it decides only the approval whose card was pressed. A
    press that does not say which message it was on decides nothing (typing /approve does).
    Who may decide is asked first: the card check looks the id up, and its answer would tell
    someone who may not decide which ids exist (a button's data is the client's to write)."""
    may_decide = _may_see(approvals, sender, user)
    if may_decide and (
        press.message_id is None or not await _on_its_card(press, sender, address, stores)
    ):
        return WRONG_CARD
    return await decide_approval(
        press.approval_id,
        identity=sender,
        user=user,
        approve=press.choice is not Choice.DENY,
        always=press.choice is Choice.ALWAYS,
        in_the_open=group_scope(chat) is not None,  # as typed there (R262; review 36)
    )


async def _on_its_card(press: Press, sender: Identity, address: Address, stores: Stores) -> bool:
    """Whether a button press came from the card of the approval its data names."""
    approval = await stores.approvals.get(press.approval_id.strip().lower())
    if approval is None:
        return True  # deciding says it is unknown, and audits that
    if (
        approval.prompt_message_id == press.message_id
        and approval.channel == address.channel
        and approval.platform_chat_id == address.chat_id
    ):
        return True
    await stores.audit.record(
        "approval.wrong_card",
        actor=str(sender),
        subject=approval.id,
        pressed=press.message_id,
        chat=str(address),
    )
    return False
