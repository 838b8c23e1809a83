"""What the review of the session's own fixes found (review 37): a reminder's text that holds
a command for later, a real match beside a word match, a correction to a known memory, other
tools' .env names, a broken line with a secret, and ordinary MCP schemas refused."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic, Reply
from harness import Harness, running_steward


async def _ready(h: Harness) -> None:
    assert h.steward.memory is not None
    await h.steward.memory.start()
    async with asyncio.timeout(60):
        await h.steward.memory.wait_ready()


# -- router: a reminder whose text is a command for later ------------------------------------


async def test_a_reminder_to_run_a_command_later_does_not_run_it_now(tmp_path: Path) -> None:
    """Before 72fa4ef a message with any plain line stayed one command; now a body line that
    starts with a known command runs at once and is cut out of the reminder."""
    async with running_steward(tmp_path, None) as h:
        assert "#1" in await h.say("/goal add Ship the quarterly report")
        await h.say(
            "/remind friday 17:00 close the goal:\n- check the report is out\n/goal done 1 finally!"
        )
        listed = await h.say("/goal list")
        assert "Ship the quarterly report" in listed, listed  # still open until Friday
        assert "/goal done 1" in await h.say("/remind list")


async def test_a_pasted_text_under_remember_keeps_its_lines(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        await h.say("/remember router reset, in order:\n/start the admin page\nhold reset 10 s")
        texts = [m.text for m in await h.memories()]
        assert any("hold reset 10 s" in t for t in texts), texts


# -- memory search: the one real match, found by meaning ---------------------------------------


async def test_the_appointment_is_found_beside_a_word_match(tmp_path: Path) -> None:
    """A keyword hit's cosine (0.60) sets the bar at 0.45: the appointment itself (0.37 by
    meaning, no word in common) is hidden; at best/2 (0.30) it was shown."""
    async with running_steward(tmp_path, None) as h:
        await _ready(h)
        for text in (
            "The dentist is Dr. Weber on Main Street",
            "Dr. Weber, Tuesday 14:00, bring the insurance card",
            "I drive a blue Skoda Octavia",
        ):
            assert "Remembered" in await h.say(f"/remember {text}")
        assert h.steward.memory is not None
        await h.steward.memory.store.flush_vectors()
        found = await h.say("/memory search dentist appointment")
        assert "Tuesday 14:00" in found, found


# -- a correction of a message row that is already a memory ----------------------------------


async def test_correcting_a_message_to_a_known_memory_says_so(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda r: Reply.text("Okay."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await _ready(h)
        assert "Remembered #" in await h.say("/remember My cat is called Miso")
        await h.say("What's a good name for a cat?")
        found = re.search(r"message #(\d+)", await h.say("/memory search cat name"))
        assert found
        said = await h.say(f"/memory correct {found.group(1)} My cat is called Miso")
        assert "already" in said, said  # says "Saved #1 as a note", nothing was saved


# -- .env: other tools' names ----------------------------------------------------------------


@pytest.mark.parametrize("line", ["MAIL_PASSWORD=x", "MAIL_FROM=me@example.org", "CHROMADB_URL=x"])
def test_another_tools_setting_does_not_stop_the_start(tmp_path: Path, line: str) -> None:
    """fastapi-mail reads MAIL_USERNAME/MAIL_PASSWORD/MAIL_FROM; before ff8e8b9 only names
    with our prefixes could stop the start."""
    from agent.config import Settings
    from agent.env_file import check_env_file, setting_names

    env = tmp_path / ".env"
    env.write_text(line + "\n")
    check_env_file(env, setting_names(Settings.model_fields.values()))


def test_a_broken_line_does_not_show_a_secret(tmp_path: Path) -> None:
    from agent.env_file import check_env_file
    from agent.errors import ConfigError

    env = tmp_path / ".env"
    env.write_text(
        "EMAIL_PASSWORD=\nhunter2-SECRET-tail and more\n"
    )  # value wrapped to the next line
    with pytest.raises(ConfigError) as caught:
        check_env_file(env, {"EMAIL_PASSWORD"})
    assert "hunter2" not in str(caught.value), caught.value


# -- MCP: a legitimate recursive schema --------------------------------------------------------


def _blocks_schema() -> dict:
    from typing import Literal, Union

    from pydantic import BaseModel, Field

    kinds = ["Paragraph", "Heading", "Bullet", "Numbered", "Toggle", "Quote", "Callout", "Todo"]
    ns: dict = {}
    for k in kinds:
        ns[k] = type(
            k,
            (BaseModel,),
            {
                "__annotations__": {
                    "type": Literal[k.lower()],
                    "text": str,
                    "children": list["Block"],  # noqa: F821 (resolved by model_rebuild)
                },
                "children": Field(default_factory=list),
                "__module__": __name__,
            },
        )
    block = Union[tuple(ns[k] for k in kinds)]  # noqa: UP007
    for k in kinds:
        ns[k].model_rebuild(_types_namespace={"Block": block, **ns})

    class AppendBlocks(BaseModel):
        page_id: str
        blocks: list[block]  # type: ignore[valid-type]

    return AppendBlocks.model_json_schema()


def test_a_block_tree_schema_is_offered() -> None:
    """8 recursive block kinds (pydantic, 4.5 kB): checking a real call takes ~20 ms, but a
    walk that counted every path through the kinds (8! and more) refused it."""
    import mcp.types as mt

    from agent.mcp.bridge import McpTool, unusable
    from agent.tools.registry import Risk

    schema = _blocks_schema()
    listed = mt.Tool(name="append_blocks", description="Append blocks", inputSchema=schema)

    async def invoke(*a, **k):  # never called
        raise AssertionError

    tool = McpTool.of("notion", "npx notion", listed, Risk.EXTERNAL_EFFECT, invoke)
    assert tool is not None, unusable("notion", listed)


def test_a_property_named_dollar_schema_is_accepted() -> None:
    """one_dialect drops every "$schema" key below the root, a property of that name too
    (a tool writing biome.json / tsconfig.json): the call is refused locally."""
    from agent.mcp.schema_check import checker, one_dialect

    schema = {
        "type": "object",
        "properties": {"$schema": {"type": "string"}, "name": {"type": "string"}},
        "additionalProperties": False,
    }
    checked = one_dialect(schema)
    errors = list(
        checker(checked)(checked).iter_errors({"name": "x", "$schema": "https://x/s.json"})
    )
    assert errors == [], errors
