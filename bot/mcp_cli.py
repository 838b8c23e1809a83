"""`steward mcp check`: validate the MCP config, start each server once, list its tools with
the risk class policy.toml gives them (and the server's read-only hint, as a suggestion)."""

from __future__ import annotations

import sys
from typing import TextIO

from agent.config import Settings
from agent.mcp import build_mcp
from agent.policy import PolicyFile, load_policy
from agent.tools.registry import Risk

__all__ = ["mcp_check"]


async def mcp_check(settings: Settings, out: TextIO | None = None) -> int:
    """0 when every server started; 1 when one did not. A bad file raises McpConfigError."""
    out = out or sys.stdout
    policy = load_policy(settings.policy_path) if settings.policy_path.exists() else PolicyFile()
    supervisor, _ = build_mcp(settings, policy.risk_for, backoff=(3600.0, 3600.0))
    config = supervisor.config
    if not config.servers:
        off = f" ({', '.join(config.disabled)}: disabled)" if config.disabled else ""
        print(f"{config.path}: no MCP servers configured{off}.", file=out)
        return 0
    print(f"{config.path}: {len(config.servers)} servers; starting each once.", file=out)
    for name in config.disabled:
        print(f"\n{name}: disabled in the file", file=out)
    await supervisor.start()
    try:
        await supervisor.settled(timeout=45.0)
        states = supervisor.states()
        tools = {t.name: t for t in supervisor.tools()}
        for state in states:
            print(f"\n{state.name} ({state.transport}: {state.target}): {state.status}", file=out)
            if state.error:
                print(f"  problem: {state.error}", file=out)
                if state.transport == "stdio":  # an HTTP server has no stderr of ours (R112)
                    stderr = settings.mcp_dir / state.name / "stderr.log"
                    print(f"  its stderr: {stderr}", file=out)
            for name in state.tools:
                tool = tools[name]
                ruled = policy.risk_for(name) is not None
                line = f"  {name}  risk {tool.risk.value} ({'rule' if ruled else 'default'})"
                decided, some = policy.decided_for(name)
                if decided is not None:
                    line += f", {decided.value} by rule"
                else:
                    line += f", {policy.default_for(tool.risk).value} by default"
                if some:
                    line += f" ({some} rule(s) for some calls)"
                if tool.read_only_hint and tool.risk is not Risk.READ:
                    closed = tool.open_world_hint is False
                    line += (  # pasted, the lines below the colon load as TOML
                        "\n      the server says read-only"
                        + (" and closed-world" if closed else "")
                        + " (hints, not trusted): to run it unasked"
                        + (
                            ", even in a turn holding outside content (its arguments stay "
                            "with the server)"
                            if closed
                            else " (in a turn holding outside content it still asks: its "
                            "arguments leave Steward)"
                        )
                        + ", add to policy.toml:"
                        f'\n        [[rules]]\n        tool = "{name}"\n        risk = "read"'
                        + ("\n        closed_world = true" if closed else "")
                    )
                elif (
                    tool.risk is Risk.READ
                    and tool.open_world_hint is False
                    and not policy.closed_world(name)
                ):
                    line += (
                        "\n      the server says closed-world (a hint, not trusted): to run it "
                        "unasked in a turn holding outside content too, add "
                        "`closed_world = true` to its rule"
                    )
                print(line, file=out)
        for skipped in supervisor.skipped:
            print(f"  not offered: {skipped}", file=out)
        failed = [s.name for s in states if s.status != "up"]
    finally:
        await supervisor.stop()
    if failed:
        print(f"\nNot running: {', '.join(failed)}.", file=out)
        return 1
    print("\nAll servers started.", file=out)
    return 0
