"""/: what needs the owner now: pending approvals (live), and anything wrong — an audit chain
that does not verify, a channel that is down, memory without its embedder, replies not
delivered, a spent budget, goals due soon."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.commands.mail import mail_state
from bot.commands.mail import status_line as mail_status_line
from bot.web.pages.approvals import pending_views
from bot.web.views import Page, Routes
from memory.clock import parse_iso
from memory.web_sessions import WebRole

__all__ = ["routes"]

routes = Routes()

DUE_SOON = timedelta(days=3)


@routes.get("/", role=WebRole.APPROVER)
async def home(page: Page) -> web.StreamResponse:
    if not page.owner:
        return page.redirect("/approvals")
    core = page.deps.core
    stores = core.stores
    notes: list[tuple[str, str, str]] = []  # (level, text, link)
    check = await stores.audit.verify()
    if not check.ok:
        notes.append(
            (
                "bad",
                f"The audit chain does not verify: event {check.first_broken_id}: {check.problem}",
                "/activity",
            )
        )
    for channel in page.deps.channel_states():
        if channel.state not in ("up", "finished"):
            notes.append(
                (
                    "bad",
                    f"Channel {channel.name} is {channel.state} {channel.detail}".strip(),
                    "/status",
                )
            )
    if core.memory is not None and str(getattr(core.memory.state, "value", "")) == "keyword-only":
        notes.append(
            ("warn", f"Memory runs on keyword search only: {core.memory.detail}", "/status")
        )
    mail = await mail_status_line(core.settings, stores)
    if mail is not None and mail_state(mail) != "up":  # R138: said in /status alone
        said = {"refused": "refused Steward's login", "unreachable": "cannot be reached"}
        notes.append(("bad", f"The mailbox {said[mail_state(mail)]}: see Status.", "/status"))
    undelivered = await stores.messages.undelivered()
    if undelivered:
        notes.append(("warn", f"{len(undelivered)} replies wait to be delivered.", "/status"))
    budget = core.settings.daily_token_budget
    if budget:
        spent = await core.runner.budget_spent()
        if spent >= 0.8 * budget:
            notes.append(("warn", f"{spent:,} of today's {budget:,} token budget spent.", "/usage"))
    now = core.clock.now()
    zone = ZoneInfo(page.zone)
    for goal in await stores.goals.active(page.user.id):
        if goal.due_at and (due := parse_iso(goal.due_at)) - now <= DUE_SOON:
            day = f"{due.astimezone(zone):%Y-%m-%d}"  # the owner's day (R138: UTC's was shown)
            notes.append(("info", f"Goal #{goal.id} “{goal.title}” is due {day}.", "/goals"))
    items = await pending_views(page)
    return page.render("home.html", notes=notes, verified=check, items=items)
