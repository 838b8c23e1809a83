"""A model that records how long each call took (the web console's latency chart).

It wraps any `Model` at the composition root, so the turn loop does not change: `complete` and,
when the model has one, `stream` are timed; whatever else the wrapped model offers (`close`) is
passed through untouched. A failure to record a timing is logged and never fails the call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from agent.model import Model, ModelReply
from memory.web_reads import ModelCallLog

__all__ = ["TimedModel"]

log = logging.getLogger(__name__)


class TimedModel:
    def __init__(self, model: Model, calls: ModelCallLog) -> None:
        self._model = model
        self._calls = calls
        inner_stream = getattr(model, "stream", None)
        if callable(inner_stream):  # offered only when the wrapped model streams
            self.stream = self._timed(inner_stream)

    @property
    def name(self) -> str:
        return self._model.name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._model, attribute)

    async def complete(
        self,
        *,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> ModelReply:
        call = self._timed(self._model.complete)
        return await call(system=system, messages=messages, tools=tools)

    def _timed(self, method: Callable[..., Awaitable[ModelReply]]) -> Callable[..., Any]:
        async def timed(**kwargs: Any) -> ModelReply:
            started = time.monotonic()
            reply: ModelReply | None = None
            try:
                reply = await method(**kwargs)
                return reply
            finally:
                await self._record(round((time.monotonic() - started) * 1000), reply)

        return timed

    async def _record(self, elapsed_ms: int, reply: ModelReply | None) -> None:
        try:
            await self._calls.record(
                self._model.name,
                elapsed_ms,
                ok=reply is not None,
                input_tokens=reply.usage.input_tokens if reply else 0,
                output_tokens=reply.usage.output_tokens if reply else 0,
            )
        except Exception:
            log.exception("could not record a model call's latency")
