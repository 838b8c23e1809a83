"""What the model is offered of the MCP tools: all of them while there are few, else one small
search-and-load tool, so the fixed prompt does not grow with every server's schemas.

With more than `direct_limit` MCP tools, `mcp_tool_search` finds tools by keywords and loads
the matches for the rest of the turn: from the next step on their schemas are in the tools
list and the model calls them by name like any other tool (through the same policy). A tool
named without being loaded still works; loading only decides which schemas are sent.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from agent.mcp.bridge import McpTool
from agent.mcp.supervisor import McpSupervisor
from agent.tools.registry import (
    TOOL_LISTING,
    TOOL_SEARCH,
    Missing,
    Offered,
    Risk,
    Tool,
    ToolContext,
    ToolResult,
    tool,
)

__all__ = ["SEARCH_TOOL", "McpToolSource"]

SEARCH_TOOL = "mcp_tool_search"
MATCHES = 5
_REMEMBERED_TURNS = 512
_WORD = re.compile(r"[a-z0-9]+")


class McpToolSource:
    """The registry's dynamic part (see `ToolRegistry.add_source`)."""

    def __init__(self, supervisor: McpSupervisor, *, direct_limit: int) -> None:
        self.supervisor = supervisor
        self.direct_limit = direct_limit
        self._loaded: OrderedDict[int, set[str]] = OrderedDict()
        self._search = self._search_tool()

    def _offered(self) -> list[McpTool]:
        return [t for t in self.supervisor.tools() if t.risk is not Risk.FORBIDDEN]

    def searching(self) -> bool:
        return len(self._offered()) > self.direct_limit

    def get(self, name: str) -> Tool | None:
        if name == SEARCH_TOOL:
            return self._search if self.searching() else None
        return self.supervisor.get(name)

    def missing(self, name: str) -> Missing | None:
        if not name.startswith("mcp__") or self.get(name) is not None:
            return None
        server = name.removeprefix("mcp__").split("__", 1)[0]
        link = self.supervisor.links.get(server)
        if link is None:
            return Missing.UNKNOWN
        return Missing.GONE if link.status == "up" else Missing.DOWN

    def schemas(self, turn_id: int | None = None, only: Offered = None) -> list[dict[str, Any]]:
        offered = self._offered()
        if only is not None:  # another person's turn: what their rules name, directly
            return [t.schema() for t in offered if only(t.name)]
        if len(offered) <= self.direct_limit:
            return [t.schema() for t in offered]
        loaded = self._loaded.get(turn_id, set()) if turn_id is not None else set()
        schema = self._search.schema()
        servers = sorted({t.server for t in offered})
        schema["description"] += f" Connected servers: {', '.join(servers)} ({len(offered)} tools)."
        return [schema, *(t.schema() for t in offered if t.name in loaded)]

    def offered_sources(self, turn_id: int | None = None, only: Offered = None) -> tuple[str, ...]:
        """`mcp-tools:<server>` for every server whose words (descriptions, schemas) `schemas()`
        offers the model in this turn: they are outside content, so the turn is tainted by them
        before the model reads them. The search tool alone (Steward's words) taints nothing."""
        offered = self._offered()
        if only is not None:
            offered = [t for t in offered if only(t.name)]
        elif len(offered) > self.direct_limit:
            loaded = self._loaded.get(turn_id, set()) if turn_id is not None else set()
            offered = [t for t in offered if t.name in loaded]
        return tuple(dict.fromkeys(f"{TOOL_LISTING}{t.server}" for t in offered))

    def load(self, turn_id: int, names: list[str]) -> None:
        self._loaded.setdefault(turn_id, set()).update(names)
        self._loaded.move_to_end(turn_id)
        while len(self._loaded) > _REMEMBERED_TURNS:
            self._loaded.popitem(last=False)

    def find(self, query: str) -> list[McpTool]:
        words = set(_WORD.findall(query.lower()))
        scored: list[tuple[int, str, McpTool]] = []
        for item in self._offered():
            name_words = set(_WORD.findall(item.name.lower().replace("_", " ")))
            about = set(_WORD.findall(item.description.lower()))
            score = 3 * len(words & name_words) + len(words & about)
            if query.strip().lower() in item.name.lower():
                score += 5
            if score:
                scored.append((-score, item.name, item))
        return [item for _, _, item in sorted(scored)[:MATCHES]]

    def _search_tool(self) -> Tool:
        source = self

        @tool(risk=Risk.READ, name=SEARCH_TOOL, owner_data=True)  # lists the owner's servers
        async def mcp_tool_search(ctx: ToolContext, query: str) -> ToolResult:
            """Find tools of the connected MCP servers by keywords and load them for this turn:
            the matches (at most 5) are then offered to you, and you call them by name. Use it
            before any mcp__ tool.

            Args:
                query: a few keywords for what the tool should do, or part of its name
            """
            found = source.find(query)
            if not found:
                servers = sorted({t.server for t in source._offered()})
                return ToolResult(
                    f"No MCP tool matches {query!r}. Servers: {', '.join(servers) or 'none up'}. "
                    "Try other words or a server's name."
                )
            source.load(ctx.turn_id, [t.name for t in found])
            lines = [f"Loaded {len(found)} tools; call them by name:"]
            lines += [f"- {t.name} (risk {t.risk.value}): {t.description}" for t in found]
            servers = ",".join(sorted({t.server for t in found}))
            # the descriptions are the servers' words: fenced, and they taint like a result,
            # but they are what a tool's definition says: they do not make MCP calls ask
            return ToolResult("\n".join(lines), source=f"{TOOL_SEARCH}{servers}")

        return mcp_tool_search
