"""Users, their channel identities, strangers who knocked, and chats.

(Some 405 lines: who someone is and the chats they talk in are read together on every
message; a chat that moves to a new id, R201, is re-pointed here with the rest of its rows.)
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from memory.clock import Clock, iso
from memory.db import Database

__all__ = ["UNKNOWN_KIND", "Chat", "Identity", "People", "Stranger", "User"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """Who someone is on one channel: the platform's own id, never a display name."""

    channel: str
    platform_user_id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.platform_user_id}"

    @classmethod
    def parse(cls, text: str) -> Identity:
        channel, sep, platform_id = text.strip().partition(":")
        if not sep or not channel or not platform_id:
            raise ValueError(f"{text!r} is not channel:id (for example telegram:123456789)")
        return cls(channel.lower(), platform_id)

    def canonical(self) -> Identity:
        """As its channel reports it: Slack's ids are upper case, however someone typed one."""
        if self.channel == "slack":
            return Identity(self.channel, self.platform_user_id.upper())
        return self

    def checked(self) -> Identity:
        """Canonical, and in its channel's form (Telegram's and Slack's ids; another channel's
        as they are); ValueError says what is wrong."""
        canonical = self.canonical()
        form = ID_FORMS.get(canonical.channel)
        if form is not None and not form[0].match(canonical.platform_user_id):
            raise ValueError(f"{self.platform_user_id!r} is not {form[1]}")
        return canonical


ID_FORMS = {
    "telegram": (re.compile(r"^\d{1,20}$"), "a numeric user id, e.g. telegram:123456789"),
    "slack": (re.compile(r"^[UW][A-Z0-9]{2,20}$"), "a member id, e.g. slack:U0123ABCD"),
}
"""How each chat platform's user ids look."""


@dataclass(frozen=True)
class User:
    id: int
    display_name: str
    is_owner: bool
    timezone: str | None
    profile: str


@dataclass(frozen=True)
class Chat:
    id: int
    channel: str
    platform_chat_id: str
    kind: str


@dataclass(frozen=True)
class Stranger:
    identity: Identity
    display_name: str
    attempts: int


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        display_name=row["display_name"],
        is_owner=bool(row["is_owner"]),
        timezone=row["timezone"],
        profile=row["profile"],
    )


_CHATS_KEPT = 1024  # chat rows kept in memory (a personal agent has a few chats)
UNKNOWN_KIND = "unknown"  # a chat known only from an import that did not say its kind


