"""/activity: the audit timeline with filters, a turn's whole story, the chain's verify status
and export (JSON lines, as `steward audit export` writes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from agent.cards import describe_sources, plain_name
from agent.transcript import TextPart, ToolResultPart, ToolUsePart, load_transcript
from bot.commands.ids import as_id
from bot.web.security import SECURITY_HEADERS
from bot.web.views import Page, Routes
from memory.web_reads import AuditFilter

__all__ = ["Step", "routes"]

routes = Routes()

PAGE_SIZE = 100
FILTERS = ("kind", "tool", "chat", "decision")


@dataclass(frozen=True)
class Step:
    """One part of a turn's transcript as the page shows it."""

    role: str  # "model" (a model call's answer) or "tools" (what went back to it)
    kind: str  # text, tool_use, tool_result
    title: str
    body: str
    flag: str = ""


def _detail(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))


@routes.get("/activity")
async def activity(page: Page) -> web.StreamResponse:
    reads = page.deps.core.stores.console_reads
    before = page.query("before")
    chosen = {name: page.query(name) for name in FILTERS}
    events = await reads.audit_events(
        AuditFilter(
            **chosen,
            before_id=as_id(before),
            limit=PAGE_SIZE,
        )
    )
    verification = await page.deps.core.stores.audit.verify()
    older = events[-1].id if len(events) == PAGE_SIZE else None
    query = urlencode({k: v for k, v in chosen.items() if v})  # a filter's `&` stays its own
    return page.render(
        "activity.html",
        events=events,
        detail=_detail,
        chosen=chosen,
        kinds=await reads.audit_kinds(),
        verification=verification,
        older=older,
        query=query,
        turns=await reads.recent_turns(20),
    )


@routes.get("/activity/turn/{turn_id}")
async def turn_story(page: Page) -> web.StreamResponse:
    stores = page.deps.core.stores
    raw = page.params["turn_id"]
    number = as_id(raw)
    turn = await stores.console_reads.turn(number) if number is not None else None
    if turn is None:
        return page.render("missing.html", status=404, what=f"turn {raw}")
    approvals = await stores.approvals.for_turn(turn.id)
    events = await stores.console_reads.turn_events(turn.id, [a.id for a in approvals])
    messages = await stores.console_reads.turn_messages(turn.id, turn.message_id)
    steps: list[Step] = []
    if turn.transcript:
        for message in load_transcript(turn.transcript):
            role = "model" if message.role == "assistant" else "tools"
            for part in message.content:
                if isinstance(part, TextPart):
                    if role == "model":
                        steps.append(Step(role, "text", "model said", part.text))
                elif isinstance(part, ToolUsePart):
                    body = json.dumps(part.input, indent=2, ensure_ascii=False, sort_keys=True)
                    steps.append(Step(role, "tool_use", f"calls {part.name}", body))
                elif isinstance(part, ToolResultPart):
                    flag = "error" if part.is_error else ""
                    if part.label:
                        flag = (flag + " untrusted: " + describe_sources(part.label)).strip()
                    steps.append(Step(role, "tool_result", "result", part.content, flag))
    user = await stores.people.get(turn.user_id) if turn.user_id else None
    chat = await stores.people.chat_by_id(turn.chat_id) if turn.chat_id else None
    return page.render(
        "turn.html",
        turn=turn,
        who=plain_name(user.display_name) if user else "",
        chat=f"{chat.channel}:{chat.platform_chat_id}" if chat else "",
        sources=describe_sources(turn.label.sources),
        steps=steps,
        events=events,
        detail=_detail,
        approvals=approvals,
        messages=messages,
    )


@routes.get("/activity/export")
async def export(page: Page) -> web.StreamResponse:
    """Every event as JSON lines, streamed (the log can be large)."""
    await page.audit("web.audit_exported")
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/x-ndjson; charset=utf-8",
            "Content-Disposition": 'attachment; filename="steward-audit.jsonl"',
        }
    )
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-store"
    await response.prepare(page.request)
    async for event in page.deps.core.stores.audit.all():
        line = {
            "id": event.id,
            "at": event.at,
            "kind": event.kind,
            "actor": event.actor,
            "subject": event.subject,
            "detail": event.detail,
            "prev_hash": event.prev_hash,
            "hash": event.hash,
        }
        await response.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
    await response.write_eof()
    return response
