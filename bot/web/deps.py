"""What the console's pages may use: the services commands get, plus the channels' state.

Read once from the core at start-up (`WebDeps.of`), like `CommandDeps`; no page gets the core.
MCP servers are read duck-typed (`steward.mcp`, if the core has one): the console shows
"not configured" otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.core import Steward
from bot.commands.handlers import CommandDeps

__all__ = ["ChannelState", "WebDeps"]


@dataclass(frozen=True)
class ChannelState:
    name: str
    state: str  # up, reconnecting, error, finished
    detail: str = ""


@dataclass
class WebDeps:
    core: CommandDeps
    channels: Sequence[Any] = ()
    failed: dict[str, str] = field(default_factory=dict)
    mcp: Any = None

    @classmethod
    def of(
        cls, steward: Steward, channels: Sequence[Any] = (), failed: dict[str, str] | None = None
    ) -> WebDeps:
        return cls(
            CommandDeps.of(steward), channels, dict(failed or {}), getattr(steward, "mcp", None)
        )

    def channel_states(self) -> list[ChannelState]:
        """Each channel as it reports itself (`status`/`state` if it has one), else up until
        it finished; a channel that failed to start is an error."""
        states = [ChannelState(name, "error", why) for name, why in self.failed.items()]
        for channel in self.channels:
            name = str(getattr(channel, "name", type(channel).__name__))
            reported = getattr(channel, "status", None) or getattr(channel, "state", None)
            if callable(reported):
                try:
                    reported = reported()
                except Exception as exc:  # a channel's own report must not break the page
                    reported = f"error: {exc}"
            finished = getattr(channel, "finished", None)
            if isinstance(reported, str) and reported:
                state, _, detail = reported.partition(":")
                states.append(ChannelState(name, state.strip(), detail.strip()))
            elif finished is not None and finished.is_set():
                states.append(ChannelState(name, "finished"))
            else:
                states.append(ChannelState(name, "up"))
        return states
