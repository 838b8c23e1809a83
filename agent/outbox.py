"""The core's way out: it posts through this port and never imports a chat channel."""

from __future__ import annotations

from typing import Protocol

from agent.types import Address, ApprovalPrompt

__all__ = ["DeliveryError", "Outbox"]


class DeliveryError(Exception):
    """A channel could not deliver a message (after its own retries)."""


class Outbox(Protocol):
    async def send_text(self, address: Address, text: str) -> str | None:
        """Deliver text; returns the platform's message id where there is one."""
        ...

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        """Post an approval request with Approve / Deny controls."""
        ...

    async def show_typing(self, address: Address) -> None:
        """Show that Steward is working (a no-op where the platform has no such signal)."""
        ...
