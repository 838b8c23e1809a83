"""MCP client: servers from `mcp.json` as tools under the same policy, approvals, taint and
audit as the built-in ones.

- `config.py`: the `mcpServers` file and `${VAR}` expansion;
- `entry_secrets.py`: which values in a server's entry are secrets, and how it is shown;
- `connection.py`: one server's connection, kept alive with backoff (the SDK speaks MCP);
- `bridge.py`: an MCP tool as a Steward `Tool` (`mcp__<server>__<tool>`, fenced results);
- `supervisor.py`: every server, their tools, calls (timeout, size cap, audit) and states;
- `search.py`: what the model is offered: every tool, or a search-and-load tool when many.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.config import Settings
from agent.mcp.config import (
    McpConfig,
    McpConfigError,
    ServerSpec,
    environment,
    load_mcp_config,
)
from agent.paths import find_home
from agent.tools.registry import Risk

if TYPE_CHECKING:  # the MCP SDK (about 40 MiB, 0.7 s): imported only when a server is set up
    from agent.mcp.bridge import McpTool
    from agent.mcp.search import SEARCH_TOOL, McpToolSource
    from agent.mcp.supervisor import AuditSink, McpSupervisor, ServerState

__all__ = [
    "SEARCH_TOOL",
    "McpConfig",
    "McpConfigError",
    "McpSupervisor",
    "McpTool",
    "McpToolSource",
    "ServerSpec",
    "ServerState",
    "build_mcp",
    "load_mcp_config",
    "mcp_configured",
]

_LAZY = {
    "McpTool": "agent.mcp.bridge",
    "SEARCH_TOOL": "agent.mcp.search",
    "McpToolSource": "agent.mcp.search",
    "AuditSink": "agent.mcp.supervisor",
    "McpSupervisor": "agent.mcp.supervisor",
    "ServerState": "agent.mcp.supervisor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def mcp_configured(settings: Settings) -> bool:
    """Is there an MCP servers file to read (STEWARD_MCP_CONFIG, or mcp.json in the data
    directory)? Without one there is nothing to start, and the SDK is never imported."""
    return settings.mcp_config is not None or settings.mcp_config_path.exists()


def build_mcp(
    settings: Settings,
    risk_of: Callable[[str], Risk | None],
    audit: AuditSink | None = None,
    **tuning: float | tuple[float, float] | int,
) -> tuple[McpSupervisor, McpToolSource]:
    """The supervisor and the registry's tool source, from the settings. A bad file raises
    McpConfigError (one line: the file, the server, the problem) before anything starts."""
    from agent.mcp.search import McpToolSource
    from agent.mcp.supervisor import McpSupervisor

    path = settings.mcp_config_path
    config = load_mcp_config(
        path,
        environment(find_home().env_file) if path.exists() else {},
        required=settings.mcp_config is not None,
    )
    _check_workdirs(config, settings)
    supervisor = McpSupervisor(
        config,
        workdir=settings.mcp_dir,
        risk_of=lambda name: risk_of(name) or Risk.EXTERNAL_EFFECT,
        call_timeout=settings.mcp_timeout,
        output_limit=settings.tool_output_limit,
        audit=audit,
        **tuning,  # type: ignore[arg-type]
    )
    return supervisor, McpToolSource(supervisor, direct_limit=settings.mcp_direct_tools)


def _check_workdirs(config: McpConfig, settings: Settings) -> None:
    """A server's `cwd` may not be Steward's own folder (where `.env` lives) or the data
    directory; without one, it runs in `<data>/mcp/<server>/`."""
    own = {Path.cwd().resolve(), find_home().dir.resolve(), settings.data_dir.resolve()}
    for spec in config.servers:
        if spec.cwd is None:
            continue
        where = spec.cwd if spec.cwd.is_absolute() else settings.mcp_dir / spec.name / spec.cwd
        if where.resolve() in own:
            raise McpConfigError(
                f"{config.path}: server {spec.name!r}: cwd {spec.cwd} is Steward's own folder; "
                "leave cwd out (each server gets its own under the data directory)"
            )
