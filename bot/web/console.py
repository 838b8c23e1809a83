"""The web console: served by the one HTTP server (`bot/http.py`) on every path no channel
mounted, with the perimeter of `security.py` around every request.

The order of checks: Host (DNS rebinding) → static files → login / logout → the session cookie
→ the holder's role now → the route and its least role → for a POST, Origin and the CSRF token
→ the page. Every response carries the security headers; pages are never cached.
"""

from __future__ import annotations

import logging
import mimetypes
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from bot.web import pages
from bot.web.auth import BASE_URL_STATE, SESSION_HOURS, current_role, role_for
from bot.web.deps import WebDeps
from bot.web.refusals import AnonymousRefusals
from bot.web.security import SECURITY_HEADERS, Perimeter, csrf_matches
from bot.web.views import Page, Routes, environment
from memory.people import Identity
from memory.web_sessions import LoginResult, WebRole, WebSession

if TYPE_CHECKING:
    from aiohttp.web_request import FileField
    from multidict import MultiDictProxy

__all__ = ["COOKIE", "SECURE_COOKIE", "WebConsole"]

log = logging.getLogger(__name__)

COOKIE = "steward_session"
SECURE_COOKIE = "__Host-steward_session"  # behind https: Secure, path /, no Domain
STATIC = Path(__file__).parent / "static"
# read once, at import: a few KB, not a file read on the event loop at every request (R108)
_STATIC_FILES = (
    {p.name: p.read_bytes() for p in STATIC.iterdir() if p.is_file()} if STATIC.is_dir() else {}
)


DOWNLOADS = frozenset({"/activity/export", "/memory-export"})
"""What a GET does beyond showing a page: the whole log or every memory, audited each time."""
_OTHER_SITES = ("same-site", "cross-site")


def _top_level(request: web.Request) -> bool:
    """The browser opens this as its page (a link followed, a form sent), not as part of
    another page (an image, a script, a frame, a fetch): Fetch Metadata's mode and dest."""
    headers = request.headers
    return headers.get("Sec-Fetch-Mode") == "navigate" and headers.get("Sec-Fetch-Dest") in (
        "document",
        None,
    )


