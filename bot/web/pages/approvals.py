"""/approvals: what waits, each action whole, decided under exactly the checks chat uses.

A decision goes through the core's `decide_approval` (the same call `/approve` and a card's
button make): the id must be pending and unexpired, the decider the owner or an approver, the
action's hash unchanged. An approver sees (and may decide) only the requests of their own
turns and of chats they talk in, as in chat, and never *Always* (a rule in the owner's
policy). `/approvals/list` is the list alone, which the page's script polls so new requests
appear without a reload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web

from agent.approvals import arguments_preview, person_named
from agent.cards import describe_sources, escape_invisible, render_preview
from bot.web.views import Page, Routes
from memory.approvals import Approval
from memory.people import User
from memory.web_sessions import WebRole

__all__ = ["ApprovalView", "pending_views", "routes"]

routes = Routes()

CHOICES = {"approve": (True, False), "always": (True, True), "deny": (False, False)}
ALWAYS_OWNER_ONLY = (
    "Only the owner can approve always (a rule in the policy file); approve it once."
)


@dataclass(frozen=True)
class ApprovalView:
    approval: Approval
    action: str  # the whole action, invisible characters escaped, hosts in punycode
    warnings: list[str]
    arguments: str
    origin: str
    sources: str
    requester: str


async def _visible(page: Page) -> list[Approval]:
    pending = await page.deps.core.stores.approvals.pending()
    if page.role is WebRole.OWNER:
        return pending
    chats = await page.deps.core.stores.console_reads.chats_of_user(page.user.id)
    return [a for a in pending if a.user_id == page.user.id or a.chat_id in chats]


async def _view(page: Page, approval: Approval) -> ApprovalView:
    service = page.deps.core.approvals  # the console is its reader's alone: private
    shown = (
        await service.preview_for(approval, page.user, private=True)
        if service is not None
        else arguments_preview(approval)
    )
    tokens, warnings = render_preview(shown)
    stores = page.deps.core.stores
    requester = await stores.people.get(approval.user_id)
    where = "no chat"
    if approval.channel:
        where = f"{approval.channel} chat {approval.platform_chat_id}"
        if approval.thread_id:
            where += f", thread {approval.thread_id}"
    label = await stores.turns.label_of(approval.turn_id)
    arguments = json.dumps(approval.arguments, indent=2, ensure_ascii=False, sort_keys=True)
    return ApprovalView(
        approval=approval,
        action="".join(tokens),
        warnings=warnings,
        arguments=escape_invisible(arguments),
        origin=f"turn {approval.turn_id} in {where}",
        sources=describe_sources(label.sources),
        requester=_asked_by(page, requester) if requester else f"person #{approval.user_id}",
    )


def _asked_by(page: Page, requester: User) -> str:
    """The reader as "you", the owner as such, anyone else by number first (R262: a guest
    who named themselves "owner" was "asked by owner", as the owner is)."""
    if requester.id == page.user.id:
        return "you"
    return "the owner" if requester.is_owner else person_named(requester)


async def pending_views(page: Page) -> list[ApprovalView]:
    return [await _view(page, a) for a in await _visible(page)]


@routes.get("/approvals", role=WebRole.APPROVER)
async def approvals_page(page: Page) -> web.StreamResponse:
    recent = []
    if page.owner:
        decided = [a for a in await page.deps.core.stores.approvals.all() if a.decided]
        recent = decided[-10:][::-1]
    return page.render("approvals.html", items=await pending_views(page), recent=recent)


@routes.get("/approvals/list", role=WebRole.APPROVER)
async def approvals_list(page: Page) -> web.StreamResponse:
    return page.fragment("approvals_list.html", items=await pending_views(page))


@routes.post("/approvals/{approval_id}", role=WebRole.APPROVER)
async def decide(page: Page) -> web.StreamResponse:
    approval_id = page.params["approval_id"].lower()
    choice = page.field("choice")
    if choice not in CHOICES:
        return page.redirect("/approvals", "Choose Approve, Deny or Always.")
    if choice == "always" and not page.owner:  # a rule in the owner's policy file
        await page.audit("web.always_refused", subject=approval_id[:16])
        return page.redirect("/approvals", ALWAYS_OWNER_ONLY)
    visible = {a.id for a in await _visible(page)}
    if approval_id not in visible:
        await page.audit("web.approval_hidden", subject=approval_id[:16], choice=choice)
        stored = await page.deps.core.stores.approvals.get(approval_id)
        if stored is not None and page.owner:
            return page.redirect("/approvals", f"{approval_id} was already {stored.status.value}.")
        return page.redirect("/approvals", f"There is no pending request {approval_id}.")
    approve, always = CHOICES[choice]
    await page.audit("web.approval", subject=approval_id, choice=choice)
    note = await page.deps.core.decide_approval(  # the reply follows in the chat (R265)
        approval_id,
        identity=page.identity,
        user=page.user,
        approve=approve,
        always=always,
        resume_later=True,
    )
    return page.redirect("/approvals", note)
