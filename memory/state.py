"""Small named values that must survive a restart, such as the day a budget notice went out."""

from __future__ import annotations

from memory.db import Database

__all__ = ["StateStore"]


class StateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        return await self._db.scalar("SELECT value FROM state WHERE key = ?", (key,))

    async def set(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO state (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def set_if_changed(self, key: str, value: str) -> bool:
        """Store `value`; True when it differs from what was there (a once-per-value guard)."""
        if await self.get(key) == value:
            return False
        await self.set(key, value)
        return True
