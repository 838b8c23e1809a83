"""Rendering: the Jinja2 environment, the request a page handler gets, and its routes.

Templates are in `bot/web/templates/` (autoescaped; no inline script or style, which the CSP
forbids). A handler is `async def handler(page: Page) -> web.StreamResponse`, registered on a
`Routes` with its path (`{name}` segments are parameters) and the least role that may use it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web
from markupsafe import Markup
from multidict import MultiDictProxy

from agent.cards import escape_invisible
from bot.web.deps import WebDeps
from memory.clock import parse_iso
from memory.people import Identity, User
from memory.web_sessions import WebRole, WebSession

__all__ = ["TEMPLATES", "Page", "Route", "Routes", "Typed", "environment"]

TEMPLATES = Path(__file__).parent / "templates"

Handler = Callable[["Page"], Awaitable[web.StreamResponse]]


def _when(value: Any, zone: str = "UTC") -> str:
    if value is None or value == "":
        return ""
    moment = parse_iso(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


_REORDERING = re.compile("[\u202a-\u202e\u2066-\u2069]")
"""Bidi embeddings, overrides and isolates: a name or a memory holding U+202E showed "asked by
Carol(Owner's Turn)" on an approval card (R168). Marks (U+200E/F) stay: Hebrew needs them."""


class Typed(str):
    """What someone typed, printed back into a form field (`|typed`): left as typed, since the
    field gives it back when the form is sent (R172: a refused form's Hebrew came back with
    its isolates as `\\u2067`, and was saved so), and a field shows it apart from the page."""


def _unreordered(value: Any) -> Any:
    """Every value a template prints, with the characters that reorder what follows escaped."""
    if isinstance(value, str) and not isinstance(value, Markup | Typed):
        return _REORDERING.sub(lambda m: f"\\u{ord(m[0]):04x}", value)
    return value


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=_unreordered,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["visible"] = escape_invisible  # as chat's cards show it
    env.filters["typed"] = Typed
    env.filters["thousands"] = lambda n: f"{int(n or 0):,}"
    env.filters["usd"] = lambda n: f"${float(n or 0):.4f}"
    return env


@dataclass
class Page:
    """One request to a signed-in console page."""

    request: web.Request
    deps: WebDeps
    session: WebSession
    role: WebRole
    user: User
    identity: Identity
    params: dict[str, str]
    env: jinja2.Environment
    flashes: dict[int, str]
    form: MultiDictProxy[Any] | None = None
    nav: list[tuple[str, str]] = field(default_factory=list)
    typed: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)
    """What a refused form held, by session: the form it came from shows it again (R138)."""
    _shown: tuple[str, dict[str, str]] | None = None

    @property
    def owner(self) -> bool:
        return self.role is WebRole.OWNER

    @property
    def zone(self) -> str:
        return self.user.timezone or self.deps.core.settings.timezone

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def query(self, name: str, default: str = "") -> str:
        return self.request.query.get(name, default).strip()

    async def audit(self, kind: str, subject: str = "", **detail: Any) -> None:
        """Every web action, with the session it came from."""
        await self.deps.core.stores.audit.record(
            kind, actor=str(self.identity), subject=subject, session=self.session.ref, **detail
        )

    def render(self, template: str, *, status: int = 200, **values: Any) -> web.Response:
        self._shown = self.typed.pop(self.session.id, None)
        html = self.env.get_template(template).render(
            page=self, csrf=self.session.csrf, flash=self.flashes.pop(self.session.id, ""), **values
        )
        return web.Response(text=html, content_type="text/html", status=status)

    def fragment(self, template: str, **values: Any) -> web.Response:
        html = self.env.get_template(template).render(page=self, csrf=self.session.csrf, **values)
        return web.Response(text=html, content_type="text/html")

    def redirect(self, path: str, message: str = "") -> web.Response:
        if message:
            self.flashes[self.session.id] = message
        return web.Response(status=303, headers={"Location": path})

    def refused(self, path: str, message: str) -> web.Response:
        """Back to `path` saying why the form was refused, the form showing what was typed."""
        if self.form is not None:
            fields = {k: v for k, v in self.form.items() if k != "csrf" and isinstance(v, str)}
            self.typed[self.session.id] = (self.request.path, fields)
        return self.redirect(path, message)

    def typed_value(self, action: str, name: str) -> str:
        """What was typed into field `name` of the form posting to `action`, refused just now."""
        if self._shown is None or self._shown[0] != action:
            return ""
        return self._shown[1].get(name, "")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    role: WebRole


class Routes:
    def __init__(self) -> None:
        self.items: list[Route] = []

    def _add(self, method: str, path: str, role: WebRole) -> Callable[[Handler], Handler]:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[A-Za-z0-9_-]+)", path)
        pattern = re.compile(f"^{regex}$")

        def register(handler: Handler) -> Handler:
            self.items.append(Route(method, pattern, handler, role))
            return handler

        return register

    def get(self, path: str, *, role: WebRole = WebRole.OWNER) -> Callable[[Handler], Handler]:
        return self._add("GET", path, role)

    def post(self, path: str, *, role: WebRole = WebRole.OWNER) -> Callable[[Handler], Handler]:
        return self._add("POST", path, role)

    def include(self, other: Routes) -> None:
        self.items.extend(other.items)

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | bool | None:
        """The route and its parameters; False when the path exists for another method."""
        other_method = False
        for route in self.items:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, match.groupdict()
            other_method = True
        return False if other_method else None
