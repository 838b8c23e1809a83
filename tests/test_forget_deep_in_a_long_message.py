"""A secret pasted past the first 4,000 characters of a message can be found and forgotten.

Review 36: the README's way to take back a secret pasted by mistake is `/memory search` for its
words, then `/memory forget` of the message found. The search index keeps a message's first
4,000 characters, so a password at the end of a pasted log was "not found": it stayed in the
message log and went to the model with every later turn's history."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import running_steward
from test_r256_forget_leftovers import quiet
from test_web_security import Web, web  # noqa: F401

SECRET = "hunter2-Xq9vLp"


def _log(lines: int) -> str:
    return "\n".join(f"2026-12-01 10:{i % 60:02d} INFO worker ok step {i}" for i in range(lines))


async def test_a_secret_deep_in_a_long_paste_is_found_and_forgotten(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(quiet)
    async with running_steward(tmp_path / "data", fake_model.base_url) as h:
        assert h.steward.memory is not None
        await h.steward.memory.start()
        async with asyncio.timeout(60):
            await h.steward.memory.wait_ready()
        log = _log(150)
        assert 4000 < len(log) < 8000
        # "İ" is two characters lower-cased by Python, one by SQLite: the place said is the text's
        pasted = f"why does this fail? İİİİ\n{log}\nexport VPN_PASSWORD={SECRET}"
        await h.say(pasted)
        await h.say("Also: short note, the code word is gannet.")
        found = await h.say(f"/memory search {SECRET.upper()}")  # any case
        assert "Found further into long messages" in found, found
        numbers = re.findall(r"message #(\d+)", found)
        assert len(numbers) == 1, found
        at = pasted.find(SECRET) + 1
        assert f"the words are at character {at:,} of {len(pasted):,}" in found
        assert "why does this fail? İİİİ" in found  # its opening, as search shows a long message
        assert SECRET not in found.split("\n", 1)[1]  # not quoted again: the number is enough
        assert len(found) < 1000
        # a word only in the first 4,000 characters is found by search itself, once
        early = await h.say("/memory search step 3")
        assert "Found further into long messages" not in early, early
        # too short to look for as they are: "the" would be in every long message
        assert "No memories or messages match" in await h.say("/memory search zzq")
        forgot = await h.say(f"/memory forget {numbers[0]}")
        assert "Forgotten" in forgot, forgot
        asked = len(fake_model.requests)
        await h.say("and now?")
        later = [json.dumps(r.body) for r in fake_model.requests[asked:]]
        assert later and not any(SECRET in body for body in later)
        with closing(sqlite3.connect(h.settings.database_path)) as conn:
            [(left,)] = conn.execute(  # the commands that found it and their answers too
                "SELECT count(*) FROM messages WHERE instr(lower(text), lower(?)) > 0",
                (SECRET,),
            ).fetchall()
        assert left == 0
        again = await h.say(f"/memory search {SECRET}")
        assert "No memories or messages match" in again, again


async def test_the_consoles_memory_search_finds_it_too(web: Web) -> None:  # noqa: F811
    memory = web.h.steward.memory
    assert memory is not None
    await memory.start()
    async with asyncio.timeout(60):
        await memory.wait_ready()
    await web.h.say(f"why does this fail?\n{_log(150)}\nexport VPN_PASSWORD={SECRET}")
    cookie = await web.login()
    _, page = await web.request("GET", f"/memory?q={SECRET}", cookie=cookie)
    cards = re.findall(r'<p class="text"><a href="/memory/\d+">#\d+</a> ([^\n]*)', page)
    assert any(card.startswith("why does this fail?") for card in cards), cards
