"""Who the owner is, as stored, apart from the code that uses it: the console's identity and
the state key listing the identities named owner. `steward backup`, `restore`, `web-link` and
`memory import` name them without loading the console channel (its live replies bring in
aiogram) or the chat command set (every command group): ~0.6 s of each such command."""

from __future__ import annotations

from memory.people import Identity

__all__ = ["CONSOLE_IDENTITY", "OWNER_STATE"]

CONSOLE_IDENTITY = Identity("console", "owner")
OWNER_STATE = "access.owner"  # JSON list: the identities STEWARD_OWNER named at the last start
