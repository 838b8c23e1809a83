"""/approve and /deny: the owner's answer to an approval request (typed, or a button press).

Approval ids and previews stay between the owner (and STEWARD_APPROVERS) and Steward: only they
get the list of what waits (`/approve`) and the whole escaped preview (`/approve show <id>`).
A button press carries the platform id of the message pressed; it decides only the approval
whose card that message is, in the chat the card was sent to, so callback data copied from one
card onto another runs nothing (and is audited).
"""

from __future__ import annotations

import re

from agent.approvals import approval_preview
from agent.cards import escape_invisible, render_preview
from bot.commands.registry import CommandContext, CommandGroup, UsageError
from memory.approvals import Approval

__all__ = ["NOT_YOURS", "WRONG_CARD", "group"]

group = CommandGroup()

NOT_YOURS = "Only the owner can see and decide approval requests."
WRONG_CARD = "That button does not belong to the request it names, so nothing ran."
_LIST_LINE = 80


def _may_see(ctx: CommandContext) -> bool:
    service = ctx.steward.approvals
    return service is not None and service.may_decide(ctx.message.sender, ctx.user)


def _visible(ctx: CommandContext, approval: Approval) -> bool:
    """The owner sees every request; another approver those of their own turns or this chat."""
    return ctx.user.is_owner or ctx.user.id == approval.user_id or ctx.chat.id == approval.chat_id


async def _refuse(ctx: CommandContext, what: str) -> str:
    await ctx.steward.stores.audit.record(
        "approval.list_refused", actor=str(ctx.message.sender), subject=what
    )
    return NOT_YOURS


async def _pending_list(ctx: CommandContext) -> str:
    if not _may_see(ctx):
        return await _refuse(ctx, "list")
    pending = [a for a in await ctx.steward.stores.approvals.pending() if _visible(ctx, a)]
    if not pending:
        return "Nothing is waiting for your approval."
    lines = []
    for a in pending:
        first = "".join(render_preview(approval_preview(a))[0]).strip().split("\n", 1)[0]
        if len(first) > _LIST_LINE:
            first = first[: _LIST_LINE - 1] + "…"
        lines.append(f"{a.id} — {a.tool}: {first} (expires {a.expires_at:%H:%M} UTC)")
    return (
        "Waiting for your approval:\n"
        + "\n".join(lines)
        + "\n\nReply /approve <id> or /deny <id>; /approve show <id> shows a request whole."
    )


async def _show(ctx: CommandContext, approval_id: str) -> str:
    """The whole request, escaped as on its card; long ones arrive in several messages."""
    if not _may_see(ctx):
        return await _refuse(ctx, approval_id[:16])
    approval = await ctx.steward.stores.approvals.get(approval_id.strip().lower())
    if approval is None or not _visible(ctx, approval):
        return f"There is no approval request {escape_invisible(approval_id[:16])!r}."
    tokens, warnings = render_preview(approval_preview(approval))
    body = "".join(tokens)
    inside = [*warnings, f"Why: {escape_invisible(approval.reason)}", "", body]
    content = "\n".join(inside)
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    return (
        f"Request {approval.id}: `{escape_invisible(approval.tool)}`, "
        f"{approval.status.value} ({len(body):,} characters)\n\n{fence}\n{content}\n{fence}"
    )


async def _on_its_card(ctx: CommandContext, approval_id: str, pressed: str) -> bool:
    """Whether a button press came from the card of the approval its data names."""
    approval = await ctx.steward.stores.approvals.get(approval_id.strip().lower())
    if approval is None:
        return True  # deciding says it is unknown, and audits that
    address = ctx.message.address
    if (
        approval.prompt_message_id == pressed
        and approval.channel == address.channel
        and approval.platform_chat_id == address.chat_id
    ):
        return True
    await ctx.steward.stores.audit.record(
        "approval.wrong_card",
        actor=str(ctx.message.sender),
        subject=approval.id,
        pressed=pressed,
        chat=str(address),
    )
    return False


async def _decide(ctx: CommandContext, approve: bool) -> str:
    parts = ctx.call.args.split()
    if not parts:
        if approve:
            return await _pending_list(ctx)
        raise UsageError("Say which request to deny.")
    if approve and parts[0].lower() == "show":
        if len(parts) != 2:
            raise UsageError("Give the approval id to show.")
        return await _show(ctx, parts[1])
    always = len(parts) == 2 and parts[1].lower() == "always" and approve
    if len(parts) > 2 or (len(parts) == 2 and not always):
        raise UsageError("Give one approval id" + (" and optionally `always`." if approve else "."))
    pressed = ctx.message.pressed_message_id
    if pressed is not None and not await _on_its_card(ctx, parts[0], pressed):
        return WRONG_CARD
    return await ctx.steward.decide_approval(
        parts[0],
        identity=ctx.message.sender,
        user=ctx.user,
        approve=approve,
        always=always,
    )


@group.command(
    "approve",
    summary="approve a pending action (no id: list what is pending; show <id>: all of it)",
    usage="/approve [id] [always] | /approve show <id>",
    example="/approve k3f9",
)
async def approve_command(ctx: CommandContext) -> str:
    return await _decide(ctx, approve=True)


@group.command("deny", summary="deny a pending action", usage="/deny <id>", example="/deny k3f9")
async def deny_command(ctx: CommandContext) -> str:
    return await _decide(ctx, approve=False)