class WebConsole:
    def __init__(self, deps: WebDeps, *, listen_host: str, port: int) -> None:
        self.deps = deps
        settings = deps.core.settings
        self.perimeter = Perimeter(
            listen_host=listen_host, port=port, public_url=settings.public_url
        )
        self.routes = Routes()
        for module in pages.MODULES:
            self.routes.include(module.routes)
        self.env = environment()
        self._flashes: dict[int, str] = {}
        self._typed: dict[int, tuple[str, dict[str, str]]] = {}
        self.refusals = AnonymousRefusals(deps.core.stores.audit, deps.core.clock.now)

    def listen_on(self, host: str, port: int) -> None:
        """The address the server really listens on (its port, when 0 was asked for)."""
        self.perimeter = Perimeter(
            listen_host=host, port=port, public_url=self.deps.core.settings.public_url
        )

    @property
    def cookie_name(self) -> str:
        return SECURE_COOKIE if self.perimeter.secure else COOKIE

    async def record_base_url(self, url: str) -> None:
        """Where /web links point when STEWARD_PUBLIC_URL is not set (the real port)."""
        await self.deps.core.stores.state.set(BASE_URL_STATE, url)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            response = await self._handle(request)
        except web.HTTPException as exc:
            response = web.Response(status=exc.status, text=exc.reason or "")
        except Exception:
            log.exception("web console: %s %s failed", request.method, request.path)
            response = web.Response(status=500, text="Something went wrong; it is in the log.")
        if not response.prepared:  # a streamed export set its headers before it began
            for name, value in SECURITY_HEADERS.items():
                response.headers[name] = value
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self.perimeter.host_ok(request.headers.get("Host")):
            self.refusals.warn(
                "web console: refused a request for host %r", request.headers.get("Host")
            )
            return web.Response(status=421, text="This host name is not Steward's.")
        path = request.path
        if path.startswith("/static/") and request.method in ("GET", "HEAD"):
            return self._static(path.removeprefix("/static/"))
        if path == "/favicon.ico" and request.method in ("GET", "HEAD"):
            return self._static("favicon.svg")
        if path == "/login" and request.method in ("GET", "HEAD"):
            return await self._sign_in_page(request)
        if path == "/login" and request.method == "POST":
            return await self._login(request)
        if path == "/login/done" and request.method == "GET":
            return self._page("signed_in.html", status=200)
        session = await self._session(request)
        if session is None:
            if request.method not in ("GET", "HEAD"):  # signed out while a form was open
                return self._page("signed_out.html", status=403, unsaved=True)
            return self._page("signed_out.html", status=401)
        now = await current_role(self.deps.core.stores, self.deps.core.settings, session)
        if now is None:
            await self.deps.core.stores.web_sessions.end(session.id)
            await self.deps.core.stores.audit.record(
                "web.session_revoked", actor=session.identity, subject=session.ref
            )
            return self._page("signed_out.html", status=401)
        role, user, identity = now
        if request.method == "POST":
            if not self.perimeter.origin_ok(
                request.headers.get("Origin"),
                request.headers.get("Referer"),
                request.headers.get("Host"),
            ):  # refused before its body is read, and counted, not one event each (review 79)
                await self.refusals.record(
                    "web.origin_refused", actor=str(identity), subject=path, session=session.ref
                )
                return web.Response(status=403, text="This request did not come from the console.")
            form = await self._form(request)
            if form is None:
                return web.Response(status=400, text="This form could not be read.")
            if not csrf_matches(
                session.csrf,
                [form.get("csrf"), request.headers.get("X-CSRF-Token")],  # type: ignore[list-item]
            ):
                await self.deps.core.stores.audit.record(
                    "web.csrf_refused", actor=str(identity), subject=path, session=session.ref
                )
                return web.Response(
                    status=403, text="Missing or wrong CSRF token; reload the page."
                )
        else:
            form = None
        if path == "/logout" and request.method == "POST":
            return await self._logout(session, identity)
        found = self.routes.find(request.method, path)
        if found is False:
            return web.Response(status=405, text="Method not allowed.")
        if found is None or found is True:
            return web.Response(status=404, text="Not found.")
        route, params = found
        page = Page(
            request=request,
            deps=self.deps,
            session=session,
            role=role,
            user=user,
            identity=identity,
            params=params,
            env=self.env,
            flashes=self._flashes,
            typed=self._typed,
            form=form,
            nav=pages.nav_for(role),
        )
        if route.role is WebRole.OWNER and role is not WebRole.OWNER:
            return page.render("forbidden.html", status=403)
        if request.headers.get("Sec-Fetch-Site") in _OTHER_SITES and (
            path in DOWNLOADS or not _top_level(request)
        ):
            # a page on another port or subdomain sends the cookie (SameSite ignores ports):
            # it could have the whole log streamed and audited again and again (review 79), or
            # load heavy pages as images, holding the database for everyone (review 36); from
            # another site only a page opened in the browser's own window is served
            return web.Response(status=403, text="Open this from the console.")
        return await route.handler(page)

    # -- signing in and out ------------------------------------------------------------------

    async def _sign_in_page(self, request: web.Request) -> web.StreamResponse:
        """A link opened shows a button; only pressing it (a POST) uses the token up. Link
        previews (Telegram's, Slack's unfurling) and mail scanners fetch a link as soon as it is
        sent: a GET that signed in spent the owner's link on them, or signed them in."""
        token = request.query.get("token", "")
        result = (
            await self.deps.core.stores.web_sessions.peek(token)
            if 0 < len(token) <= 200
            else LoginResult.UNKNOWN
        )
        if result is not LoginResult.OK and await self._session(request) is not None:
            # signed in already: a used link opened again, or Back to the sign-in page, is
            # no lock-out (R138: "This link does not work", with no way back)
            return web.Response(status=303, headers={"Location": "/"})
        if not token:  # the history's entry once the script dropped the token from it
            return self._page("link_refused.html", status=200, reason="none")
        if result is not LoginResult.OK:
            return self._page("link_refused.html", status=403, reason=result.value)
        return self._page("sign_in.html", status=200, token=token)

    async def _form(self, request: web.Request) -> MultiDictProxy[str | bytes | FileField] | None:
        """The posted form; None when it cannot be read (no boundary, an unknown charset, a
        part's unknown transfer encoding: anyone who can reach the port can send those, so a
        throttled line, not a traceback in the log each time)."""
        try:
            return await request.post()
        except (ValueError, LookupError, RuntimeError, web.RequestPayloadError) as exc:
            self.refusals.warn(
                "web console: a form to %r could not be read (%s)", request.path, type(exc).__name__
            )
            return None

    async def _login(self, request: web.Request) -> web.StreamResponse:
        stores = self.deps.core.stores
        if not self.perimeter.origin_ok(
            request.headers.get("Origin"),
            request.headers.get("Referer"),
            request.headers.get("Host"),
        ):
            await self.refusals.record("web.origin_refused", subject="/login")
            return web.Response(status=403, text="This request did not come from the console.")
        form = await self._form(request)
        if form is None:
            return web.Response(status=400, text="This form could not be read.")
        token = form.get("token", "")
        token = token if isinstance(token, str) else ""
        redeemed = await stores.web_sessions.redeem(token) if 0 < len(token) <= 200 else None
        if redeemed is None or redeemed.result is not LoginResult.OK:
            result = redeemed.result if redeemed else LoginResult.UNKNOWN
            if redeemed is not None and redeemed.identity:  # a real link, used or expired
                await stores.audit.record(
                    "web.login_refused", actor=redeemed.identity, reason=result
                )
            else:  # a guess: anyone can send those
                await self.refusals.record("web.login_refused", reason=result)
            return self._page("link_refused.html", status=403, reason=result.value)
        assert redeemed.user_id is not None and redeemed.role is not None
        settings = self.deps.core.settings
        identity = Identity.parse(redeemed.identity)
        user = await stores.people.resolve(identity)
        if (
            user is None
            or user.id != redeemed.user_id
            or role_for(settings, identity, user) is None
        ):
            await stores.audit.record(
                "web.login_refused", actor=redeemed.identity, reason="no longer allowed"
            )
            return self._page("link_refused.html", status=403, reason="not allowed")
        role = redeemed.role
        if role is WebRole.OWNER and not user.is_owner:
            role = WebRole.APPROVER
        cookie, session = await stores.web_sessions.open_session(
            user.id, redeemed.identity, role, timedelta(hours=SESSION_HOURS)
        )
        await stores.audit.record(
            "web.login", actor=redeemed.identity, subject=session.ref, role=role
        )
        response = web.Response(status=303, headers={"Location": "/login/done"})
        response.set_cookie(
            self.cookie_name,
            cookie,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=self.perimeter.secure or request.secure,
            max_age=SESSION_HOURS * 3600,
        )
        return response

    async def _logout(self, session: WebSession, identity: Identity) -> web.StreamResponse:
        await self.deps.core.stores.web_sessions.end(session.id)
        await self.deps.core.stores.audit.record(
            "web.logout", actor=str(identity), subject=session.ref, session=session.ref
        )
        response = self._page("signed_out.html", status=200, left=True)
        # with the attributes it was set with: a `__Host-` cookie deleted without `Secure`
        # is refused by the browser, which kept sending it (review 79)
        response.del_cookie(
            self.cookie_name,
            path="/",
            secure=self.perimeter.secure,
            httponly=True,
            samesite="Strict",
        )
        return response

    async def _session(self, request: web.Request) -> WebSession | None:
        value = request.cookies.get(self.cookie_name)
        if not value or len(value) > 200:
            return None
        return await self.deps.core.stores.web_sessions.session(value)

    # -- plain pages and files ---------------------------------------------------------------

    def _page(self, template: str, *, status: int, **values: object) -> web.Response:
        html = self.env.get_template(template).render(page=None, **values)
        return web.Response(text=html, content_type="text/html", status=status)

    def _static(self, name: str) -> web.StreamResponse:
        if name not in _STATIC_FILES:
            return web.Response(status=404, text="Not found.")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        response = web.Response(body=_STATIC_FILES[name], content_type=kind)
        response.headers["Cache-Control"] = "no-cache"
        return response
