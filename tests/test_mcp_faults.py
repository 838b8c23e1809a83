"""MCP servers that misbehave: crash mid-call, die while idle, never start, hang, answer 10 MB,
name a tool like a built-in, change their tool list; and the process they run in."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from fakes.anthropic import Reply
from harness import make_settings
from mcp_servers.support import PYTHON, mcp_world, notes_stdio, write_config

from agent.mcp import build_mcp, load_mcp_config
from agent.mcp.bridge import McpTool
from agent.mcp.connection import ServerLink

READ_ALL = """
[[rules]]
tool = "mcp__notes__*"
risk = "read"
"""


async def test_a_server_that_crashes_mid_call_is_restarted_and_reported_once(
    tmp_path: Path,
) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=READ_ALL) as world:
        world.model.reply(Reply.tool_use("mcp__notes__crash", {}))
        world.model.reply(Reply.text("it broke"))
        await world.h.say("crash it")
        result = world.model.requests[1].tool_results[0]
        assert result["is_error"] and "stopped during the call" in str(result["content"])
        assert (world.server_dir("notes") / "crashed").exists()
        link = world.mcp.links["notes"]
        # while it is down its tools are gone from what the model is offered
        await world.until(lambda: link.status != "up", 5)
        assert world.mcp.tools() == []
        assert not any(s["name"].startswith("mcp__") for s in world.h.steward.tools.schemas(0))
        # R161: asked for again meanwhile, it is down, not made up: no "blocked" notice
        world.model.reply(Reply.tool_use("mcp__notes__read_note", {"name": "a"}))
        world.model.reply(Reply.text("it is restarting"))
        await world.h.say("read note a")
        again = str(world.model.requests[-1].tool_results)
        assert "is not running right now" in again and "nothing ran" in again, again
        assert not any("Blocked" in t for t in world.h.channel.texts()), world.h.channel.texts()
        await world.until(lambda: link.status == "up", 20)
        assert link.restarts >= 1 and world.mcp.get("mcp__notes__read_note") is not None
        assert len(world.told) == 1 and "notes" in world.told[0]
        calls = await world.audit("mcp.call")
        assert calls[0].detail["outcome"] == "crashed"
        assert [e.subject for e in await world.audit("mcp.server_down")] == ["notes"]


async def test_a_server_killed_while_idle_comes_back(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=READ_ALL) as world:
        world.model.reply(Reply.tool_use("mcp__notes__env_report", {}))
        world.model.reply(Reply.text("ok"))
        await world.h.say("report")
        report = str(world.model.requests[1].tool_results[0]["content"])
        pid = json.loads(report[report.index("{") : report.rindex("}") + 1])["pid"]
        os.kill(pid, signal.SIGKILL)
        link = world.mcp.links["notes"]
        await world.until(lambda: link.status != "up", 20)
        await world.until(lambda: link.status == "up", 20)
        assert world.told and "notes" in world.told[0]


async def test_a_server_that_never_starts_is_reported_once_and_retried(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "mcp.json", {"dead": {"command": PYTHON, "args": ["-c", "raise SystemExit(1)"]}}
    )
    settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(config))
    supervisor, source = build_mcp(settings, lambda name: None, backoff=(0.1, 0.2))
    told: list[str] = []

    async def tell(text: str) -> None:
        told.append(text)

    await supervisor.start(notify=tell)
    try:
        link = supervisor.links["dead"]
        for _ in range(300):
            if link.restarts >= 3:
                break
            await asyncio.sleep(0.05)
        assert link.restarts >= 3
        assert len(told) == 1 and "dead" in told[0]
        assert supervisor.states()[0].status in ("down", "restarting")
        assert supervisor.states()[0].error
        assert source.schemas(1) == []
    finally:
        await supervisor.stop()


async def test_an_outage_the_owner_could_not_be_told_of_is_told_once_they_can_be(
    tmp_path: Path,
) -> None:
    """R112: the server was marked as reported before the notice went, and on a first run the
    owner had no chat to reach yet: the notice was lost for the whole outage."""
    config = write_config(
        tmp_path / "mcp.json", {"dead": {"command": PYTHON, "args": ["-c", "raise SystemExit(1)"]}}
    )
    settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(config))
    supervisor, _ = build_mcp(settings, lambda name: None, backoff=(0.1, 0.2))
    tries: list[str] = []
    reachable = asyncio.Event()

    async def tell(text: str) -> bool:
        tries.append(text)
        return reachable.is_set()

    await supervisor.start(notify=tell)
    try:
        link = supervisor.links["dead"]
        for _ in range(300):
            if len(tries) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(tries) >= 2  # not reached: tried again at the next failed start
        reachable.set()
        told = len(tries) + 1
        for _ in range(300):
            if len(tries) >= told and link.restarts >= told + 2:
                break
            await asyncio.sleep(0.05)
        assert len(tries) == told  # told, then not again for this outage
    finally:
        await supervisor.stop()


async def test_a_hanging_tool_times_out_and_the_server_is_told_to_stop(tmp_path: Path) -> None:
    servers = {"notes": notes_stdio()}
    async with mcp_world(tmp_path, servers, rules=READ_ALL, STEWARD_MCP_TIMEOUT="1.5") as world:
        world.model.reply(Reply.tool_use("mcp__notes__hang", {}))
        world.model.reply(Reply.text("it hung"))
        await world.h.say("hang")
        result = world.model.requests[1].tool_results[0]
        assert result["is_error"] and "did not answer within 1.5 s" in str(result["content"])
        marker = world.server_dir("notes") / "hang-cancelled"
        await world.until(marker.exists, 5)
        assert world.mcp.links["notes"].status == "up"  # a slow tool is not a dead server
        assert (await world.audit("mcp.call"))[0].detail["outcome"] == "timeout"


async def test_ending_the_turn_cancels_the_call_on_the_server(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=READ_ALL) as world:
        world.model.reply(Reply.tool_use("mcp__notes__hang", {}))
        turn = asyncio.create_task(world.h.say("hang"))
        started = world.server_dir("notes") / "hang-started"
        await world.until(started.exists, 10)
        turn.cancel()
        await asyncio.gather(turn, return_exceptions=True)
        await world.until((world.server_dir("notes") / "hang-cancelled").exists, 5)
        assert (await world.audit("mcp.call"))[0].detail["outcome"] == "cancelled"


async def test_ten_megabytes_are_cut_to_the_output_limit(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=READ_ALL) as world:
        world.model.reply(Reply.tool_use("mcp__notes__huge", {}))
        world.model.reply(Reply.text("big"))
        await world.h.say("huge")
        content = str(world.model.requests[1].tool_results[0]["content"])
        limit = world.h.settings.tool_output_limit
        assert limit < len(content) < limit + 500
        assert f"of {10 * 1024 * 1024} characters not shown" in content
        call = (await world.audit("mcp.call"))[0]
        assert call.detail["result_chars"] == 10 * 1024 * 1024
        assert call.detail["shown_chars"] < limit + 200
        ran = (await world.audit("tool.ran"))[0]
        assert ran.detail["result_chars"] < limit + 200


async def test_a_line_without_end_drops_the_link_and_holds_no_more_than_the_limit(
    tmp_path: Path,
) -> None:
    """A server writing to its stdout without a line break: the SDK's reader gathered the
    line by joining each 64 KiB piece to all it had so far, holding the event loop for seconds
    per 50 MB and all of it in memory, without end. The link is dropped past `LINE_LIMIT`, the
    call fails, the owner's turn is answered, and the server is started again."""
    import resource

    from agent.mcp.stdio import LINE_LIMIT

    server = {
        "command": PYTHON,
        "args": [str(Path(__file__).parent / "mcp_servers" / "endless_server.py")],
    }
    rules = '[[rules]]\ntool = "mcp__endless__*"\nrisk = "read"\n'
    async with mcp_world(tmp_path, {"endless": server}, rules=rules) as world:
        link = world.mcp.links["endless"]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        world.model.reply(Reply.tool_use("mcp__endless__endless", {}))
        world.model.reply(Reply.text("it broke"))
        async with asyncio.timeout(60):
            await world.h.say("flood it")
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        result = world.model.requests[1].tool_results[0]
        assert result.get("is_error") and "endless" in str(result["content"]), result
        await world.until(lambda: link.restarts >= 1 and link.status == "up", 30)
        (down,) = await world.audit("mcp.server_down")
    assert f"over {LINE_LIMIT // 2**20} MiB" in str(down.detail), down.detail
    assert grew < 3 * LINE_LIMIT, f"grew by {grew / 2**20:.0f} MiB"


