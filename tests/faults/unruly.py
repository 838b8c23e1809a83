"""FakeTelegram with two more misbehaviours: a dropped connection (the socket closed before any
answer) and a slow answer, each for the next N calls to a method."""

from __future__ import annotations

import asyncio

from aiohttp import web
from fakes.telegram import ApiCall, FakeTelegram


class UnrulyTelegram(FakeTelegram):
    def __init__(self) -> None:
        super().__init__()
        self._drops: dict[str, int] = {}
        self._delays: dict[str, list[float]] = {}
        self.dropped: list[str] = []

    def drop_next(self, method: str, times: int = 1) -> None:
        """Close the connection of the next `times` calls to `method` without answering."""
        self._drops[method.lower()] = self._drops.get(method.lower(), 0) + times

    def slow_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls to `method` only after `seconds`."""
        self._delays.setdefault(method.lower(), []).extend([seconds] * times)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.path.rsplit("/", 1)[-1].lower()
        if self._drops.get(method):
            self._drops[method] -= 1
            self.dropped.append(method)
            self.calls.append(ApiCall(method, {}, status=-1))
            self._notify()
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if delays := self._delays.get(method):
            await asyncio.sleep(delays.pop(0))
        return await super()._handle(request)
