"""The servers' listings made Steward tools: at most TOOLS_PER_SERVER a server, each built
once for what the server listed.

Building a tool checks its schema (size, how far its references expand, one dialect) and
escapes its description: 1-3.5 ms a tool on the event loop. A server listing 5,000 tools held
every chat for 6-14 s, again at each change of its listing. Here a server's first
TOOLS_PER_SERVER tools are taken (the rest are counted as not offered, with the reason), and a
built tool is kept by (server, name, digest of its listing): a changed listing rebuilds only the
tools that changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import mcp.types as mt

from agent.cards import escape_invisible
from agent.mcp.bridge import Invoke, McpTool, one_line_name, unusable
from agent.mcp.connection import ServerLink
from agent.mcp.listing import Listing
from agent.tools.registry import Risk

__all__ = ["TOOLS_PER_SERVER", "Built", "ToolCatalog"]

TOOLS_PER_SERVER = 200


@dataclass
class Built:
    """What one build offers, what it left out (one line each, for `steward mcp check`), and
    a note per server whose tools were not all taken (for `/mcp` and the console)."""

    tools: dict[str, McpTool] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


log = logging.getLogger(__name__)

_Key = tuple[str, str, str]


class ToolCatalog:
    def __init__(self, invoke: Invoke) -> None:
        self._invoke = invoke
        self._made: dict[_Key, McpTool | str] = {}
        """A built tool, or why the listed one is not offered, by (server, name, digest)."""
        self.builds = 0
        """Tools built since start (each a schema check on the event loop)."""

    def build(self, servers: Iterable[ServerLink], risk_of: Callable[[str], Risk]) -> Built:
        """The tools of every server that is up; built ones kept, the others made now."""
        built = Built()
        made: dict[_Key, McpTool | str] = {}
        for server in servers:
            if server.status != "up":  # kept for its return (a restart rebuilds nothing)
                made.update((k, v) for k, v in self._made.items() if k[0] == server.name)
                continue
            listing = server.listing
            taken = zip(listing.tools[:TOOLS_PER_SERVER], listing.digests, strict=False)
            for listed, digest in taken:
                key = (server.name, listed.name, digest)
                tool = made.get(key) or self._made.get(key)
                if tool is None:
                    tool = self._make(server, listed)
                made[key] = tool
                if isinstance(tool, str):
                    shown = _shown(server.spec.redact(listed.name))
                    built.skipped.append(f"{server.name}/{shown}: {tool}")
                elif tool.name in built.tools:
                    shown = _shown(server.spec.redact(listed.name))
                    built.skipped.append(f"{server.name}/{shown}: same name as another tool")
                else:
                    built.tools[tool.name] = replace(tool, risk=risk_of(tool.name))
            note = _left_out(listing)
            if note:
                built.skipped.append(f"{server.name}: {note}")
                built.notes[server.name] = note
        self._made = made  # what no listing holds any more is let go
        return built

    def _make(self, server: ServerLink, listed: mt.Tool) -> McpTool | str:
        """The tool, or why it is not offered. A listing is the server's words: whatever one
        tool's holds, it fails that tool alone, never the catalog (review 36: one `$ref`
        failed every turn in every chat, and /mcp, until the server was removed)."""
        self.builds += 1
        shown = server.spec.shown
        try:
            tool = McpTool.of(
                server.name,
                shown,
                listed,
                Risk.EXTERNAL_EFFECT,
                self._invoke,
                redact=server.spec.redact,
            )
            return tool if tool is not None else unusable(server.name, listed)
        except Exception as exc:  # a fault of ours its listing found: logged, that tool left out
            log.warning(
                "MCP server %s: a tool could not be read (%s)", server.name, type(exc).__name__
            )
            return f"its definition could not be read ({type(exc).__name__})"


def _shown(name: str) -> str:
    """The server's words, for a terminal: on one line, invisible characters shown."""
    return escape_invisible(one_line_name(name[:80]))


def _left_out(listing: Listing) -> str:
    """Why some of a server's tools are not offered, or ""."""
    over = len(listing.tools) - TOOLS_PER_SERVER
    parts = []
    if over > 0:
        parts.append(
            f"{over:,} more tools not offered (only a server's first {TOOLS_PER_SERVER} "
            "listed tools are)"
        )
    if listing.cut:
        parts.append(f"{listing.cut}; any after that are not offered")
    return "; ".join(parts)
