"""Linking one person's identities across channels.

`/link` in one channel issues a short one-time code; entering it from another identity makes
that identity (and everything its user owned: goals, memories, schedules, …) part of the user
who asked for the code. Codes expire, work once, and never turn someone into the owner's
identity the wrong way round: an owner identity cannot be merged into a non-owner. `unlink`
takes one identity away again, as a person of its own.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from memory.clock import CLOCK_SLACK, Clock, iso, parse_iso
from memory.db import Database
from memory.people import Identity

__all__ = [
    "CODE_ALPHABET",
    "Detached",
    "LinkCode",
    "LinkResult",
    "Links",
    "Redemption",
    "normalize_code",
]

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: easy to read and type
CODE_LENGTH = 8
_NOT_CODE = re.compile(r"[^A-Z0-9]")

# Tables whose user_id is an identity-to-user mapping or a code, not a record the user owns.
_NOT_OWNED = frozenset({"users", "identities", "link_codes", "strangers"})


def normalize_code(text: str) -> str:
    """What the user typed, as issued: upper case, separators dropped (`k3f9-pq2x` → K3F9PQ2X)."""
    return _NOT_CODE.sub("", text.upper())


def _stored(code: str) -> str:
    """A code as the database keeps it: its SHA-256, so that a backup taken in its ten
    minutes, or anyone reading the file, holds no code that links an identity."""
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class LinkCode:
    code: str
    user_id: int
    expires_at: datetime

    @property
    def display(self) -> str:
        return f"{self.code[:4]}-{self.code[4:]}"


class LinkResult(StrEnum):
    LINKED = "linked"
    UNKNOWN = "unknown"  # no such code, used already, or expired
    SAME_USER = "same_user"
    OWNER_PROTECTED = "owner_protected"
    NOT_ALLOWED = "not_allowed"  # the entering identity is not an allowed one


@dataclass(frozen=True)
class Detached:
    """An identity taken from its user: the user it left, the new one it became, the private
    chats that went with it, and how many of the old user's schedules there stopped."""

    old_user_id: int
    user_id: int
    chat_ids: tuple[int, ...]
    schedules_stopped: int
    stopped_in: tuple[int, ...] = ()
    """The chats whose schedules of the old user stopped, and whose requests are withdrawn:
    its own, or every DM of the old user on its channel when which was its is unknown."""
    undelivered: int = 0
    """Messages waiting to go to those chats that will not be sent."""
    chats_unknown: bool = False
    """Its private chats could not be told from another account's of the old user on the same
    channel (a Slack DM's id is not the person's): they stayed where they were."""


@dataclass(frozen=True)
class Redemption:
    result: LinkResult
    user_id: int | None = None
    merged_user_id: int | None = None


