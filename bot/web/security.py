"""The console's perimeter: which Host and Origin it answers, its headers, and CSRF.

- DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 reaches this server
  with `Host: evil.example:8080`; only the names Steward itself is reached by are answered
  (loopback names on the real port, STEWARD_HTTP_HOST, STEWARD_PUBLIC_URL's host).
- A state-changing request must come from the console's own origin (`Origin`, else `Referer`)
  and carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`).
- Every response forbids framing and every script, style, image or connection from elsewhere.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["CSP", "SECURITY_HEADERS", "Perimeter", "csrf_matches"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; manifest-src 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = {"0.0.0.0", "::", ""}


def _netloc(scheme: str, host: str, port: int) -> str:
    default = 443 if scheme == "https" else 80
    return host if port == default else f"{host}:{port}"


class Perimeter:
    """The hosts and origins this console answers to."""

    def __init__(self, *, listen_host: str, port: int, public_url: str | None) -> None:
        hosts: set[str] = set()
        origins: set[str] = set()
        names = list(_LOOPBACK)
        if listen_host not in _WILDCARDS:
            names.append(f"[{listen_host}]" if ":" in listen_host else listen_host)
        for name in names:
            netloc = _netloc("http", name.lower(), port)
            hosts.add(netloc)
            origins.add(f"http://{netloc}")
        self.secure = False
        if public_url:
            parts = urlsplit(public_url)
            name = (parts.hostname or "").lower()
            name = f"[{name}]" if ":" in name else name
            default = 443 if parts.scheme == "https" else 80
            # as browsers send it: a default port written out (`:443`) is left off (review 79)
            netloc = _netloc(parts.scheme, name, parts.port or default)
            hosts.add(netloc)
            origins.add(f"{parts.scheme}://{netloc}")
            self.secure = parts.scheme == "https"
        self.hosts = frozenset(hosts)
        self.origins = frozenset(origins)

    def host_ok(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.hosts

    def origin_ok(self, origin: str | None, referer: str | None, host: str | None) -> bool:
        """A state-changing request's origin (`Origin`, else the `Referer`'s; neither: refused)
        must be one of the console's and name the host the request was sent to."""
        if origin and origin != "null":
            claimed = origin.lower()
        elif referer:
            parts = urlsplit(referer)
            claimed = f"{parts.scheme}://{parts.netloc}".lower()
        else:
            return False
        return claimed in self.origins and urlsplit(claimed).netloc == (host or "").lower()


def csrf_matches(expected: str, given: Iterable[object]) -> bool:
    """Does any of `given` (a header, a form field) hold the token? A field sent as a file
    part is no token (R168: it was a 500 and a traceback)."""
    return any(
        isinstance(value, str)
        and bool(value)
        and hmac.compare_digest(expected.encode(), value.encode())
        for value in given
    )
