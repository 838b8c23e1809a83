"""Who decides whether a tool call runs: allow, ask the owner, or deny.

The policy sees the tool's risk class, its arguments and whether the turn carries untrusted
content. Until in-chat approval exists, `ASK` cannot be satisfied, and the turn loop refuses it
with a message that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from agent.tools.registry import Risk, Tool, ToolContext

__all__ = ["Decision", "Policy", "RiskPolicy", "Verdict"]


class Decision(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str


class Policy(Protocol):
    def decide(self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> Verdict: ...


class RiskPolicy:
    """The safe default: reads run, internal writes run unless the turn is tainted, anything with
    an effect outside Steward needs the owner, forbidden tools never run."""

    def decide(self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext) -> Verdict:
        if tool.risk is Risk.FORBIDDEN:
            return Verdict(Decision.DENY, f"{tool.name} is forbidden")
        if tool.risk is Risk.READ:
            return Verdict(Decision.ALLOW, "read-only")
        if tool.risk is Risk.WRITE_INTERNAL and not ctx.tainted:
            return Verdict(Decision.ALLOW, "internal write")
        if ctx.tainted:
            return Verdict(Decision.ASK, "the turn holds untrusted content")
        return Verdict(Decision.ASK, f"{tool.name} acts outside Steward")
