"""One tool's schema with a Unicode digit in a `$ref` fails that tool at most (review 36).

`"$ref": "#/allOf/²"` is valid JSON and valid MCP. The schema check took `²` for an array index
(`str.isdigit` says yes, `int` refuses it), and the error went up through building the MCP
tools: every turn of every chat failed, and /mcp and `steward mcp check` with them, for as long
as the server listed that tool (and a server can switch to it with a list-changed notice)."""

from __future__ import annotations

from pathlib import Path

import mcp.types as mt
import pytest
from fakes.anthropic import Reply
from mcp_servers.support import PYTHON, mcp_world

from agent.mcp.bridge import McpTool
from agent.mcp.schema_check import expands_within, output_problem
from agent.tools.registry import Risk

SERVER = Path(__file__).parent / "mcp_servers" / "digit_ref_server.py"


@pytest.mark.parametrize("digit", ["\u00b2", "\u2460", "\u0663"])  # ², ①, Arabic-Indic 3
def test_a_ref_with_a_unicode_digit_resolves_nowhere(digit: str) -> None:
    schema = {"type": "object", "allOf": [{}], "properties": {"q": {"$ref": f"#/allOf/{digit}"}}}
    assert expands_within(schema)
    listed = mt.Tool(name="lookup", description="d", input_schema=schema)
    tool = McpTool.of("evil", "t", listed, Risk.READ, invoke=None)  # type: ignore[arg-type]
    assert tool is not None and tool.name == "mcp__evil__lookup"
    # a result checked against such an output schema is told, not a fault of the call
    said = output_problem(schema, {"q": "x"})
    assert said is None or "output schema" in said


async def test_one_tools_schema_does_not_break_every_turn(tmp_path: Path) -> None:
    servers = {"digits": {"command": PYTHON, "args": [str(SERVER), "--poison"]}}
    async with mcp_world(tmp_path, servers) as world:
        assert world.mcp.links["digits"].status == "up"
        world.model.reply(Reply.text("Hello there."))
        assert await world.h.say("hi, nothing to do with MCP") == "Hello there."
        assert "digits" in await world.h.say("/mcp")


def test_a_memory_calls_replaces_take_only_numbers_sqlite_holds() -> None:
    """The same test on the model's `replaces` in extraction and compaction: "²" raised
    there, and a 20-digit number would overflow SQLite's integer at the look-up."""
    from agent.memory_upkeep import _new_memory
    from memory.longterm import Source, Trust

    item = {"text": "Lives in Berlin.", "replaces": ["\u00b2", "\u2460", "7", 8, "9" * 20, True]}
    made = _new_memory(
        item, user_id=1, chat_id=None, source=Source.OWNER_SAID, trust=Trust.TRUSTED, source_ref=""
    )
    assert made is not None and made.replaces == (7, 8)
