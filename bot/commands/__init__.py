"""The command registry and the command groups of each feature."""

from bot.commands import approvals, audit, core
from bot.commands.registry import (
    Command,
    CommandCall,
    CommandContext,
    CommandGroup,
    UsageError,
    parse_command,
)

__all__ = [
    "Command",
    "CommandCall",
    "CommandContext",
    "CommandGroup",
    "UsageError",
    "build_commands",
    "parse_command",
]


def build_commands() -> CommandGroup:
    root = CommandGroup()
    root.include(core.group)
    root.include(approvals.group)
    root.include(audit.group)
    return root
