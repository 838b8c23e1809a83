"""A "working on it" mark on Slack: Slack has no typing indicator for bots, so while a turn runs
past a moment, the message it answers carries a reaction (⏳), taken off when the turn ends.

A quick answer leaves no trace (the mark comes only after `WORKING_AFTER` seconds). The mark
needs the `reactions:write` scope (in slack-manifest.yaml); an app installed without it answers
`missing_scope`, and the marks stop for the rest of the run, with one line in the log: the
answers themselves are unaffected. Any other failure (a deleted message, a network error) costs
that one mark only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["WORKING_AFTER", "WORKING_EMOJI", "WorkingMarks"]

log = logging.getLogger(__name__)

WORKING_AFTER = 2.0
"""Seconds a turn runs before its message is marked."""
WORKING_EMOJI = "hourglass_flowing_sand"
_NOT_ALLOWED = frozenset(
    {"missing_scope", "not_allowed_token_type", "no_permission", "restricted_action"}
)
"""Answers that say no mark can ever be added with this token."""


class WorkingMarks:
    def __init__(
        self, client: Callable[[], AsyncWebClient | None], *, after: float = WORKING_AFTER
    ) -> None:
        self._client = client
        self.after = after
        self.enabled = True

    @contextlib.asynccontextmanager
    async def around(self, channel: str, ts: str) -> AsyncIterator[None]:
        """Marks the message `ts` in `channel` while the body runs past `after` seconds."""
        if not (self.enabled and channel and ts):
            yield
            return
        adding = False  # from the moment the add is asked, it runs to its end

        async def mark_later() -> bool:
            nonlocal adding
            await asyncio.sleep(self.after)
            adding = True
            return await self._call("reactions_add", channel, ts)

        task = asyncio.create_task(mark_later(), name="slack-working-mark")
        try:
            yield
        finally:
            if not adding:
                task.cancel()
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is None and task.result():
                await self._call("reactions_remove", channel, ts)

    async def _call(self, method: str, channel: str, ts: str) -> bool:
        client = self._client()
        if client is None or not self.enabled:
            return False
        try:
            await getattr(client, method)(channel=channel, timestamp=ts, name=WORKING_EMOJI)
            return True
        except SlackApiError as exc:
            error = exc.response.data.get("error") if isinstance(exc.response.data, dict) else ""
            if error in _NOT_ALLOWED:
                self.enabled = False
                log.warning(
                    "Slack: no 'working' mark on messages (%s: the app needs the reactions:write "
                    "scope; see slack-manifest.yaml)",
                    error,
                )
            elif error not in ("already_reacted", "no_reaction"):
                log.info("Slack: %s failed: %s", method, error)
            return error == "already_reacted"
        except (TimeoutError, SlackClientError, aiohttp.ClientError, OSError) as exc:
            log.info("Slack: %s failed: %s", method, exc)
            return False
