"""The shared core every channel and the scheduler talk to: run a turn, deliver its reply."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from agent.config import Settings
from agent.delivery import Courier
from agent.outbox import Outbox, Switchboard
from agent.tools.registry import ToolRegistry
from agent.turn import TurnOutcome, TurnRunner
from agent.types import Address, TurnRequest
from memory.clock import Clock
from memory.stores import Stores
from memory.turns import TurnStatus

__all__ = ["Steward"]

log = logging.getLogger(__name__)

TYPING_REFRESH_SECONDS = 4.0


@dataclass
class Steward:
    settings: Settings
    stores: Stores
    clock: Clock
    runner: TurnRunner
    courier: Courier
    tools: ToolRegistry
    started_at: datetime

    @property
    def outbox(self) -> Outbox:
        return self.courier.outbox

    @property
    def switchboard(self) -> Switchboard:
        """Where channels register as they start."""
        assert isinstance(self.courier.outbox, Switchboard)
        return self.courier.outbox

    async def respond(self, request: TurnRequest) -> TurnOutcome:
        """Run a turn for `request` and deliver its reply to `request.address`."""
        async with self._typing(request.address):
            outcome = await self.runner.run(request)
        if outcome.status is TurnStatus.SKIPPED and request.self_initiated:
            await self._tell_owner_budget_spent(request)
            return outcome
        if outcome.text and request.address and request.chat:
            await self.courier.send(
                request.address, request.chat.id, outcome.text, turn_id=outcome.turn_id
            )
        return outcome

    @contextlib.asynccontextmanager
    async def _typing(self, address: Address | None) -> AsyncIterator[None]:
        if address is None:
            yield
            return

        async def keep_typing() -> None:
            while True:
                with contextlib.suppress(Exception):
                    await self.outbox.show_typing(address)
                await asyncio.sleep(TYPING_REFRESH_SECONDS)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tell_owner_budget_spent(self, request: TurnRequest) -> None:
        day = self.runner.day_start(request).date().isoformat()
        if not await self.stores.state.set_if_changed("budget_notice_day", day):
            return
        await self.stores.audit.record(
            "budget.paused", actor="steward", subject=request.kind, day=day
        )
        if request.address and request.chat:
            await self.courier.send(
                request.address,
                request.chat.id,
                f"Today's token budget ({self.settings.daily_token_budget:,} tokens, "
                "STEWARD_DAILY_TOKEN_BUDGET) is spent, so I've paused self-initiated work "
                "(briefings, check-ins) until tomorrow. Messages from you still get answers.",
            )
