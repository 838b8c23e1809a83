"""The web console's one-time login links and sessions (migration 0010).

A login link carries a random token; only its SHA-256 is stored, so a copy of the database lets
nobody in. Redeeming is one compare-and-set (`used_at IS NULL AND expires_at > now`), so a link
works once, even when two requests race. A session is a second random token (the cookie), also
stored hashed, with its own CSRF token; `end_all()` ends every session at once (`/web logout`).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from memory.clock import CLOCK_SLACK, Clock, iso, parse_iso
from memory.db import Database

__all__ = ["LoginGrant", "LoginResult", "Redeemed", "WebRole", "WebSession", "WebSessionStore"]


class WebRole(StrEnum):
    OWNER = "owner"
    APPROVER = "approver"  # sees and decides approvals, nothing else


class LoginResult(StrEnum):
    OK = "ok"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True)
class LoginGrant:
    """A login link's token (shown once, never stored) and when it stops working."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Redeemed:
    result: LoginResult
    user_id: int | None = None
    identity: str = ""
    role: WebRole | None = None


@dataclass(frozen=True)
class WebSession:
    id: int
    user_id: int
    identity: str
    role: WebRole
    csrf: str
    created_at: datetime
    expires_at: datetime

    @property
    def ref(self) -> str:
        """How the audit log names this session."""
        return f"web-session:{self.id}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session(row: sqlite3.Row) -> WebSession:
    return WebSession(
        id=row["id"],
        user_id=row["user_id"],
        identity=row["identity"],
        role=WebRole(row["role"]),
        csrf=row["csrf"],
        created_at=parse_iso(row["created_at"]),
        expires_at=parse_iso(row["expires_at"]),
    )


def _lapsed(row: sqlite3.Row, now: datetime) -> bool:
    """A login link past its time, or made on a clock since set back (R240)."""
    return row["expires_at"] <= iso(now) or row["created_at"] > iso(now + CLOCK_SLACK)


class WebSessionStore:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def issue_login(
        self, user_id: int, identity: str, role: WebRole, ttl: timedelta
    ) -> LoginGrant:
        # Hex: no `_` or `*` a chat's Markdown could take for emphasis and break the link.
        token = secrets.token_hex(32)
        now = self._clock.now()
        await self._db.execute(
            "INSERT INTO web_logins (token_hash, user_id, identity, role, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (_hash(token), user_id, identity, role.value, iso(now), iso(now + ttl)),
        )
        return LoginGrant(token, now + ttl)

    async def peek(self, token: str) -> LoginResult:
        """What `redeem` would answer, without using the token up."""
        row = await self._db.fetchone(
            "SELECT used_at, created_at, expires_at FROM web_logins WHERE token_hash = ?",
            (_hash(token),),
        )
        if row is None:
            return LoginResult.UNKNOWN
        if row["used_at"] is not None:
            return LoginResult.USED
        if _lapsed(row, self._clock.now()):
            return LoginResult.EXPIRED
        return LoginResult.OK

    async def redeem(self, token: str) -> Redeemed:
        """Use a login token up: OK once, then USED; EXPIRED after its time; else UNKNOWN."""
        digest = _hash(token)
        moment = self._clock.now()
        async with self._db.transaction() as tx:
            cursor = await tx.execute("SELECT * FROM web_logins WHERE token_hash = ?", (digest,))
            row = await cursor.fetchone()
            if row is None:
                return Redeemed(LoginResult.UNKNOWN)
            if row["used_at"] is not None:
                return Redeemed(LoginResult.USED, row["user_id"], row["identity"])
            if _lapsed(row, moment):
                return Redeemed(LoginResult.EXPIRED, row["user_id"], row["identity"])
            cursor = await tx.execute(
                "UPDATE web_logins SET used_at = ? WHERE token_hash = ? AND used_at IS NULL",
                (iso(moment), digest),
            )
            if cursor.rowcount != 1:
                return Redeemed(LoginResult.USED, row["user_id"], row["identity"])
        return Redeemed(LoginResult.OK, row["user_id"], row["identity"], WebRole(row["role"]))

    async def open_session(
        self, user_id: int, identity: str, role: WebRole, ttl: timedelta
    ) -> tuple[str, WebSession]:
        """A new session: its cookie value (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        session_id = await self._db.execute(
            "INSERT INTO web_sessions (token_hash, csrf, user_id, identity, role, created_at,"
            " expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _hash(token),
                secrets.token_urlsafe(32),
                user_id,
                identity,
                role.value,
                iso(now),
                iso(now + ttl),
                iso(now),
            ),
        )
        row = await self._db.fetchone("SELECT * FROM web_sessions WHERE id = ?", (session_id,))
        assert row is not None
        return token, _session(row)

    async def session(self, token: str) -> WebSession | None:
        """The live session this cookie value opens (None: unknown, ended or expired)."""
        now = self._clock.now()
        row = await self._db.fetchone(
            "SELECT * FROM web_sessions WHERE token_hash = ? AND ended_at IS NULL"
            " AND expires_at > ? AND created_at <= ?",
            (_hash(token), iso(now), iso(now + CLOCK_SLACK)),
        )
        return _session(row) if row else None

    async def end(self, session_id: int) -> bool:
        changed = await self._db.execute(
            "UPDATE web_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
            (iso(self._clock.now()), session_id),
        )
        return changed == 1

    async def end_all(self, user_id: int | None = None) -> int:
        """End every live session (of one user); unused login links stop working too."""
        now = iso(self._clock.now())
        async with self._db.transaction() as tx:
            if user_id is None:
                cursor = await tx.execute(
                    "UPDATE web_sessions SET ended_at = ? WHERE ended_at IS NULL", (now,)
                )
                await tx.execute("UPDATE web_logins SET used_at = ? WHERE used_at IS NULL", (now,))
            else:
                cursor = await tx.execute(
                    "UPDATE web_sessions SET ended_at = ? WHERE ended_at IS NULL AND user_id = ?",
                    (now, user_id),
                )
                await tx.execute(
                    "UPDATE web_logins SET used_at = ? WHERE used_at IS NULL AND user_id = ?",
                    (now, user_id),
                )
            return int(cursor.rowcount or 0)

    async def live_count(self) -> int:
        now = self._clock.now()
        return int(
            await self._db.scalar(
                "SELECT COUNT(*) FROM web_sessions WHERE ended_at IS NULL AND expires_at > ?"
                " AND created_at <= ?",
                (iso(now), iso(now + CLOCK_SLACK)),
            )
        )
