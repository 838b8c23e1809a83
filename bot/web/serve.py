"""Starting the console: mount it on the one HTTP server and start that server (which, before
the console, started only when a webhook channel needed it). A port already in use is a warning,
never a reason for Steward not to run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from agent.core import Steward
from bot.errors import HttpServerError
from bot.http import HttpServer
from bot.web.auth import BASE_URL_STATE, DOWN_STATE, STARTING

__all__ = ["console_starting", "start_console"]

log = logging.getLogger(__name__)


async def console_starting(steward: Steward) -> None:
    """Before the channels start: the console starts only after the warm-up (up to 15 s), and
    until it has tried its port /web answered from the last run's record (R239: a link to a
    port another program now held, or "cannot listen" after the port was changed)."""
    if steward.settings.web:
        await _down(steward, STARTING)


async def start_console(steward: Steward, http: HttpServer, channels: Sequence[Any]) -> Any:
    """The running `WebConsole`, or None (STEWARD_WEB=off, the port is taken, or it failed:
    the console never takes Steward down with it)."""
    try:
        return await _start(steward, http, channels)
    except Exception:
        log.exception("the web console did not start")
        await _down(steward, "it failed to start (see Steward's log)")
        return None


async def _start(steward: Steward, http: HttpServer, channels: Sequence[Any]) -> Any:
    settings = steward.settings
    if not settings.web:
        return None
    from bot.web.console import WebConsole  # aiohttp and Jinja2: only when the console runs
    from bot.web.deps import WebDeps

    started = {str(getattr(c, "name", "")) for c in channels}
    failed = {
        event.subject: "did not start (see the log)"
        for event in await steward.stores.audit.recent(50, kind="channel.failed")
        if event.at >= steward.started_at.isoformat()[:19] and event.subject not in started
    }
    console = WebConsole(
        WebDeps.of(steward, channels, failed), listen_host=http.host, port=http.port
    )
    # before the server starts: no request finds it missing
    http.serve_rest(console.handle, lambda host: console.perimeter.host_ok(host))
    try:
        await http.start()
    except HttpServerError as exc:
        http.serve_rest(None)
        log.warning("the web console did not start: %s", exc)
        await _down(steward, str(exc))
        return None
    host, port = http.host, http.port
    if http.url.rsplit(":", 1)[-1].isdigit():  # the real port, when 0 was asked for
        port = int(http.url.rsplit(":", 1)[-1])
        console.listen_on(host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    await console.record_base_url(f"http://{shown}:{port}")
    await steward.stores.state.set(DOWN_STATE, "")
    log.info("web console on http://%s:%d (send /web in chat for a login link)", shown, port)
    return console


async def _down(steward: Steward, why: str) -> None:
    """The console is not running: /web and `steward web-link` say so instead of a link (R179:
    a link to a port another program held, or to the last run's port, which it was handed)."""
    with contextlib.suppress(Exception):
        await steward.stores.state.set(BASE_URL_STATE, "")
        await steward.stores.state.set(DOWN_STATE, why)