async def test_what_a_server_started_stops_with_it(tmp_path: Path) -> None:
    """R160, R161: a server that started a helper and exited when its stdin closed left the
    helper running at every stop and restart: the process group was signalled only when the
    server itself outlived the grace period."""
    helper_server = Path(__file__).parent / "mcp_servers" / "helper_server.py"
    server = {"command": PYTHON, "args": [str(helper_server)]}
    async with mcp_world(tmp_path, {"helper": server}) as world:
        pid_file = world.server_dir("helper") / "helper.pid"
        await world.until(pid_file.exists, 15)
        helper = int(pid_file.read_text())
        os.kill(helper, 0)  # running
    for _ in range(100):
        if not _running(helper):
            break
        await asyncio.sleep(0.1)
    else:
        os.kill(helper, signal.SIGKILL)
        raise AssertionError("the server's helper outlived Steward's stop")


def _running(pid: int) -> bool:
    """Whether `pid` runs: a zombie (dead, not yet reaped by whoever adopted it) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_made_up_name_on_a_running_server_is_still_unknown(tmp_path: Path) -> None:
    """R162: once a server's "no longer has that tool" was told apart, a made-up
    `mcp__notes__export_all_secrets` got no notice, and told a guest the server existed."""
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=READ_ALL) as world:
        world.model.reply(Reply.tool_use("mcp__notes__export_all_secrets", {}))
        world.model.reply(Reply.text("ok"))
        await world.h.say("export")
        said = str(world.model.requests[-1].tool_results)
        assert "there is no tool named" in said, said
        assert [e.subject for e in await world.audit("tool.unknown")] == [
            "mcp__notes__export_all_secrets"
        ]


async def test_a_person_not_offered_a_servers_tools_cannot_tell_it_exists(
    tmp_path: Path,
) -> None:
    """R163: a guest offered no MCP tools who named one of the owner's got a card sent to the
    owner, or the server's schema in an error; a made-up name, "there is no tool". All alike."""
    from agent.types import Address, ChatKind, IncomingMessage
    from memory.people import Identity

    mallory = Identity("test", "mallory")
    # R165: her own rule naming the search got it, and it listed every server's tools
    rules = (
        READ_ALL + '[[users."test:mallory".rules]]\ntool = "mcp_tool_search"\ndecision = "allow"\n'
    )
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=rules) as world:
        await world.h.steward.stores.people.admit(mallory, "Mallory")
        calls = (
            ("mcp__bank__read_note", {"name": "a"}),
            ("mcp__notes__read_note", {"wrong": 1}),
            ("mcp__notes__read_note", {"name": "a"}),
            ("mcp_tool_search", {"query": "notes"}),  # R164: its listing names every server
        )
        for n, (name, arguments) in enumerate(calls):
            world.model.reply(Reply.tool_use(name, arguments))
            world.model.reply(Reply.text("ok"))
            await world.h.router.dispatch(
                IncomingMessage(
                    sender=mallory,
                    address=Address("test", f"m{n}"),
                    text="hi",
                    chat_kind=ChatKind.PRIVATE,
                )
            )
            said = str(world.model.requests[-1].tool_results)
            assert f"there is no tool named '{name}'" in said, said
        assert await world.h.steward.stores.approvals.pending() == []


