"""The console's memory pages when the memory changed in chat while a page was open (R265).

A correction typed on a page opened before the memory was corrected, or forgotten, in chat
was thrown away (the console said where to go, without the words); and "Older memories"
went back to the most recent when the last memory its page listed was forgotten."""

from __future__ import annotations

import html as markup
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from harness import running_steward
from test_web_security import Web
from trust_world import obedient_model

from bot.http import HttpServer
from bot.web.serve import start_console
from memory.clock import FrozenClock
from memory.longterm import Source, Trust


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Web]:
    clock = FrozenClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    async with FakeAnthropic() as model:
        model.on_request(obedient_model)
        async with running_steward(tmp_path / "data", model.base_url, clock=clock) as h:
            http = HttpServer("127.0.0.1", 0)
            assert await start_console(h.steward, http, [h.channel]) is not None
            try:
                yield Web(h, http.url, clock, http)
            finally:
                await http.stop()


def _textarea(html: str, action: str) -> str:
    """The text in the form posting to `action`."""
    found = re.search(
        rf'<form method="post" action="{re.escape(action)}".*?<textarea[^>]*>(.*?)</textarea>',
        html,
        re.S,
    )
    assert found, html
    return markup.unescape(found.group(1))


async def test_a_correction_from_a_stale_page_keeps_what_was_typed(console: Web) -> None:
    web = console
    assert "Remembered #1" in await web.h.say("/remember My gym is FitCo on 5th")
    cookie = await web.login()
    token = await web.csrf(cookie, "/memory/1")

    async def correct(number: int, text: str) -> tuple[str, str]:
        response, _ = await web.request(
            "POST", f"/memory/{number}/correct", cookie=cookie, headers=web.origin(),
            data={"csrf": token, "text": text},
        )  # fmt: skip
        assert response.status == 303
        where = response.headers["Location"]
        _, html = await web.request("GET", where, cookie=cookie)
        return where, html

    # corrected in chat while the page was open: #2's page, its form holding the typed words
    assert "replaces" in await web.h.say("/memory correct 1 My gym is FitCo on 7th")
    typed = "My gym is FitCo on 6th Avenue near the park"
    where, html = await correct(1, typed)
    assert where == "/memory/2"
    assert "#1 was already replaced by #2; correct that one." in html
    assert _textarea(html, "/memory/2/correct") == typed
    _, again = await web.request("GET", "/memory/2", cookie=cookie)  # shown once
    assert _textarea(again, "/memory/2/correct") == "My gym is FitCo on 7th"
    where, _ = await correct(2, typed)
    live = [m.text for m in await web.h.memories() if m.active]
    assert typed in live and "My gym is FitCo on 7th" not in live

    # forgotten in chat while the page was open: /memory, the words in a form to remember
    assert "Remembered #4" in await web.h.say("/remember Parking spot B12")
    assert "Forgotten" in await web.h.say("/memory forget 4")
    where, html = await correct(4, "Parking spot is B14 now")
    assert where == "/memory"
    assert "You have no memory #4" in html
    assert _textarea(html, "/memory-remember") == "Parking spot is B14 now"
    response, _ = await web.request(
        "POST", "/memory-remember", cookie=cookie, headers=web.origin(),
        data={"csrf": token, "text": "Parking spot is B14 now"},
    )  # fmt: skip
    assert response.status == 303
    _, html = await web.request("GET", response.headers["Location"], cookie=cookie)
    assert "Remembered #" in html
    [kept] = [m for m in await web.h.memories() if m.text == "Parking spot is B14 now"]
    assert kept.active and kept.source is Source.OWNER_SAID and kept.trust is Trust.TRUSTED


async def test_older_memories_go_on_after_the_last_one_listed_was_forgotten(
    console: Web,
) -> None:
    web = console
    for i in range(45):
        await web.h.say(f"/remember item number {i} is here")
        web.clock.advance(timedelta(minutes=1))
    cookie = await web.login()

    def listed(html: str) -> list[int]:
        return [int(n) for n in re.findall(r'id="memory-(\d+)"', html)]

    def older(html: str) -> str:
        found = re.search(r'href="(/memory\?before=[^"]+)" id="older-memories"', html)
        assert found, html
        return markup.unescape(found.group(1))

    _, first = await web.request("GET", "/memory", cookie=cookie)
    assert listed(first) == list(range(45, 25, -1))
    _, second = await web.request("GET", older(first), cookie=cookie)
    assert listed(second) == list(range(25, 5, -1))
    link = older(second)
    assert "before=6" in link
    assert "Forgotten" in await web.h.say("/memory forget 6")
    _, third = await web.request("GET", link, cookie=cookie)
    assert "no-such-memory" not in third
    assert listed(third) == [5, 4, 3, 2, 1]
    assert "Memories after #6" in third
