"""Command names as a person types them on the channel they read them on.

On Slack a command is typed as its own slash command only when Steward's app declares it
(slack-manifest.yaml); any other — and /remind and /status, which Slack keeps for itself — is
typed `/steward <name> …`. A reply that says "Cancel with /remind cancel 1" would, pasted into
Slack, run Slack's own /remind. So every command reply is rewritten here, once, for its channel
(`CommandGroup.run`), rather than each usage, example and confirmation knowing the channel.
"""

from __future__ import annotations

import re
from collections.abc import Collection

__all__ = ["SLACK_SLASH_COMMANDS", "for_channel"]

SLACK_SLASH_COMMANDS = frozenset(
    {
        "steward",
        "goal",
        "approve",
        "deny",
        "briefing",
        "quiet",
        "timezone",
        "usage",
        "link",
        "allow",
        "revoke",
        "audit",
        "memory",
        "remember",
        "web",
        "mail",
        "mcp",
    }
)
"""The slash commands slack-manifest.yaml declares (a test keeps the two in step)."""

# `/name` standing alone: not part of a path or URL (`/data/x`, `host/status`), not `/name-x`
_COMMAND = re.compile(r"(?<![\w/.:@-])/([a-z][a-z0-9_]*)(?![\w/-])")


def for_channel(text: str, channel: str, commands: Collection[str]) -> str:
    """`text` with each `/name` of `commands` written as it is typed on `channel`: on Slack,
    `/steward name` unless Slack has `/name` as Steward's own slash command. Other channels,
    and names that are not commands (a path, `/nonsense`), are left as they are."""
    if channel != "slack":
        return text

    def typed(match: re.Match[str]) -> str:
        name = match[1]
        if name in commands and name not in SLACK_SLASH_COMMANDS:
            return f"/steward {name}"
        return match[0]

    return _COMMAND.sub(typed, text)