async def test_a_tool_named_like_a_builtin_cannot_shadow_it(tmp_path: Path) -> None:
    servers = {"notes": notes_stdio()}
    async with mcp_world(tmp_path, servers, rules=READ_ALL, STEWARD_MCP_DIRECT_TOOLS="20") as world:
        tools = world.h.steward.tools
        builtin = tools.get("send_message")
        assert builtin is not None and not isinstance(builtin, McpTool)
        names = [s["name"] for s in tools.schemas(1)]
        assert names.count("send_message") == 1 and "mcp__notes__send_message" in names
        # the model calling `send_message` gets the built-in (to the owner: allowed); the
        # server's tool is reached only by its own name
        world.model.reply(Reply.tool_use("send_message", {"text": "hello owner"}))
        world.model.reply(Reply.text("sent"))
        await world.h.say("tell me")
        assert not (world.server_dir("notes") / "collided.jsonl").exists()
        assert [e.subject for e in await world.audit("mcp.call")] == []


async def test_list_changed_refreshes_the_tools(tmp_path: Path) -> None:
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=READ_ALL) as world:
        assert world.mcp.get("mcp__notes__grown") is None
        world.model.reply(Reply.tool_use("mcp__notes__grow", {}))
        world.model.reply(Reply.text("grown"))
        await world.h.say("grow")
        await world.until(lambda: world.mcp.get("mcp__notes__grown") is not None, 5)
        assert world.mcp.links["notes"].restarts == 0