class People:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._chats: dict[tuple[str, str], Chat] = {}

    async def ensure_owner(self, identities: list[Identity], display_name: str = "owner") -> User:
        """The owner user, created on first start; every configured identity is linked to it."""
        row = await self._db.fetchone("SELECT * FROM users WHERE is_owner = 1 ORDER BY id LIMIT 1")
        now = iso(self._clock.now())
        async with self._db.transaction() as tx:
            if row is None:
                cursor = await tx.execute(
                    "INSERT INTO users (display_name, is_owner, created_at) VALUES (?, 1, ?)",
                    (display_name, now),
                )
                owner_id = cursor.lastrowid
            else:
                owner_id = row["id"]
            for identity in identities:
                await tx.execute(
                    "INSERT INTO identities"
                    " (channel, platform_user_id, user_id, status, created_at)"
                    " VALUES (?, ?, ?, 'allowed', ?)"
                    " ON CONFLICT (channel, platform_user_id)"
                    " DO UPDATE SET user_id = excluded.user_id, status = 'allowed'",
                    (identity.channel, identity.platform_user_id, owner_id, now),
                )
        owner = await self.get(int(owner_id))  # type: ignore[arg-type]
        assert owner is not None
        return owner

    async def owner(self) -> User | None:
        row = await self._db.fetchone("SELECT * FROM users WHERE is_owner = 1 ORDER BY id LIMIT 1")
        return _user(row) if row else None

    async def get(self, user_id: int) -> User | None:
        row = await self._db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
        return _user(row) if row else None

    async def resolve(self, identity: Identity) -> User | None:
        """The user behind an allowed identity, or None for a stranger."""
        row = await self._db.fetchone(
            "SELECT users.* FROM identities JOIN users ON users.id = identities.user_id"
            " WHERE identities.channel = ? AND identities.platform_user_id = ?"
            " AND identities.status = 'allowed'",
            (identity.channel, identity.platform_user_id),
        )
        return _user(row) if row else None

    async def admit(self, identity: Identity, display_name: str = "") -> User:
        """Allow an identity to talk to Steward, as a user of its own."""
        existing = await self.resolve(identity)
        if existing:
            return existing
        now = iso(self._clock.now())
        key = (identity.channel, identity.platform_user_id)
        user_id = await self._db.atomic(_admit, key, display_name, now)
        if user_id is None:  # allowed meanwhile
            existing = await self.resolve(identity)
            assert existing is not None
            return existing
        user = await self.get(int(user_id))
        assert user is not None
        return user

    async def admit_many(self, identities: Sequence[Identity]) -> list[Identity]:
        """`admit` for each identity not allowed yet (named as it knocked, if it did), in one
        transaction and one trip to SQLite's thread: a start with hundreds of allowed
        identities made a dozen trips for each. Returns the ones newly allowed, in order."""
        if not identities:
            return []
        now = iso(self._clock.now())
        keys = [(i.channel, i.platform_user_id) for i in identities]
        admitted = await self._db.atomic(_admit_many, keys, now)
        return [identities[position] for position in admitted]

    async def record_stranger(self, identity: Identity, display_name: str) -> Stranger:
        """Count a knock from someone not allowed; `attempts == 1` means this is the first."""
        now = iso(self._clock.now())
        await self._db.execute(
            "INSERT INTO strangers (channel, platform_user_id, display_name, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (channel, platform_user_id)"
            " DO UPDATE SET attempts = attempts + 1, last_seen = excluded.last_seen",
            (identity.channel, identity.platform_user_id, display_name, now, now),
        )
        row = await self._db.fetchone(
            "SELECT * FROM strangers WHERE channel = ? AND platform_user_id = ?",
            (identity.channel, identity.platform_user_id),
        )
        assert row is not None
        return Stranger(identity, row["display_name"], row["attempts"])

    async def stranger(self, identity: Identity) -> Stranger | None:
        row = await self._db.fetchone(
            "SELECT * FROM strangers WHERE channel = ? AND platform_user_id = ?",
            (identity.channel, identity.platform_user_id),
        )
        return Stranger(identity, row["display_name"], row["attempts"]) if row else None

    async def revoke(self, identity: Identity) -> bool:
        """Stop an allowed identity from talking to Steward (never one of the owner's); True when
        it was allowed. Its user and records stay, and /allow lets it back in."""
        changed = await self._db.execute(
            "UPDATE identities SET status = 'revoked' WHERE channel = ? AND platform_user_id = ?"
            " AND status = 'allowed' AND user_id NOT IN (SELECT id FROM users WHERE is_owner = 1)",
            (identity.channel, identity.platform_user_id),
        )
        return changed > 0

    async def revoked(self, identities: Sequence[Identity]) -> set[Identity]:
        """Those of `identities` that were allowed once and are revoked now."""
        if not identities:
            return set()
        rows = await self._db.fetchall(
            "SELECT channel, platform_user_id FROM identities WHERE status = 'revoked'"
        )
        found = {Identity(row[0], row[1]) for row in rows}
        return {identity for identity in identities if identity in found}

    async def identities_of(self, user_id: int) -> list[Identity]:
        rows = await self._db.fetchall(
            "SELECT channel, platform_user_id FROM identities"
            " WHERE user_id = ? AND status = 'allowed' ORDER BY channel",
            (user_id,),
        )
        return [Identity(r["channel"], r["platform_user_id"]) for r in rows]

    async def may_talk(self, user_id: int) -> bool:
        """The owner, or a person with an allowed identity left (revoked ones have none)."""
        found = await self._db.scalar(
            "SELECT 1 FROM users WHERE id = ? AND (is_owner = 1 OR EXISTS (SELECT 1 FROM"
            " identities WHERE identities.user_id = users.id AND status = 'allowed'))",
            (user_id,),
        )
        return found is not None

    async def is_own_chat(self, user_id: int, channel: str, platform_chat_id: str) -> bool:
        """True for a private chat in which this user has written to Steward, and nobody else
        has."""
        found = await self._db.scalar(
            "SELECT 1 FROM chats JOIN messages ON messages.chat_id = chats.id"
            " WHERE chats.channel = ? AND chats.platform_chat_id = ? AND chats.kind = 'private'"
            " AND messages.direction = 'in' AND messages.user_id = ?"
            " AND NOT EXISTS (SELECT 1 FROM messages AS other WHERE other.chat_id = chats.id"
            "  AND other.direction = 'in' AND other.user_id IS NOT ?)"
            " LIMIT 1",
            (channel, platform_chat_id, user_id, user_id),
        )
        return found == 1

    async def is_owner_chat(self, channel: str, platform_chat_id: str) -> bool:
        """True for a private chat in which the owner has written to Steward, and nobody else
        has (a platform that let a third person into a "direct" chat would make it a group)."""
        found = await self._db.scalar(
            "SELECT 1 FROM chats JOIN messages ON messages.chat_id = chats.id"
            " JOIN users ON users.id = messages.user_id"
            " WHERE chats.channel = ? AND chats.platform_chat_id = ? AND chats.kind = 'private'"
            " AND messages.direction = 'in' AND users.is_owner = 1"
            " AND NOT EXISTS (SELECT 1 FROM messages AS other"
            "  JOIN users AS them ON them.id = other.user_id"
            "  WHERE other.chat_id = chats.id AND other.direction = 'in' AND them.is_owner = 0)"
            " LIMIT 1",
            (channel, platform_chat_id),
        )
        return found == 1

    async def private_chats(self, user_id: int, channel: str | None = None) -> list[Chat]:
        """The private chats in which this user wrote to Steward, most recent first."""
        rows = await self._db.fetchall(
            "SELECT chats.*, MAX(messages.id) AS last FROM chats"
            " JOIN messages ON messages.chat_id = chats.id"
            " WHERE messages.direction = 'in' AND messages.user_id = ? AND chats.kind = 'private'"
            " AND (? IS NULL OR chats.channel = ?)"
            " GROUP BY chats.id ORDER BY last DESC",
            (user_id, channel, channel),
        )
        return [Chat(r["id"], r["channel"], r["platform_chat_id"], r["kind"]) for r in rows]

    async def set_timezone(self, user_id: int, timezone: str) -> None:
        await self._db.execute("UPDATE users SET timezone = ? WHERE id = ?", (timezone, user_id))

    async def on_default_timezone(self) -> list[int]:
        """The users with no /timezone of their own, whose times follow STEWARD_TIMEZONE: the
        ones a change of it at start-up moves (agent/scheduler/default_zone.py)."""
        rows = await self._db.fetchall(
            "SELECT id FROM users WHERE timezone IS NULL OR timezone = '' ORDER BY id"
        )
        return [int(row["id"]) for row in rows]

    async def chat(self, channel: str, platform_chat_id: str, kind: str = "private") -> Chat:
        """The chat row for a platform chat, created on first sight. A chat row never changes
        once made, so it is read once and kept; except a row of kind UNKNOWN_KIND (made by an
        import from a file that did not say), which takes the first kind a channel reports.
        Until then it counts as not private: recall keeps to it, and it is no owner's chat."""
        known = self._chats.get((channel, platform_chat_id))
        if known is not None and (known.kind != UNKNOWN_KIND or kind == UNKNOWN_KIND):
            return known
        await self._db.execute(
            "INSERT INTO chats (channel, platform_chat_id, kind, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (channel, platform_chat_id) DO UPDATE SET kind = excluded.kind"
            f" WHERE chats.kind = '{UNKNOWN_KIND}'",
            (channel, platform_chat_id, kind, iso(self._clock.now())),
        )
        row = await self._db.fetchone(
            "SELECT * FROM chats WHERE channel = ? AND platform_chat_id = ?",
            (channel, platform_chat_id),
        )
        assert row is not None
        chat = Chat(row["id"], row["channel"], row["platform_chat_id"], row["kind"])
        if len(self._chats) >= _CHATS_KEPT:
            self._chats.clear()
        self._chats[(channel, platform_chat_id)] = chat
        return chat

    async def chat_by_id(self, chat_id: int) -> Chat | None:
        row = await self._db.fetchone("SELECT * FROM chats WHERE id = ?", (chat_id,))
        return (
            Chat(row["id"], row["channel"], row["platform_chat_id"], row["kind"]) if row else None
        )

    async def move_chat(self, channel: str, old: str, new: str) -> Chat | None:
        """A chat that the platform gave a new id (a Telegram group upgraded to a supergroup),
        re-pointed: its history, memories and turns (kept by the row's id) carry over, and the
        destinations saved for it (a reminder's, the briefing's) and its approval cards follow
        (R201: the new group started with no history, Steward's own messages there counted as
        outside content, and every reminder went to the old id first). None when there is no
        row for `old`, or `new` has one already (two conversations are not merged)."""
        moved = await self._db.atomic(_move_chat, channel, old, new)
        self._chats.pop((channel, old), None)
        self._chats.pop((channel, new), None)
        if moved == _APART:
            log.warning("%s chat %s moved to %s, which has its own: kept apart", channel, old, new)
        return None if moved is None or moved == _APART else await self.chat_by_id(moved)


