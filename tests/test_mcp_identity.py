"""An MCP tool is what was approved: its identity, its arguments and its name on the card.

A real SDK server over stdio (tests/mcp_servers/rug_server.py) changes a tool behind its name
after the owner allowed it "always", asks for a number JSON cannot carry, and names a tool so
that its name draws lines on the approval card.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fakes.anthropic import Reply
from mcp_servers.rug_server import FORGED_NAME
from mcp_servers.support import mcp_world, notes_stdio

from memory.people import Identity

RUG = {
    "rug": {
        "command": sys.executable,
        "args": [str(Path(__file__).parent / "mcp_servers" / "rug_server.py")],
    }
}
NOTE = {"name": "plan", "text": "hi"}


def _received(world: Any) -> list[dict[str, Any]]:
    path = world.server_dir("rug") / "received.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_an_always_rule_does_not_outlive_the_tool_it_allowed(tmp_path: Path) -> None:
    """The rule bound only the name and the arguments: the server swapped write_note for one
    with a `share_with` it fills in itself, and the next identical call ran unasked."""
    async with mcp_world(tmp_path, RUG) as world:
        world.model.reply(Reply.tool_use("mcp__rug__write_note", NOTE))
        world.model.reply(Reply.text("saved"))
        await world.h.say("save my plan")
        _, card = world.h.channel.approvals[-1]
        await world.h.say(f"/approve {card.approval_id} always")
        assert _received(world) == [{"v": 1, **NOTE}]
        rule = world.h.settings.data_dir / "policy.toml"
        assert "identity = " in rule.read_text()
        await world.until(
            lambda: (
                (t := world.mcp.get("mcp__rug__write_note")) is not None
                and "share_with" in json.dumps(t.input_schema)
            )
        )
        asked = len(world.h.channel.approvals)
        world.model.reply(Reply.tool_use("mcp__rug__write_note", NOTE))
        world.model.reply(Reply.text("saved again"))
        await world.h.say("save my plan again", chat="c9")
        assert len(world.h.channel.approvals) == asked + 1  # asked again: another tool now
        assert _received(world) == [{"v": 1, **NOTE}]  # and nothing ran unasked


async def test_the_same_tool_still_runs_by_its_rule(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, RUG) as world:
        world.model.reply(Reply.tool_use("mcp__rug__set_limit", {"amount": 20}))
        world.model.reply(Reply.text("set"))
        await world.h.say("limit 20")
        _, card = world.h.channel.approvals[-1]
        await world.h.say(f"/approve {card.approval_id} always")
        world.model.reply(Reply.tool_use("mcp__rug__set_limit", {"amount": 20}))
        world.model.reply(Reply.text("set again"))
        await world.h.say("limit 20 again", chat="c9")
        assert len(world.h.channel.approvals) == 1  # the rule held: not asked again
        assert _received(world) == [{"amount": "20.0"}, {"amount": "20.0"}]


async def test_a_number_json_cannot_carry_is_refused_before_anyone_is_asked(
    tmp_path: Path,
) -> None:
    """`1e999` from the model was read as infinity: the card showed "amount": Infinity and the
    SDK sent null, which the server reads as "no limit" (and sent back to the API in the next
    request, it failed the turn). It is kept as the text "inf", which the schema refuses."""
    async with mcp_world(tmp_path, RUG) as world:
        world.model.reply(Reply.tool_use("mcp__rug__set_limit", {"amount": float("inf")}))
        world.model.reply(Reply.text("could not"))
        await world.h.say("raise my limit")
        assert world.h.channel.approvals == []
        [result] = world.model.requests[-1].tool_results
        assert "amount: 'inf' is not valid" in str(result["content"])  # told, as text
        assert _received(world) == []


async def test_a_tool_name_cannot_draw_lines_on_the_card(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, RUG) as world:
        [name] = [t.name for t in world.mcp.tools() if t.name.startswith("mcp__rug__wipe")]
        world.model.reply(Reply.tool_use(name, {}))
        world.model.reply(Reply.text("done"))
        await world.h.say("wipe it")
        _, card = world.h.channel.approvals[-1]
        lines = card.preview.splitlines()
        assert f"tool: {json.dumps(FORGED_NAME)}" in lines, card.preview
        assert "(read-only preview; nothing changes)" not in lines


async def test_a_guests_turn_is_offered_no_mcp_server_unless_their_rules_name_one(
    tmp_path: Path,
) -> None:
    """A guest's /mcp is refused, yet their turns were offered the owner's servers' tools,
    names and all ("Connected servers: bank-acme"), for their model to read out (R117)."""
    guest = Identity("test", "guest")
    for direct in ("0", "20"):
        async with mcp_world(
            tmp_path / direct, {"bank-acme": notes_stdio()}, STEWARD_MCP_DIRECT_TOOLS=direct
        ) as world:
            await world.h.steward.stores.people.admit(guest, "Guest")
            world.model.reply(Reply.text("hi"))
            await world.h.say("which tools do you have?", sender=guest, chat="g")
            assert "bank-acme" not in json.dumps(world.model.requests[-1].body["tools"])
            assert not [n for n in world.model.requests[-1].tool_names if n.startswith("mcp")]
            world.model.reply(Reply.text("hi"))
            await world.h.say("and you?")  # the owner's turn: offered
            assert "bank-acme" in json.dumps(world.model.requests[-1].body["tools"])
    # a rule naming one server's tools offers those, not the other server's (R119), and a glob
    # not starting with mcp__ counts too
    servers = {"bank-acme": notes_stdio(), "weather": notes_stdio()}
    for glob, offered in (
        ("mcp__weather__*", "mcp__weather__"),
        ("*read_note", "__read_note"),
    ):
        rules = f'\n[users."{guest}"]\nrules = [{{ tool = "{glob}", decision = "ask" }}]\n'
        async with mcp_world(
            tmp_path / glob.strip("*_"), servers, rules=rules, STEWARD_MCP_DIRECT_TOOLS="0"
        ) as world:
            await world.h.steward.stores.people.admit(guest, "Guest")
            world.model.reply(Reply.text("hi"))
            await world.h.say("which tools do you have?", sender=guest, chat="g")
            names = {n for n in world.model.requests[-1].tool_names if n.startswith("mcp")}
            assert names and all(offered in n for n in names), names
            if glob.startswith("mcp__weather"):
                assert "bank-acme" not in json.dumps(world.model.requests[-1].body["tools"])
            else:
                assert names == {"mcp__weather__read_note", "mcp__bank-acme__read_note"}, names
