"""Side model calls: one tool-less question to the model outside a chat turn, recorded as a turn.

Memory upkeep (extraction, compaction) asks the model a one-off question and reads a JSON answer.
Each such call is recorded as a turn of kind `memory`, so /usage and the daily budget count it,
and with the label of what it read, so a call over outside content is a tainted turn on record.
An answer the model did not finish (cut by the length limit or a full context, or declined) is
a failed turn, and the caller is told (`CutShort`): R261, its half JSON was recorded completed
and read as "no summary", and compaction asked again after every message.
"""

from __future__ import annotations

import json
from typing import Any

from agent.errors import ModelUnavailable
from agent.model import Model
from agent.pricing import estimate_cost
from memory.labels import TRUSTED, Label
from memory.people import Chat, User
from memory.turns import TokenUsage, TurnLog, TurnStatus

__all__ = ["CUT_SHORT", "CutShort", "SideCall", "parse_json"]

CUT_SHORT = {
    "max_tokens": "the answer was cut off by the length limit (STEWARD_MAX_TOKENS)",
    "model_context_window_exceeded": "the answer was cut off: the model's context was full",
    "refusal": "the model declined to answer",
}
"""The stop reasons of an answer the model did not finish, and what each is said as."""


class CutShort(Exception):
    """The model did not finish its answer (`stop_reason`, one of CUT_SHORT); the call's turn
    (`turn_id`) is recorded failed."""

    def __init__(self, stop_reason: str, turn_id: int) -> None:
        super().__init__(CUT_SHORT.get(stop_reason, stop_reason))
        self.stop_reason = stop_reason
        self.turn_id = turn_id


class SideCall:
    """Asks `model` one question at a time, each recorded in `turns`."""

    def __init__(self, model: Model, turns: TurnLog) -> None:
        self._model = model
        self._turns = turns

    async def ask(
        self,
        system: str,
        prompt: str,
        *,
        chat: Chat | None,
        user: User,
        purpose: str,
        label: Label = TRUSTED,
    ) -> tuple[Any, int]:
        """One call without tools or history; returns (the answer's JSON, the turn's id).
        `purpose` names the call in the turn's error; ModelUnavailable is recorded, then
        raised; an answer the model did not finish is recorded failed, then CutShort raised."""
        turn_id = await self._turns.start(
            kind="memory",
            model=self._model.name,
            chat_id=chat.id if chat else None,
            user_id=user.id,
            message_id=None,
            label=label,
        )
        messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
        try:
            reply = await self._model.complete(
                system=[{"type": "text", "text": system}], messages=messages, tools=[]
            )
        except ModelUnavailable as exc:
            await self._turns.finish(
                turn_id,
                status=TurnStatus.FAILED,
                steps=1,
                usage=TokenUsage(),
                cost_usd=0.0,
                transcript=None,
                label=label,
                error=f"{purpose}: {exc.reason}",
            )
            raise
        cut = reply.stop_reason in CUT_SHORT
        await self._turns.finish(
            turn_id,
            status=TurnStatus.FAILED if cut else TurnStatus.COMPLETED,
            steps=1,
            usage=reply.usage,  # billed all the same
            cost_usd=estimate_cost(self._model.name, reply.usage),
            # the answer only: the prompt is the stored conversation again (as for chat turns)
            transcript=json.dumps([reply.as_message()], ensure_ascii=False),
            label=label,
            error=f"{purpose}: {CUT_SHORT[reply.stop_reason]}" if cut else None,
        )
        if cut:
            raise CutShort(reply.stop_reason, turn_id)
        return parse_json(reply.text), turn_id


def parse_json(text: str) -> Any:
    """The JSON object in a model answer (code fences and surrounding prose tolerated)."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return {}
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return {}
