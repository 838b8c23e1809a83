"""Rules that can never match: a misspelt tool, or an MCP server that is not configured.

Such a rule is valid TOML and a valid rule, so nothing refuses it; a deny written as
`mcp__githb__*` protected nothing, silently. `steward policy check` prints these and `run`
logs them at start.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from agent.policy import PolicyFile

__all__ = ["rules_matching_nothing"]

_GLOB = re.compile(r"[*?\[]")


def rules_matching_nothing(
    policy: PolicyFile, tools: Iterable[str], servers: Iterable[str] | None
) -> list[str]:
    """One sentence per rule whose tool pattern matches no built-in tool, or (`mcp__…`) no
    server in `servers` (None: the MCP file could not be read, so those are not judged). An
    MCP server's own tools are known only once it runs, so only the server's name is checked.
    A name in `tools` may stand for a family (`mail_*`: the mail tools, which a Steward without
    a mailbox does not load)."""
    names, known = list(tools), None if servers is None else list(servers)
    found = []
    sections = [("", policy.rules)] + [
        (f" for {user}", section.rules) for user, section in policy.users.items()
    ]
    for where, rules in sections:
        for rule in rules:
            if rule.tool.startswith("mcp__"):
                server = rule.tool.removeprefix("mcp__").split("__", 1)[0]
                if known is not None and not fnmatch.filter(known, server):
                    found.append(
                        f"a rule{where} names tool {rule.tool!r}, but no MCP server {server!r} "
                        "is configured; it matches nothing"
                    )
            elif any(_either(name, rule.tool) for name in names):
                continue
            elif _may_be_mcp(rule.tool) and (known is None or known):
                continue  # `*__delete_repo`, `mcp*`: may name a server's tool, known once it runs
            else:
                found.append(
                    f"a rule{where} names tool {rule.tool!r}, which no tool is; it matches nothing"
                )
    return found


def _either(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(pattern, name)


def _may_be_mcp(pattern: str) -> bool:
    """Whether `pattern` can match some `mcp__…` name: what comes before its first wildcard
    starts that prefix (`*__delete_repo`, `mcp*`, `m?p__*`; not `shel*`)."""
    glob = _GLOB.search(pattern)
    return glob is not None and "mcp__".startswith(pattern[: glob.start()])
