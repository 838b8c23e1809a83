"""The console opened by a name of its own (`STEWARD_PUBLIC_URL=http://steward.localhost:…`),
as the README advises: browsers send a host's cookies to every port of it, so another web app
the owner opens at 127.0.0.1 received the console's session cookie (review 115). Under its own
name the console works as before, and that app gets no cookie."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from harness import free_port
from test_web_browser import World, _need_browser, chromium, css, wait_for


@pytest.fixture(params=["steward.localhost", "127.0.0.1"])
def named_world(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[World]:
    """The console under its own name, and (the README's warning) under 127.0.0.1."""
    _need_browser()
    port = free_port()
    world = World(tmp_path / "data", port, public_url=f"http://{request.param}:{port}")
    try:
        yield world
    finally:
        world.close()


def _other_app(seen: list[str]) -> int:
    """Any other web app on 127.0.0.1 that the owner opens: it records the cookies it gets."""
    loop = asyncio.new_event_loop()
    ready: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie", "(none)"))
        return web.Response(text="<h1>another local app</h1>", content_type="text/html")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ready.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True).start()
    deadline = time.monotonic() + 10
    while not ready and time.monotonic() < deadline:
        time.sleep(0.05)
    return ready[0]


def test_under_its_own_name_the_session_cookie_stays_with_the_console(
    named_world: World,
) -> None:
    said = named_world.say("/web")
    name = str(named_world.overrides["public_url"]).split("//")[1].split(":")[0]
    found = re.search(rf"(http://{re.escape(name)}:\d+/login\?token=[A-Za-z0-9_-]+)", said)
    assert found, said
    driver = chromium()
    try:
        driver.get(found.group(1))
        wait_for(lambda: css(driver, "#sign-in button"), on=driver)[0].click()
        wait_for(lambda: css(driver, "nav a"), on=driver)  # signed in: the console's pages
        assert driver.get_cookie("steward_session") is not None
        seen: list[str] = []
        driver.get(f"http://127.0.0.1:{_other_app(seen)}/")
        wait_for(lambda: seen)
        shared = name == "127.0.0.1"  # every port of the host gets its cookies
        assert ("steward_session" in seen[0]) is shared, seen
    finally:
        driver.quit()
