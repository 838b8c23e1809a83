"""/status: channels, the embedder, Chroma, the scheduler, MCP servers (read duck-typed: the
core may have none), web sessions, the data directory and its size."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.sandbox import shell_mode
from bot.commands.mail import mail_state
from bot.commands.mail import status_line as mail_status_line
from bot.web.views import Page, Routes

__all__ = ["Row", "mcp_rows", "routes"]

routes = Routes()


@dataclass(frozen=True)
class Row:
    name: str
    state: str
    detail: str = ""


def _size(path: Path) -> tuple[int, int]:
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                continue
    return total, files


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def _pick(item: Any, *names: str) -> Any:
    for name in names:
        value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
        if value is not None:
            return value
    return None


def mcp_rows(mcp: Any) -> list[Row]:
    """Whatever the MCP layer reports, read duck-typed: `states()` / `status()` / `servers` as a
    mapping or a list of items with a name and a state. Nothing there: an empty list ("not
    configured")."""
    if mcp is None:
        return []
    report = None
    for name in ("states", "status", "servers"):
        report = getattr(mcp, name, None)
        if callable(report):
            report = report()
        if report is not None:
            break
    if isinstance(report, dict):
        items = [
            {"name": k, **v} if isinstance(v, dict) else {"name": k, "state": v}
            for k, v in report.items()
        ]
    else:
        items = list(report or [])
    rows = []
    for item in items:
        name = _pick(item, "name", "server") or "?"
        state = _pick(item, "state", "status", "connected")
        if isinstance(state, bool):
            state = "up" if state else "down"
        tools = _pick(item, "tools", "tool_count")
        detail = _pick(item, "detail", "error", "last_error") or ""
        target = _pick(item, "target", "transport")
        if target:
            detail = f"{target}" + (f"; {detail}" if detail else "")
        if tools is not None:
            count = tools if isinstance(tools, int) else len(tools)
            detail = f"{count} tools" + (f"; {detail}" if detail else "")
        rows.append(Row(str(name), str(getattr(state, "value", state) or "unknown"), str(detail)))
    return rows


@routes.get("/status")
async def status_page(page: Page) -> web.StreamResponse:
    core = page.deps.core
    settings, stores, memory = core.settings, core.stores, core.memory
    channels = [Row(c.name, c.state, c.detail) for c in page.deps.channel_states()]
    components: list[Row] = []
    if memory is None:
        components.append(Row("Long-term memory", "off"))
    else:
        store = memory.store
        embedder = getattr(store, "embedder", None)
        index = getattr(store, "index", None)
        state = str(getattr(memory.state, "value", memory.state))
        components.append(Row("Memory", state, await memory.status_line()))
        components.append(
            Row(
                "Embedder",
                "loaded"
                if embedder is not None
                else ("off" if settings.embedder in ("none", "off", "disabled") else "not loaded"),
                getattr(embedder, "name", settings.embedder),
            )
        )
        components.append(
            Row(
                "Chroma",
                "up" if index is not None else "not connected",
                getattr(index, "where", settings.chroma_url or str(settings.chroma_path)),
            )
        )
    if core.scheduler is None:
        components.append(Row("Scheduler", "off"))
    else:
        next_run = await stores.schedules.next_run_time()
        components.append(
            Row(
                "Scheduler",
                "up",
                f"{await stores.schedules.count_active()} active schedules; next run "
                + (f"{next_run:%Y-%m-%d %H:%M} UTC" if next_run else "none"),
            )
        )
    # as /status says them in chat (R138: a mailbox that could not be reached, and the shell's
    # confinement, were not on this page)
    shell = await asyncio.to_thread(shell_mode, settings.shell_unconfined)
    components.append(Row("Shell", *shell.removeprefix("shell: ").split(" ", 1)))
    mail = await mail_status_line(settings, stores)
    if mail is None:
        components.append(Row("Mail", "off"))
    else:
        components.append(Row("Mail", mail_state(mail), mail.removeprefix("Mail: ")))
    size, files = await asyncio.to_thread(_size, settings.data_dir)
    return page.render(
        "status.html",
        channels=channels,
        components=components,
        mcp=mcp_rows(page.deps.mcp),
        mcp_configured=bool(page.deps.mcp is not None and mcp_rows(page.deps.mcp)),
        data_dir=str(settings.data_dir.resolve()),
        data_size=_human(size),
        data_files=files,
        model=core.runner.model_name,
        started_at=core.started_at,
        sessions=await stores.web_sessions.live_count(),
        pending=await stores.approvals.count_pending(),
    )


@routes.post("/status/sessions/end")
async def end_sessions(page: Page) -> web.StreamResponse:
    ended = await page.deps.core.stores.web_sessions.end_all()
    await page.audit("web.sessions_ended", count=ended)
    # this one ended too: said on the page it leads to, not kept for a session that is gone
    # (R138: a bare "Sign in" read like an expired session)
    html = page.env.get_template("signed_out.html").render(page=None, left=True, ended=ended)
    return web.Response(text=html, content_type="text/html")
