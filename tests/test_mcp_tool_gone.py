"""Approving a call whose MCP tool is not there says why, and waits only when waiting can help:
a server restarting may bring it back; a server no longer set up cannot (R134: "approve it
again once the server is back", of a server removed from the config)."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from harness import running_steward
from mcp_servers.support import time_stdio, write_config

from agent.policy import DEFAULT_POLICY


async def test_a_request_to_a_server_no_longer_set_up_is_denied_saying_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "workspace").mkdir(parents=True)
    (data / "policy.toml").write_text(DEFAULT_POLICY)
    config = write_config(tmp_path / "mcp.json", {"time": time_stdio()})
    async with FakeAnthropic() as fake:
        async with running_steward(data, fake.base_url, STEWARD_MCP_CONFIG=str(config)) as h:
            assert h.steward.mcp is not None
            await h.steward.mcp.start(notify=None)
            assert await h.steward.mcp.settled(40)
            fake.reply(Reply.tool_use("mcp__time__get_current_time", {"timezone": "UTC"}))
            await h.say("what time is it?")
            [(_, card)] = h.channel.approvals
        write_config(config, {})
        async with running_steward(data, fake.base_url, STEWARD_MCP_CONFIG=str(config)) as h:
            assert h.steward.mcp is not None
            await h.steward.mcp.start(notify=None)
            assert await h.steward.mcp.settled(40)
            fake.reply(Reply.text("That server is gone."))
            said = await h.say(f"/approve {card.approval_id}")
            assert "no MCP server of that name is set up any more" in said, said
            assert "approve it again" not in said
            approval = await h.steward.stores.approvals.get(card.approval_id)
            assert approval is not None and approval.status.value == "denied"
