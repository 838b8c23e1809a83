"""What forgetting left behind (R256): the `/memory search` the owner typed to find a secret
pasted by mistake kept the secret, and the WAL kept forgotten words while a backup read the
database (emptying it waited the 5 s busy timeout with every chat held, then gave up)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, running_steward, until
from test_forget_copies import files_holding, live_rows

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM

SECRET = "hunter2-Xq9vLp"


def quiet(request: RecordedRequest) -> Reply:
    """A model that saves nothing: the pasted message is the only copy of the secret."""
    if request.system_text == EXTRACTION_SYSTEM:
        return Reply.text('{"memories": []}')
    if request.system_text == COMPACTION_SYSTEM:
        return Reply.text(json.dumps({"summary": "chat", "facts": []}))
    return Reply.text("Okay.")


async def _ready(h: Harness) -> None:
    assert h.steward.memory is not None
    await h.steward.memory.start()
    async with asyncio.timeout(60):
        await h.steward.memory.wait_ready()


async def _forget_found(h: Harness, query: str) -> str:
    """README's way: search for its words, forget each message found."""
    found = await h.say(f"/memory search {query}")
    numbers = re.findall(r"message #(\d+)", found)
    assert numbers, found
    return "\n".join([await h.say(f"/memory forget {n}") for n in numbers])


async def test_the_search_that_found_a_secret_forgets_it_too(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(quiet)
    data = tmp_path / "data"
    async with running_steward(data, fake_model.base_url) as h:
        await _ready(h)
        # searched before it was pasted: the answer quotes the words, in the case typed
        missed = await h.say("/memory search XQ9VLP")
        assert "No memories or messages match “XQ9VLP”" in missed, missed
        await h.say(f"oops wrong window: the vpn password is {SECRET}")
        await h.say("/memory search zebra stripes")
        assert "Forgotten" in await _forget_found(h, SECRET)
        assert live_rows(h.settings.database_path, SECRET) == []
        texts = [m.text for m in await h.steward.stores.messages.all()]
        assert [t for t in texts if "xq9vlp" in t.casefold()] == [], texts
        assert texts.count("/memory search (forgotten on request)") == 2, texts
        assert "No memories or messages match “(forgotten on request)”." in texts, texts
        assert "/memory search zebra stripes" in texts  # words it does not hold: kept
        await until(lambda: not files_holding(data, SECRET.encode()), "the WAL emptied", 10)


async def test_a_reader_holding_the_database_neither_stalls_a_forget_nor_keeps_the_words(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """`wal_checkpoint(TRUNCATE)` waited the busy timeout for a backup's read transaction,
    every chat held meanwhile, then answered busy and nothing tried again."""
    fake_model.on_request(quiet)
    data = tmp_path / "data"
    async with running_steward(data, fake_model.base_url) as h:
        await _ready(h)
        await h.say(f"the alarm code is {SECRET}, keep it")
        wal = f"{h.settings.database_path}-wal"
        with closing(sqlite3.connect(h.settings.database_path, isolation_level=None)) as reader:
            reader.execute("BEGIN")
            reader.execute("SELECT COUNT(*) FROM messages").fetchone()  # a backup reading
            started = time.monotonic()
            assert "Forgotten" in await _forget_found(h, "alarm code")
            took = time.monotonic() - started
            assert took < 3, f"the forget took {took:.1f} s: it waited for the reader"
            assert wal in files_holding(data, SECRET.encode())  # kept while the reader reads
            reader.execute("COMMIT")
        # tried again in the background, and emptied once the reader is done
        await until(lambda: not files_holding(data, SECRET.encode()), "the WAL emptied", 15)
        assert _size(wal) == 0


def _size(path: str) -> int:
    return Path(path).stat().st_size
