"""Who may use the web console, and how they get in: one-time login links, no passwords.

`/web` (chat) and `steward web-link` (command line) issue a link valid for ten minutes and one
use; opening it opens a session (`bot/web/console.py`). Only the owner and STEWARD_APPROVERS get
links; an approver's session shows approvals only. The role is checked again on every request,
so revoking someone or taking them out of STEWARD_APPROVERS locks their sessions out at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from agent.config import Settings
from agent.log_scrub import register_recent
from memory.people import Identity, User
from memory.stores import Stores
from memory.web_sessions import WebRole, WebSession

__all__ = [
    "BASE_URL_STATE",
    "DOWN_STATE",
    "LINK_MINUTES",
    "NOT_YOURS",
    "OFF",
    "SESSION_HOURS",
    "STARTING",
    "LoginLink",
    "base_url",
    "console_down",
    "current_role",
    "issue_link",
    "origin_of",
    "role_for",
]

LINK_MINUTES = 10
NOT_YOURS = "Only the owner and approvers can use the web console."
OFF = "The web console is off (STEWARD_WEB=off)."
SESSION_HOURS = 12
BASE_URL_STATE = "web.base_url"  # where the running console listens (the real port)
DOWN_STATE = "web.down"  # why the console of the last start is not running ("": it is)
STARTING = "it is still starting"  # DOWN_STATE until this run's console has tried its port
_WILDCARDS = {"0.0.0.0", "::", ""}


@dataclass(frozen=True)
class LoginLink:
    url: str
    minutes: int
    role: WebRole


def role_for(settings: Settings, identity: Identity, user: User | None) -> WebRole | None:
    if user is not None and user.is_owner:
        return WebRole.OWNER
    if identity in settings.approvers:
        return WebRole.APPROVER
    return None


async def current_role(
    stores: Stores, settings: Settings, session: WebSession
) -> tuple[WebRole, User, Identity] | None:
    """The session's role now (never more than it was given), or None when its holder may no
    longer use the console (revoked, no longer owner or approver)."""
    try:
        identity = Identity.parse(session.identity)
    except ValueError:
        return None
    user = await stores.people.resolve(identity)
    if user is None or user.id != session.user_id:
        return None
    role = role_for(settings, identity, user)
    if role is None:
        return None
    if session.role is WebRole.APPROVER:
        role = WebRole.APPROVER
    return role, user, identity


async def console_down(stores: Stores) -> str | None:
    """Why the console did not start this run (the port taken), or None: it runs."""
    return await stores.state.get(DOWN_STATE) or None


async def base_url(stores: Stores, settings: Settings) -> str:
    """STEWARD_PUBLIC_URL, else where the console listens (as it recorded at start-up)."""
    if settings.public_url:
        return settings.public_url
    recorded = await stores.state.get(BASE_URL_STATE)
    if recorded:
        return recorded
    host = "127.0.0.1" if settings.http_host in _WILDCARDS else settings.http_host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}"


async def issue_link(
    stores: Stores, settings: Settings, identity: Identity, user: User | None, *, via: str
) -> LoginLink | None:
    """A one-time login link for `identity` (None: they may not have one)."""
    role = role_for(settings, identity, user)
    if role is None or user is None:
        await stores.audit.record("web.link_refused", actor=str(identity), via=via)
        return None
    grant = await stores.web_sessions.issue_login(
        user.id, str(identity), role, timedelta(minutes=LINK_MINUTES)
    )
    await stores.audit.record(
        "web.link_issued", actor=str(identity), subject=f"user:{user.id}", role=role, via=via
    )
    register_recent("login link", grant.token)  # a library may log the message it is sent in
    base = await base_url(stores, settings)
    return LoginLink(f"{base}/login?token={grant.token}", LINK_MINUTES, role)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