async def test_the_server_gets_only_its_env_and_its_own_directory(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STEWARD_SECRET_CANARY", "canary-value-123")
    monkeypatch.setenv("NOTES_TOKEN_SOURCE", "tok-abc-789")
    servers = {"notes": notes_stdio(NOTES_TOKEN="${NOTES_TOKEN_SOURCE}")}
    async with mcp_world(tmp_path, servers, rules=READ_ALL) as world:
        world.model.reply(Reply.tool_use("mcp__notes__env_report", {}))
        world.model.reply(Reply.text("ok"))
        await world.h.say("report")
        content = str(world.model.requests[1].tool_results[0]["content"])
        report = json.loads(content[content.index("{") : content.rindex("}") + 1])
        allowed = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "NOTES_TOKEN", "LC_CTYPE"}
        assert set(report["env"]) <= allowed and "NOTES_TOKEN" in report["env"]
        assert Path(report["cwd"]) == (world.data_dir / "mcp" / "notes").resolve()
        assert Path(report["cwd"]) != Path.cwd()
        # the expanded token is nowhere the model or the owner can read
        for request in world.model.requests:
            assert "tok-abc-789" not in json.dumps(request.body)
        assert "tok-abc-789" not in await world.h.say("/mcp")


async def test_a_2025_protocol_server_refreshes_on_its_list_changed_notification(
    tmp_path: Path,
) -> None:
    """A server on the 2025 handshake (most published servers today) has no listen stream:
    its `notifications/tools/list_changed` arrives as a plain notification."""
    spec = load_mcp_config(write_config(tmp_path / "mcp.json", {"notes": notes_stdio()})).servers[0]
    changes: list[int] = []

    async def quiet(link: ServerLink, problem: str) -> None:
        return None

    link = ServerLink(
        spec,
        workdir=tmp_path / "notes",
        on_change=lambda: changes.append(1),
        on_down=quiet,
        on_up=quiet,
        health_every=3600,
        mode="legacy",
    )
    task = asyncio.create_task(link.run())
    try:
        await asyncio.wait_for(link.settled(), 30)
        assert link.status == "up" and link.protocol == "2025-11-25"
        assert "grown" not in [t.name for t in link.listing.tools]
        result = await link.call("grow", {}, 10)
        assert not result.is_error
        for _ in range(100):
            if "grown" in [t.name for t in link.listing.tools]:
                break
            await asyncio.sleep(0.05)
        assert "grown" in [t.name for t in link.listing.tools] and link.restarts == 0
    finally:
        link.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_approving_while_its_server_restarts_keeps_the_request(tmp_path: Path) -> None:
    """R99: a card waited for an MCP tool; its server died (in another call) and the owner
    approved during the restart's back-off: the tool was missing, so the request was denied for
    good as "changed" though nothing had. Now nothing runs, the request still waits, and
    approving it once the server is back runs it."""
    from memory.approvals import ApprovalStatus

    rules = '[[rules]]\ntool = "mcp__notes__crash"\nrisk = "read"\n'
    async with mcp_world(tmp_path, {"notes": notes_stdio()}, rules=rules) as world:
        world.model.reply(Reply.tool_use("mcp__notes__write_note", {"name": "a", "text": "hi"}))
        await world.h.say("save a note")
        [(_, card)] = world.h.channel.approvals
        world.model.reply(Reply.tool_use("mcp__notes__crash", {}))
        world.model.reply(Reply.text("it broke"))
        await world.h.say("crash it", chat="c2")
        link = world.mcp.links["notes"]
        await world.until(lambda: link.status != "up", 5)
        note = await world.h.say(f"/approve {card.approval_id}")
        assert "cannot run right now" in note and "no longer matches" not in note
        stored = await world.h.steward.stores.approvals.get(card.approval_id)
        assert stored is not None and stored.status is ApprovalStatus.PENDING
        assert [e.subject for e in await world.audit("approval.unavailable")] == [stored.id]
        await world.until(lambda: link.status == "up", 20)
        world.model.reply(Reply.text("saved"))
        note = await world.h.say(f"/approve {card.approval_id}")
        stored = await world.h.steward.stores.approvals.get(card.approval_id)
    assert stored is not None and stored.status is ApprovalStatus.EXECUTED, note
