"""/memory as its owner uses it (review 95): every memory can be listed, not only the newest
hundred (`/memory recent <count> before <id>`, the console's "Older memories"); `/memory show`
names every source (a memory read in an e-mail) and no number the commands do not take;
`/memory forget 1 2 please` does not leave #2 unsaid."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from harness import Harness, running_steward
from test_web_security import Web, web  # noqa: F401  (the fixture)

from agent.memory_view import source_words
from bot.commands.ids import ids_and_skipped, ids_from
from memory.clock import FrozenClock
from memory.longterm import Kind, NewMemory, Source

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OLDER = re.compile(r"Older ones: (/memory recent \d+ before \d+)")


def listed_ids(answer: str) -> list[int]:
    return [int(n) for n in re.findall(r"^#(\d+) ", answer, re.MULTILINE)]


async def remember_notes(h: Harness, count: int) -> None:
    for n in range(1, count + 1):
        assert f"Remembered #{n}" in await h.say(f"/remember Garden note {n}: water the tomatoes")


async def test_every_memory_is_reached_page_by_page(tmp_path: Path) -> None:
    """`/memory recent 100` of 120 said nothing of the oldest twenty, and counts above 100 were
    refused. A frozen clock: every memory saved in the same instant still pages by its id."""
    async with running_steward(tmp_path, None, clock=FrozenClock(T0)) as h:
        await remember_notes(h, 25)
        first = await h.say("/memory recent 10")
        assert first.startswith("The 10 most recent of 25 memories:"), first
        seen = listed_ids(first)
        assert seen == list(range(25, 15, -1))
        command = OLDER.search(first)
        assert command and command.group(1) == "/memory recent 10 before 16", first
        pages = 1
        while command:
            answer = await h.say(command.group(1))
            assert "of 25 memories:" in answer, answer
            seen += listed_ids(answer)
            command = OLDER.search(answer)
            pages += 1
        assert pages == 3 and seen == list(range(25, 0, -1))  # each once, newest first
        assert "Older ones" not in answer  # the last page says nothing of more
        assert "Older ones" not in await h.say("/memory recent 25")  # all of them: no next
        # `/memory` alone (10) and `list` take the same pages
        assert "Older ones: /memory recent 10 before 16" in await h.say("/memory")
        assert listed_ids(await h.say("/memory list before 3")) == [2, 1]
        assert listed_ids(await h.say("/memory list 2 before #20")) == [19, 18]
        assert "that was the oldest" in await h.say("/memory recent 5 before 1")


async def test_a_page_skips_what_was_forgotten_or_replaced(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        await remember_notes(h, 6)
        assert "Forgotten #3" in await h.say("/memory forget 3")
        assert listed_ids(await h.say("/memory recent 10 before 5")) == [4, 2, 1]
        gone = await h.say("/memory recent 10 before 3")  # the page's mark, since forgotten
        assert "no memory #3" in gone and "/memory recent 10" in gone, gone


async def test_paging_usage_errors_answer_with_usage_and_an_example(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        await remember_notes(h, 2)
        for wrong in (
            "/memory recent 10 before soon",
            "/memory recent 101 before 2",
            "/memory recent 10 after 2",
            "/memory recent lots",
        ):
            said = await h.say(wrong)
            assert "Usage: /memory" in said and "Example:" in said, (wrong, said)
            assert "/memory recent 30 before 12" in said, (wrong, said)
        assert "not a count" in await h.say("/memory recent lots")
        assert "no memory #99" in await h.say("/memory recent 10 before 99")


async def test_the_console_lists_older_memories_page_by_page(web: Web) -> None:  # noqa: F811
    """The Memory page showed the newest twenty and no way past them."""
    await remember_notes(web.h, 45)
    cookie = await web.login()
    seen: list[int] = []
    path: str | None = "/memory"
    pages = 0
    while path:
        response, html = await web.request("GET", path, cookie=cookie)
        assert response.status == 200, html[:300]
        seen += [
            int(n) for n in re.findall(r'<li class="card memory[^"]*" id="memory-(\d+)"', html)
        ]
        older = re.search(r'href="(/memory\?before=\d+)" id="older-memories"', html)
        path = older.group(1) if older else None
        pages += 1
    assert pages == 3 and seen == list(range(45, 0, -1))
    assert "Memories after #6 (older" in html
    _, odd = await web.request("GET", "/memory?before=%3Cb%3E", cookie=cookie)  # no id: page 1
    assert "There is no memory #&lt;b&gt; to list from" in odd and "memory-45" in odd


async def test_memory_show_names_a_memory_read_in_an_email(tmp_path: Path) -> None:
    """Source.MAIL had no words in /memory show: "Sorry, something went wrong" (KeyError)."""
    async with running_steward(tmp_path, None) as h:
        assert h.steward.memory is not None
        saved = await h.steward.memory.remember(
            NewMemory(1, "Dentist moved the appointment to 14 May.", source=Source.MAIL)
        )
        shown = await h.say(f"/memory show {saved.memory.id}")
        assert shown.startswith(f"#{saved.memory.id} Dentist moved"), shown
        assert "Source: from an e-mail" in shown and "Trust: untrusted" in shown
        found = await h.say("/memory search dentist appointment")
        assert "from an e-mail" in found, found  # the same words as /memory search


def test_every_source_has_words_and_a_new_one_never_fails() -> None:
    assert all(source_words(s) and source_words(s) != s.value for s in Source)

    class Later(StrEnum):
        CALENDAR = "calendar_event"

    assert source_words(Later.CALENDAR) == "calendar event"  # type: ignore[arg-type]


async def test_forget_with_several_ids_and_a_word_names_the_ids_it_left(tmp_path: Path) -> None:
    """`/memory forget 1 2 please` forgot #1 and said nothing of #2. A number in a remark may
    be no id ("it was 2 days ago"), so the first id only, and the answer names the others."""
    async with running_steward(tmp_path, None) as h:
        await remember_notes(h, 4)
        said = await h.say("/memory forget 1 2 please")
        assert said.startswith("Forgotten #1: Garden note 1"), said
        assert "#2 was not forgotten" in said, said
        assert "(if you meant it too: /memory forget 2)" in said, said
        said = await h.say("/memory forget #3, 4 and 2 now")
        assert "Forgotten #3" in said and "#4 and #2 were not forgotten" in said, said
        assert "(if you meant them too: /memory forget 4 2)" in said
        left = sorted(m.id for m in await h.memories())
        assert left == [2, 4]  # only #1 and #3 went
        both = await h.say("/memory forget 2 4")  # ids only: each of them
        assert "Forgotten #2" in both and "Forgotten #4" in both and "not forgotten" not in both


def test_other_commands_keep_taking_ids_as_they_did() -> None:
    """/goal done and /remind cancel take ids_from as before: all ids, or the first alone."""
    assert ids_from("3 finally!", "?") == [3]
    assert ids_from("2, 3", "?") == [2, 3]
    assert ids_from("#2 and #3", "?") == [2, 3]
    assert ids_and_skipped("1 2 please", "?") == ([1], [2])
    assert ids_and_skipped("1 please 1 2 2", "?") == ([1], [2])
    assert ids_and_skipped("5 6", "?") == ([5, 6], [])


async def test_memory_show_names_no_number_the_commands_do_not_take(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A message row's show said "message 6": the message log's number, which /memory show
    and /memory forget do not take ("You have no memory #6")."""
    fake_model.on_request(lambda r: Reply.text("Noted the alarm code."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert h.steward.memory is not None
        await h.steward.memory.start()
        async with asyncio.timeout(60):
            await h.steward.memory.wait_ready()
        await h.say("/remember Sister is Lena")
        await h.say("/remember Prefers oat milk")
        await h.say("The alarm code is 7731.")
        found = re.search(r"message #(\d+)", await h.say("/memory search alarm code"))
        assert found
        row = await h.steward.memory.store.get(1, int(found.group(1)))
        assert row is not None and row.kind is Kind.MESSAGE
        assert row.message_id is not None and row.message_id != row.id  # two numberings
        shown = await h.say(f"/memory show {row.id}")
        assert shown.startswith(f"#{row.id} {row.text}"), shown
        [where] = [line for line in shown.splitlines() if line.startswith("From: ")]
        assert where.startswith("From: chat test:c1, turn "), where
        # the row is that message's own (one per message and user): no other number to name
        assert "message" not in where, where
        assert "no memory" in await h.say(f"/memory show {row.message_id}")  # the log's number