_APART = -1
"""`_move_chat`'s answer when the new id has a chat row already."""


def _move_chat(conn: sqlite3.Connection, channel: str, old: str, new: str) -> int | None:
    """`People.move_chat` inside its transaction: the re-pointed row's id (`_APART`: not)."""
    find = "SELECT id FROM chats WHERE channel = ? AND platform_chat_id = ?"
    row = conn.execute(find, (channel, old)).fetchone()
    if row is None:
        return None
    if conn.execute(find, (channel, new)).fetchone() is not None:
        return _APART
    conn.execute("UPDATE chats SET platform_chat_id = ? WHERE id = ?", (new, row[0]))
    for table in ("schedules", "briefing_prefs"):
        conn.execute(
            f"UPDATE {table} SET destination = json_set(destination, '$.chat_id', ?)"
            " WHERE json_valid(destination) AND json_extract(destination, '$.channel') = ?"
            " AND CAST(json_extract(destination, '$.chat_id') AS TEXT) = ?",
            (new, channel, old),
        )
    conn.execute(
        "UPDATE approvals SET platform_chat_id = ? WHERE channel = ? AND platform_chat_id = ?",
        (new, channel, old),
    )
    return int(row[0])


def _admit(
    conn: sqlite3.Connection, key: tuple[str, str], display_name: str | None, now: str
) -> int | None:
    """Allow one identity, inside the caller's transaction: its user's id, or None when it was
    allowed already. A new user is named `display_name`, or (None) as the identity knocked."""
    channel, platform_user_id = key
    row = conn.execute(
        "SELECT user_id, status FROM identities WHERE channel = ? AND platform_user_id = ?", key
    ).fetchone()
    if row is not None and row[1] == "allowed":
        return None
    if row is not None:
        user_id = int(row[0])
        conn.execute(
            "UPDATE identities SET status = 'allowed' WHERE channel = ? AND platform_user_id = ?",
            key,
        )
    else:
        if display_name is None:
            knocked = conn.execute(
                "SELECT display_name FROM strangers WHERE channel = ? AND platform_user_id = ?",
                key,
            ).fetchone()
            display_name = knocked[0] if knocked else ""
        cursor = conn.execute(
            "INSERT INTO users (display_name, created_at) VALUES (?, ?)",
            (display_name or f"{channel}:{platform_user_id}", now),
        )
        user_id = int(cursor.lastrowid or 0)
        conn.execute(
            "INSERT INTO identities (channel, platform_user_id, user_id, created_at)"
            " VALUES (?, ?, ?, ?)",
            (channel, platform_user_id, user_id, now),
        )
    conn.execute("DELETE FROM strangers WHERE channel = ? AND platform_user_id = ?", key)
    return user_id


def _admit_many(conn: sqlite3.Connection, keys: list[tuple[str, str]], now: str) -> list[int]:
    """`admit_many` on the connection's thread, inside its transaction: the positions of the
    identities it allowed."""
    return [p for p, key in enumerate(keys) if _admit(conn, key, None, now) is not None]
