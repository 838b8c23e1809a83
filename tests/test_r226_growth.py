"""R226: what a year of daily use costs the console. Every load of `/` and `/activity` (and
every `/audit`) re-hashed the whole audit chain, seconds a load at 100,000-300,000 events; and
`/usage` counted only the newest 2,000 model calls of its 14 days."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from harness import Harness, running_steward

from bot.http import HttpServer
from bot.web.serve import start_console
from memory.clock import FrozenClock, iso

LINK = re.compile(r"(http://127\.0\.0\.1:\d+/login\?token=[A-Za-z0-9_-]+)")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Console:
    """The owner's browser on the real console over loopback."""

    def __init__(self, h: Harness, base: str) -> None:
        self.h, self.base, self.cookie = h, base, ""

    async def login(self) -> None:
        link = LINK.search(await self.h.say("/web"))
        assert link
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as c:
            async with c.get(link.group(1)) as r:
                token = re.search(r'name="token" value="([^"]+)"', await r.text())
            assert token
            async with c.post(
                link.group(1).split("?")[0],
                data={"token": token.group(1)},
                headers={"Origin": self.base},
                allow_redirects=False,
            ) as r:
                self.cookie = r.cookies["steward_session"].value

    async def text(self, path: str) -> str:
        """The page's words, tags and runs of spaces squeezed out."""
        headers = {"Cookie": f"steward_session={self.cookie}"}
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as c,
            c.get(self.base + path, headers=headers) as r,
        ):
            assert r.status == 200, path
            html = await r.text()
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    async with running_steward(
        tmp_path / "data", None, clock=FrozenClock(NOW), STEWARD_EMBEDDER="none"
    ) as h:
        http = HttpServer("127.0.0.1", 0)
        assert await start_console(h.steward, http, [h.channel]) is not None
        try:
            c = Console(h, http.url)
            await c.login()
            yield c
        finally:
            await http.stop()


async def test_page_loads_hash_only_what_is_new_and_still_name_an_edited_event(
    console: Console,
) -> None:
    """100,000 events: the first load hashes them all; three more with nothing appended hash a
    handful. Events appended later are checked, an edit of one through Steward's own connection
    is named, and so is an edit of an old event (inside the verified prefix) from outside."""
    h = console.h
    audit = h.steward.stores.audit
    subjects = [f"test:c1#{i}" for i in range(100_000)]
    for start in range(0, len(subjects), 20_000):
        await audit.record_many("message.sent", actor="steward", subjects=subjects[start:][:20_000])
    assert "Audit chain verified" in await console.text("/activity")
    assert audit.hashed > 100_000  # the first check of the process is whole
    before = audit.hashed
    for path in ("/", "/activity", "/activity?before=50000"):
        text = await console.text(path)
        assert "BROKEN" not in text and "does not verify" not in text, path
    assert audit.hashed - before < 100, f"{audit.hashed - before:,} events hashed for three loads"

    # new events after the verified prefix are walked; one edited in place is named
    await audit.record_many("message.sent", actor="steward", subjects=["a", "b", "c"])
    [last] = await audit.recent(1)
    await h.steward.stores.db.execute(
        "UPDATE audit_events SET subject = 'forged' WHERE id = ?", (last.id - 1,)
    )
    assert f"event {last.id - 1}: its content does not match its MAC" in await console.text("/")
    assert f"BROKEN at event {last.id - 1}" in await console.text("/activity")

    # an old event edited from outside (another process, the sqlite3 shell) is named at once
    h.edit_database("UPDATE audit_events SET subject = 'forged' WHERE id = 123")
    assert "event 123: its content does not match its MAC" in await console.text("/")


async def test_usage_page_counts_every_model_call_of_its_fourteen_days(console: Console) -> None:
    """200 calls a day for 14 days (2,800): the page counts them all and charts every day's
    latency (the first four days at 1,000 ms; a LIMIT of 2,000 dropped them)."""
    rows = []
    for day in range(14):
        midnight = (NOW - timedelta(days=13 - day)).replace(hour=0)
        for i in range(200):
            at = midnight + timedelta(minutes=i)
            rows.append((iso(at), "claude", 1000 if day < 4 else 100, 1, 10, 10))
    with closing(sqlite3.connect(console.h.settings.database_path)) as conn, conn:
        conn.executemany(
            "INSERT INTO model_calls (at, model, latency_ms, ok, input_tokens, output_tokens)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    text = await console.text("/usage")
    said = re.search(r"(\d[\d,]*) calls", text)
    assert said, text[:600]
    assert said.group(1).replace(",", "") == "2800", f"the page says {said.group(0)!r}"
    assert "1,000 ms" in text  # the oldest days' p50 and p95 are charted
