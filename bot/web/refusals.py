"""Refusals a page or a stranger can cause, audited without letting anyone fill the audit log.

Any page the owner opens, and anyone who can reach the port, can POST to /login: a foreign
Origin or an unknown token is refused, and each refusal used to be a chained audit event (a
commit and an `audit.head` write): 350 requests wrote 350 events in 1.3 s and pushed every real
event off the console's activity page (review 63). Now a kind is audited at most once a
minute, the event counting the refusals since the last one (those held back are written a
minute on even if no other comes; a stop within that minute loses their count); the log line
for a request naming another host is limited the same way. Refusals with a person behind them
(a used or expired link) are audited one by one as before; a signed-in session's requests
with a foreign Origin are counted per person, like anonymous ones: a page on another port of
the same host sends the session's cookie (SameSite ignores ports), and 300 of its requests
wrote 300 events (review 79).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

__all__ = ["AnonymousRefusals"]

log = logging.getLogger(__name__)

WINDOW = timedelta(minutes=1)


class _Audit(Protocol):
    async def record(
        self, kind: str, /, *, actor: str, subject: str = "", **detail: Any
    ) -> Any: ...


class AnonymousRefusals:
    def __init__(self, audit: _Audit, now: Callable[[], datetime]) -> None:
        self._audit = audit
        self._now = now
        self._last: dict[str, datetime] = {}
        self._since: dict[str, int] = {}  # refusals of a kind not yet in an event
        self._first: dict[str, datetime] = {}  # when the first of those came
        self._flushes: dict[str, asyncio.Task[None]] = {}
        self.flush_after = WINDOW.total_seconds()
        """Seconds after which refusals held back are written even if no other comes (a burst
        then silence is counted, not left waiting for the next refusal, review 65)."""

    def _due(self, kind: str) -> int:
        """The refusals of `kind` to report now, this one included (0: within the window)."""
        count = self._since.get(kind, 0) + 1
        now, last = self._now(), self._last.get(kind)
        if last is not None and now - last < WINDOW:
            self._since[kind] = count
            self._first.setdefault(kind, now)
            return 0
        self._last[kind], self._since[kind] = now, 0
        self._first.pop(kind, None)
        return count

    async def record(self, kind: str, *, subject: str = "", actor: str = "", **detail: Any) -> None:
        """Audit a refusal of `kind`, at most once a minute for each actor, with the count."""
        key = f"{kind}|{actor}"
        held = self._first.get(key)
        count = self._due(key)
        if count:
            if held is not None:
                detail["first_at"] = held.isoformat()
            await self._audit.record(kind, actor=actor, subject=subject, count=count, **detail)
        elif key not in self._flushes:
            self._flushes[key] = asyncio.create_task(self._flush(kind, key, actor, subject, detail))

    async def _flush(
        self, kind: str, key: str, actor: str, subject: str, detail: dict[str, Any]
    ) -> None:
        try:
            await asyncio.sleep(self.flush_after)
            count, first = self._since.get(key, 0), self._first.pop(key, None)
            if count:
                self._since[key], self._last[key] = 0, self._now()
                when = {"first_at": first.isoformat()} if first is not None else {}
                await self._audit.record(
                    kind, actor=actor, subject=subject, count=count, **detail, **when
                )
        finally:
            self._flushes.pop(key, None)

    def warn(self, message: str, *args: Any) -> None:
        """A log line for an anonymous refusal, at most once a minute, with the count."""
        count = self._due("log:" + message)
        if count:
            log.warning(message + " (%d such since the last line)", *args, count)