class Links:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        chats_changed: Callable[[Iterable[int] | None], None] = lambda chats: None,
    ) -> None:
        """`chats_changed`: told, once committed, the chats whose messages an unlink changed
        in SQLite, or None after a link renamed a person's messages everywhere (the message
        log's windows of them are stale)."""
        self._db = db
        self._clock = clock
        self._chats_changed = chats_changed

    async def issue(
        self, user_id: int, identity: Identity, ttl: timedelta = timedelta(minutes=10)
    ) -> LinkCode:
        """A new code for `user_id`, shown to `identity`; its earlier unused codes stop working."""
        now = self._clock.now()
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        async with self._db.transaction() as tx:
            await tx.execute(
                "DELETE FROM link_codes WHERE used_at IS NULL"
                " AND ((channel = ? AND platform_user_id = ?) OR expires_at < ?)",
                (identity.channel, identity.platform_user_id, iso(now)),
            )
            await tx.execute(
                "INSERT INTO link_codes (code, user_id, channel, platform_user_id, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    _stored(code),
                    user_id,
                    identity.channel,
                    identity.platform_user_id,
                    iso(now),
                    iso(now + ttl),
                ),
            )
        return LinkCode(code, user_id, now + ttl)

    async def discard(self, text: str) -> bool:
        """Make an unused code stop working (it was shown where others read it)."""
        removed = await self._db.execute(
            "DELETE FROM link_codes WHERE code = ? AND used_at IS NULL",
            (_stored(normalize_code(text)),),
        )
        return removed > 0

    async def redeem(self, text: str, identity: Identity) -> Redemption:
        """Link `identity`'s user into the user who asked for the code, in one transaction."""
        code = _stored(normalize_code(text))
        now = self._clock.now()
        async with self._db.transaction() as tx:
            row = await (
                await tx.execute(
                    "SELECT link_codes.*, users.is_owner FROM link_codes"
                    " JOIN users ON users.id = link_codes.user_id"
                    " WHERE code = ? AND used_at IS NULL",
                    (code,),
                )
            ).fetchone()
            if row is None or parse_iso(row["expires_at"]) <= now:
                return Redemption(LinkResult.UNKNOWN)
            if parse_iso(row["created_at"]) > now + CLOCK_SLACK:
                return Redemption(LinkResult.UNKNOWN)
            entering = await (
                await tx.execute(
                    "SELECT users.id, users.is_owner FROM identities"
                    " JOIN users ON users.id = identities.user_id"
                    " WHERE channel = ? AND platform_user_id = ? AND status = 'allowed'",
                    (identity.channel, identity.platform_user_id),
                )
            ).fetchone()
            if entering is None:
                return Redemption(LinkResult.NOT_ALLOWED)
            target, source = int(row["user_id"]), int(entering["id"])
            if target == source:
                return Redemption(LinkResult.SAME_USER, target)
            if entering["is_owner"] and not row["is_owner"]:
                return Redemption(LinkResult.OWNER_PROTECTED)
            await tx.execute(
                "UPDATE link_codes SET used_at = ?, used_by = ? WHERE code = ?",
                (iso(now), str(identity), code),
            )
            await tx.execute(
                "UPDATE identities SET user_id = ? WHERE user_id = ?", (target, source)
            )
            tables = await (
                await tx.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                    " AND name NOT LIKE 'sqlite_%'"
                )
            ).fetchall()
            for table in tables:
                name = table["name"]
                if name in _NOT_OWNED or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    continue
                columns = await (await tx.execute(f"PRAGMA table_info({name})")).fetchall()
                if any(column["name"] == "user_id" for column in columns):
                    await tx.execute(
                        f"UPDATE OR IGNORE {name} SET user_id = ? WHERE user_id = ?",
                        (target, source),
                    )
        self._chats_changed(None)
        return Redemption(LinkResult.LINKED, target, source)

    async def unlink(self, identity: Identity) -> Detached | None:
        """Take an identity away from its user (an account linked by mistake, or one dropped
        from STEWARD_OWNER): it becomes a person of its own, not allowed until /allow. Its
        private chats go with it (their messages, so they are nobody else's chat any more),
        the schedules its old user kept there stop, and its link codes and console links and
        sessions end. None when it has no user, or it is its user's only allowed identity."""
        now = iso(self._clock.now())
        key = (identity.channel, identity.platform_user_id)
        async with self._db.transaction() as tx:
            row = await (
                await tx.execute(
                    "SELECT user_id FROM identities WHERE channel = ? AND platform_user_id = ?",
                    key,
                )
            ).fetchone()
            if row is None:
                return None
            old = int(row["user_id"])
            others = await (
                await tx.execute(
                    "SELECT channel FROM identities WHERE user_id = ? AND status = 'allowed'"
                    " AND NOT (channel = ? AND platform_user_id = ?)",
                    (old, *key),
                )
            ).fetchall()
            if not others:  # (the owner always keeps the console)
                return None
            same_channel = any(o["channel"] == identity.channel for o in others)
            # a Slack DM's id is not the person's: with another account of theirs on Slack,
            # which DM was this one's cannot be told, so no chat moves; the account leaves all
            # the same (R123: kept linked, an account dropped from STEWARD_OWNER stayed owner)
            unknown = same_channel and identity.channel != "telegram"
            cursor = await tx.execute(
                "INSERT INTO users (display_name, is_owner, created_at) VALUES ('', 0, ?)", (now,)
            )
            new = int(cursor.lastrowid or 0)
            await tx.execute(
                "UPDATE identities SET user_id = ?, status = 'revoked'"
                " WHERE channel = ? AND platform_user_id = ?",
                (new, *key),
            )
            # Telegram: a private chat's id is the person's; elsewhere, the old user's private
            # chats on that channel (no other identity of theirs is on it: checked above)
            chats = await (
                await tx.execute(
                    "SELECT DISTINCT chats.id FROM chats JOIN messages ON messages.chat_id ="
                    " chats.id WHERE chats.channel = ? AND chats.kind = 'private'"
                    " AND messages.user_id = ? AND (chats.platform_chat_id = ? OR (? = 0"
                    " AND chats.channel != 'telegram'))",
                    (identity.channel, old, identity.platform_user_id, int(same_channel)),
                )
            ).fetchall()
            if unknown:  # any of the old user's DMs there may be its: what is scheduled there
                # stops all the same, its messages stay (R124: reminders went on to it)
                chats = await (
                    await tx.execute(
                        "SELECT DISTINCT chats.id FROM chats JOIN messages ON messages.chat_id"
                        " = chats.id WHERE chats.channel = ? AND chats.kind = 'private'"
                        " AND messages.user_id = ?",
                        (identity.channel, old),
                    )
                ).fetchall()
            # and the DM Steward opened to its id itself, which may hold only Steward's own
            # messages (R125: an owner who wrote only in channels kept getting check-ins)
            opened = await (
                await tx.execute(
                    "SELECT id FROM chats WHERE channel = ? AND platform_chat_id = ?"
                    " AND kind = 'private'",
                    key,
                )
            ).fetchall()
            stop_in = list(
                dict.fromkeys([*(int(c["id"]) for c in chats), *(int(c["id"]) for c in opened)])
            )
            chat_ids = [] if unknown else stop_in
            marks = ",".join("?" * len(chat_ids)) or "NULL"
            await tx.execute(
                f"UPDATE messages SET user_id = ? WHERE user_id = ? AND chat_id IN ({marks})",
                (new, old, *chat_ids),
            )
            # and what went before stays out of the conversation: whoever holds the account
            # next (/allow lets them back in as someone else) starts afresh (R130: a phone
            # passed on, the new holder's first turn had the owner's PIN in its history)
            await tx.execute(
                f"UPDATE messages SET in_history = 0 WHERE chat_id IN ({marks})", chat_ids
            )
            marks = ",".join("?" * len(stop_in)) or "NULL"
            # nor does what was waiting to go there go out when the chat is back (R130: a
            # reply that failed while Telegram was down went to the lost phone after)
            # (which Slack DM was its unknown: only the one opened to its id, R132: the owner's
            # replies queued for their other account were dropped)
            given_up = [int(c["id"]) for c in opened] if unknown else stop_in
            undelivered = await tx.execute(
                "UPDATE messages SET status = 'undeliverable', updated_at = ?"
                " WHERE direction = 'out' AND status IN ('pending', 'failed')"
                f" AND chat_id IN ({','.join('?' * len(given_up)) or 'NULL'})",
                (now, *given_up),
            )
            stopped = await tx.execute(
                "UPDATE schedules SET status = 'cancelled', updated_at = ? WHERE user_id = ?"
                f" AND status IN ('active', 'firing') AND chat_id IN ({marks})",
                (now, old, *stop_in),
            )
            await tx.execute(
                "DELETE FROM link_codes WHERE used_at IS NULL AND channel = ?"
                " AND platform_user_id = ?",
                key,
            )
            await tx.execute(
                "UPDATE web_logins SET used_at = ? WHERE used_at IS NULL AND identity = ?",
                (now, str(identity)),
            )
            await tx.execute(
                "UPDATE web_sessions SET ended_at = ? WHERE ended_at IS NULL AND identity = ?",
                (now, str(identity)),
            )
        self._chats_changed(stop_in)
        return Detached(
            old,
            new,
            tuple(chat_ids),
            stopped.rowcount,
            tuple(stop_in),
            chats_unknown=unknown,
            undelivered=undelivered.rowcount,
        )
