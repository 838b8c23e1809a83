"""Side model calls: one tool-less question to the model outside a chat turn, recorded as a turn.

Memory upkeep (extraction, compaction) asks the model a one-off question and reads a JSON answer.
Each such call is recorded as a turn of kind `memory`, so /usage and the daily budget count it,
and with the label of what it read, so a call over outside content is a tainted turn on record.
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

__all__ = ["SideCall", "parse_json"]


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
        raised."""
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
        await self._turns.finish(
            turn_id,
            status=TurnStatus.COMPLETED,
            steps=1,
            usage=reply.usage,
            cost_usd=estimate_cost(self._model.name, reply.usage),
            # the answer only: the prompt is the stored conversation again (as for chat turns)
            transcript=json.dumps([reply.as_message()], ensure_ascii=False),
            label=label,
        )
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
