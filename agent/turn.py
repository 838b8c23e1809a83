"""The agent turn: context → model → tools → … → a reply, within a step limit.

A turn is recorded in SQLite when it starts (status `running`) and when it ends, with its token
usage, cost and transcript, so a crash leaves it visible as interrupted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.context import ContextBuilder
from agent.model import Model, ModelReply, ModelUnavailable
from agent.policy import Decision, Policy
from agent.pricing import estimate_cost
from agent.tools.registry import ToolContext, ToolDeps, ToolRegistry, ToolResult
from agent.types import TurnRequest
from memory.turns import TokenUsage, TurnStatus

__all__ = ["NO_API_KEY_REPLY", "TurnOutcome", "TurnRunner"]

log = logging.getLogger(__name__)

NO_API_KEY_REPLY = (
    "I can't think yet: no model API key is configured. Put ANTHROPIC_API_KEY=sk-ant-... "
    "in the .env file next to where you run Steward (see .env.example), then restart it. "
    "Commands such as /help and /status work without it."
)


@dataclass(frozen=True)
class TurnOutcome:
    text: str
    status: TurnStatus
    turn_id: int | None
    usage: TokenUsage
    steps: int


class TurnRunner:
    def __init__(
        self,
        *,
        deps: ToolDeps,
        model: Model | None,
        tools: ToolRegistry,
        policy: Policy,
        context: ContextBuilder,
        max_steps: int,
        daily_token_budget: int,
    ) -> None:
        self._deps = deps
        self._stores = deps.stores
        self._clock = deps.clock
        self._model = model
        self._tools = tools
        self._policy = policy
        self._context = context
        self._max_steps = max_steps
        self._daily_token_budget = daily_token_budget

    @property
    def model_name(self) -> str:
        return self._model.name if self._model else "(not configured)"

    async def run(self, request: TurnRequest) -> TurnOutcome:
        if self._model is None:
            return TurnOutcome(NO_API_KEY_REPLY, TurnStatus.SKIPPED, None, TokenUsage(), 0)
        if request.self_initiated and await self.over_budget(request):
            return TurnOutcome("", TurnStatus.SKIPPED, None, TokenUsage(), 0)
        turn_id = await self._stores.turns.start(
            kind=request.kind,
            model=self._model.name,
            chat_id=request.chat.id if request.chat else None,
            user_id=request.user.id,
            message_id=request.message_id,
            tainted=request.tainted,
        )
        prompt = await self._context.build(request)
        messages = prompt.messages
        ctx = ToolContext(
            deps=self._deps,
            user=request.user,
            chat=request.chat,
            address=request.address,
            turn_id=turn_id,
            tainted=request.tainted,
        )
        usage = TokenUsage()
        steps = 0
        reply: ModelReply | None = None
        try:
            while True:
                reply = await self._model.complete(
                    system=prompt.system,
                    messages=_with_moving_breakpoint(messages),
                    tools=self._tools.schemas(),
                )
                usage += reply.usage
                steps += 1
                messages.append(reply.as_message())
                if reply.stop_reason != "tool_use" or not reply.tool_calls:
                    status, text = TurnStatus.COMPLETED, reply.text
                    break
                results = [
                    await self._call(call.id, call.name, call.input, ctx)
                    for call in reply.tool_calls
                ]
                messages.append({"role": "user", "content": results})
                if steps >= self._max_steps:
                    status = TurnStatus.STEP_LIMIT
                    text = (reply.text + "\n\n" if reply.text else "") + (
                        f"I stopped after {steps} steps, the most one turn may take "
                        "(STEWARD_MAX_STEPS). Tell me to continue if you want me to go on."
                    )
                    break
        except ModelUnavailable as exc:
            log.warning("turn %s: model unavailable: %s (%s)", turn_id, exc.reason, exc.status)
            await self._finish(turn_id, TurnStatus.FAILED, steps, usage, messages, exc.reason)
            text = (
                f"Sorry, I couldn't answer: {exc.reason}. I tried several times with backoff "
                "and gave up for now; please try again in a little while."
            )
            return TurnOutcome(text, TurnStatus.FAILED, turn_id, usage, steps)
        if not text.strip():
            text = "(done)" if status is TurnStatus.COMPLETED else text
        await self._finish(turn_id, status, steps, usage, messages, None)
        return TurnOutcome(text, status, turn_id, usage, steps)

    async def _call(
        self, call_id: str, name: str, arguments: dict[str, Any], ctx: ToolContext
    ) -> dict[str, Any]:
        """Run one tool call through the policy; always returns a tool_result block."""
        audit = self._stores.audit
        actor = f"turn:{ctx.turn_id}"
        tool = self._tools.get(name)
        if tool is None:
            await audit.record("tool.unknown", actor=actor, subject=name)
            return _result(call_id, ToolResult(f"there is no tool named {name!r}", is_error=True))
        verdict = self._policy.decide(tool, arguments, ctx)
        await audit.record(
            "tool.requested",
            actor=actor,
            subject=name,
            risk=tool.risk.value,
            decision=verdict.decision.value,
            reason=verdict.reason,
            tainted=ctx.tainted,
        )
        if verdict.decision is Decision.DENY:
            return _result(call_id, ToolResult(f"refused: {verdict.reason}", is_error=True))
        if verdict.decision is Decision.ASK:
            return _result(
                call_id,
                ToolResult(
                    f"refused: {name} needs the owner's approval ({verdict.reason}), and this "
                    "Steward cannot ask for approvals yet. Tell the user what you wanted to do.",
                    is_error=True,
                ),
            )
        result = await tool.run(ctx, arguments)
        await audit.record(
            "tool.ran",
            actor=actor,
            subject=name,
            is_error=result.is_error,
            result_chars=len(result.content),
        )
        return _result(call_id, result)

    async def _finish(
        self,
        turn_id: int,
        status: TurnStatus,
        steps: int,
        usage: TokenUsage,
        messages: list[dict[str, Any]],
        error: str | None,
    ) -> None:
        assert self._model is not None
        await self._stores.turns.finish(
            turn_id,
            status=status,
            steps=steps,
            usage=usage,
            cost_usd=estimate_cost(self._model.name, usage),
            transcript=json.dumps(messages, ensure_ascii=False),
            error=error,
        )

    def day_start(self, request: TurnRequest) -> datetime:
        zone = ZoneInfo(request.user.timezone or self._deps.timezone)
        today = self._clock.now().astimezone(zone).date()
        return datetime.combine(today, time(0), zone)

    async def over_budget(self, request: TurnRequest) -> bool:
        """True when today's tokens passed STEWARD_DAILY_TOKEN_BUDGET (0 means no budget)."""
        if self._daily_token_budget <= 0:
            return False
        since = self.day_start(request)
        spent = await self._stores.turns.tokens_since(since)
        return spent >= self._daily_token_budget

    def week_start(self, request: TurnRequest) -> datetime:
        day = self.day_start(request)
        return day - timedelta(days=day.weekday())


def _result(call_id: str, result: ToolResult) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": call_id,
        "content": result.content,
    }
    if result.is_error:
        block["is_error"] = True
    return block


def _with_moving_breakpoint(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages with a cache breakpoint on the newest block, so each tool step of a turn
    reads the steps before it from the cache (the stored messages stay unmarked)."""
    *earlier, last = messages
    blocks = list(last["content"])
    blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    return [*earlier, {**last, "content": blocks}]
