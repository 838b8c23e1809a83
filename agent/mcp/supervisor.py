"""The MCP supervisor: every configured server kept running in the background, their tools as
Steward tools, and what the owner and the web console see of them.

Servers start after the channels (`start()` returns at once) and each is restarted with backoff
when it fails or dies; the owner is told once per outage. While a server is down its tools are
gone from what the model is offered. Calls have a timeout and a result size cap, and are
audited (`mcp.call`: server, tool, outcome, result size) next to the usual tool events.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from mcp import MCPError

from agent.mcp.bridge import McpTool, result_text
from agent.mcp.catalog import ToolCatalog
from agent.mcp.config import McpConfig
from agent.mcp.connection import MAY_HAVE_RUN, CallFailed, ServerLink
from agent.mcp.listing import MAX_LISTING_BYTES
from agent.tools.registry import Risk, ToolContext, ToolResult

__all__ = ["AuditSink", "McpSupervisor", "ServerState"]

log = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[bool | None]]
"""Tells the owner; False when they could not be reached (the notice is tried again)."""


class AuditSink(Protocol):
    async def record(
        self, kind: str, /, *, actor: str, subject: str = "", **detail: Any
    ) -> Any: ...


@dataclass(frozen=True)
class ServerState:
    """One server as `/mcp`, `steward mcp check` and the web console show it."""

    name: str
    transport: str
    target: str
    """What it runs or reaches, as written in the config (no expanded secret in it)."""
    status: str
    """starting, up, down, restarting or stopped."""
    tools: tuple[str, ...]
    error: str | None
    restarts: int
    since: datetime | None


class McpSupervisor:
    def __init__(
        self,
        config: McpConfig,
        *,
        workdir: Path,
        risk_of: Callable[[str], Risk],
        call_timeout: float,
        output_limit: int,
        audit: AuditSink | None = None,
        health_every: float = 15.0,
        backoff: tuple[float, float] = (1.0, 300.0),
        listing_bytes: int = MAX_LISTING_BYTES,
    ) -> None:
        self.config = config
        self._risk_of = risk_of
        self._timeout = call_timeout
        self._limit = output_limit
        self._audit = audit
        self._notify: Notify | None = None
        self._reported: set[str] = set()
        self._untold: set[str] = set()  # down, and the owner could not be reached yet
        self._tasks: list[asyncio.Task[None]] = []
        self._tools: dict[str, McpTool] | None = None
        self.catalog = ToolCatalog(self._invoke)
        self.skipped: list[str] = []
        """Tools not offered, and why (a name too long, the same name twice, past the number
        taken from one server)."""
        self._notes: dict[str, str] = {}
        self.links = {
            spec.name: ServerLink(
                spec,
                workdir=workdir / spec.name,
                on_change=self._changed,
                on_down=self._down,
                on_up=self._up,
                health_every=health_every,
                backoff=backoff,
                listing_bytes=listing_bytes,
            )
            for spec in config.servers
        }

    # -- life cycle -------------------------------------------------------------------------

    async def start(self, notify: Notify | None = None) -> None:
        """Start every server in the background; returns at once."""
        self._notify = notify
        if self._tasks:
            return
        for link in self.links.values():
            self._tasks.append(asyncio.create_task(link.run(), name=f"mcp:{link.name}"))

    async def settled(self, timeout: float = 40.0) -> bool:  # noqa: ASYNC109
        """Wait until every server was started once (up, or failed); False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(link.settled() for link in self.links.values()))
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        for link in self.links.values():
            link.stop()
        for task in self._tasks:
            task.cancel()
        # a task's own end (cancelled, failed) is not stop()'s; stop() being cancelled still is
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for link in self.links.values():
            link.status = "stopped"
        self._tools = None

    # -- what others see --------------------------------------------------------------------

    def states(self) -> list[ServerState]:
        """A read-only view of every server (for `/mcp`, `steward mcp check`, the console).
        A server that is up but whose tools were not all taken has that as its problem."""
        tools = self.tools()
        return [
            ServerState(
                name=link.name,
                transport=link.spec.transport,
                target=link.spec.shown,
                status=link.status,
                tools=tuple(t.name for t in tools if t.server == link.name),
                error=link.error or self._notes.get(link.name),
                restarts=link.restarts,
                since=datetime.fromtimestamp(link.since, UTC) if link.since else None,
            )
            for link in self.links.values()
        ]

    def tools(self) -> list[McpTool]:
        """Every tool of every server that is up (forbidden ones included: the caller filters)."""
        if self._tools is None:
            self._tools = self._build()
        return list(self._tools.values())

    def get(self, name: str) -> McpTool | None:
        """A tool by name, forbidden ones included: hidden, one would read as gone from its
        server; the policy denies it, and so does approving its card (R222)."""
        if self._tools is None:
            self._tools = self._build()
        return self._tools.get(name)

    def _build(self) -> dict[str, McpTool]:
        built = self.catalog.build(self.links.values(), self._risk_of)
        self.skipped, self._notes = built.skipped, built.notes
        return built.tools

    def _changed(self) -> None:
        self._tools = None

    async def _down(self, link: ServerLink, problem: str) -> None:
        self._tools = None
        if link.name not in self._reported:
            self._reported.add(link.name)
            self._untold.add(link.name)
            if self._audit is not None:
                await self._audit.record(
                    "mcp.server_down", actor="steward", subject=link.name, problem=problem
                )
        if self._notify is not None and link.name in self._untold:
            # told once an outage; tried again at the next failed start while the owner
            # could not be reached (R112: a first run's notice was lost for the whole outage)
            told = await self._notify(
                f"The MCP server {link.name} is not running ({problem}). Its tools are "
                "unavailable until it is back; Steward keeps restarting it with backoff "
                "(`/mcp` shows its state)."
            )
            if told is not False:
                self._untold.discard(link.name)

    async def _up(self, link: ServerLink, _: str) -> None:
        self._tools = None
        self._untold.discard(link.name)
        if link.name in self._reported:
            self._reported.discard(link.name)
            if self._audit is not None:
                await self._audit.record("mcp.server_up", actor="steward", subject=link.name)

    # -- calls --------------------------------------------------------------------------------

    async def _invoke(
        self, tool: McpTool, ctx: ToolContext, arguments: dict[str, Any]
    ) -> ToolResult:
        link = self.links.get(tool.server)
        started = time.monotonic()
        source = f"mcp:{tool.server}"
        total = 0
        try:
            if link is None:
                raise CallFailed(f"there is no MCP server {tool.server}", "down")
            answer = await link.call(tool.remote, arguments, self._timeout)
        except CallFailed as exc:
            uncertain = MAY_HAVE_RUN in str(exc)  # ended without its answer: it may have run
            outcome, result = exc.outcome, ToolResult(str(exc), is_error=True, uncertain=uncertain)
        except MCPError as exc:  # the server's own words: outside content like a result
            outcome = "error"
            text = str(exc.message if hasattr(exc, "message") else exc)
            text = link.spec.redact(text) if link is not None else text
            total = len(text)
            result = ToolResult(self._cap(f"MCP error {exc.code}: {text}"), True, source)
        except asyncio.CancelledError:
            await self._record(ctx, tool, "cancelled", 0, 0, started)
            raise
        except Exception as exc:  # e.g. the SDK refusing a result of the wrong shape
            why = link.spec.redact(str(exc)) if link is not None else type(exc).__name__
            log.warning(
                "MCP %s: %s's answer could not be read: %s", tool.server, tool.shown_remote, why
            )
            outcome = "malformed"
            result = ToolResult(
                f"the MCP server {tool.server} sent an answer that is not a valid MCP result "
                f"({type(exc).__name__}); nothing of it was read",
                is_error=True,
            )
        else:
            # a server quoting the credential it was sent (an error echoing the header, a link
            # with `?api_key=`) must not hand it to the model, the database or the log (review 73)
            text = link.spec.redact(result_text(answer))
            total = len(text)
            outcome = "error" if answer.is_error else "ok"
            result = ToolResult(self._cap(text), is_error=bool(answer.is_error), source=source)
        await self._record(ctx, tool, outcome, total, len(result.content), started)
        return result

    def _cap(self, text: str) -> str:
        if len(text) <= self._limit:
            return text
        hidden = len(text) - self._limit
        return (
            text[: self._limit]
            + f"\n[cut: {hidden} of {len(text)} characters not shown (STEWARD_TOOL_OUTPUT_LIMIT)]"
        )

    async def _record(
        self, ctx: ToolContext, tool: McpTool, outcome: str, total: int, shown: int, started: float
    ) -> None:
        await ctx.stores.audit.record(
            "mcp.call",
            actor=f"turn:{ctx.turn_id}",
            subject=tool.name,
            server=tool.server,
            tool=tool.shown_remote,
            outcome=outcome,
            result_chars=total,
            shown_chars=shown,
            seconds=round(time.monotonic() - started, 3),
        )
