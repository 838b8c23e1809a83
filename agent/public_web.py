"""Public web addresses only, checked once and connected to as checked.

`web_fetch` and the feed fetcher reach public hosts only. A host's name is resolved once, every
address it resolves to must be public (or the host allow-listed), and the request then goes to
the address that was checked, not to whatever the name resolves to a moment later: a name that
answers a public address for the check and a loopback one for the connection (DNS rebinding)
would otherwise reach the machine's own services. The Host header and TLS's server name (so the
certificate check) stay the name's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent.errors import ToolError

if TYPE_CHECKING:
    import httpx

__all__ = ["Target", "checked_target", "public_address"]


async def public_address(host: str, port: int, allow: frozenset[str]) -> str | None:
    """The address to connect to for `host`: the first it resolves to, once every one of them
    is public (None for an allow-listed host, which is connected to as usual). Refuses a host
    with any loopback, private, link-local, reserved or multicast address."""
    if host.lower() in allow:
        return None
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"could not resolve {host}: {exc.strerror}") from None
    if not infos:
        raise ToolError(f"could not resolve {host}")
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise ToolError(
                f"refused: {host} resolves to {address}, which is not a public address "
                "(STEWARD_FETCH_ALLOW_HOSTS can allow a host you trust)"
            )
    return str(infos[0][4][0])


@dataclass(frozen=True)
class Target:
    """One request's destination: `url` to connect to, with these headers and httpx request
    extensions (the name's Host header and TLS server name when the address is pinned)."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


async def checked_target(url: str, allow: frozenset[str]) -> Target:
    """Check `url` (http(s), a host, no credentials, a public address) and pin its address."""
    import httpx  # lazy, as in its callers: not at start-up (issue 19)

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ToolError("refused: only http and https URLs can be fetched")
    if not parts.hostname:
        raise ToolError("refused: the URL has no host")
    if parts.username or parts.password:
        raise ToolError("refused: URLs with credentials are not fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise ToolError(f"refused: not a valid URL ({exc})") from None
    address = await public_address(parts.hostname, port, allow)
    if address is None:
        return Target(parsed)
    extensions: dict[str, Any] = {}
    if parsed.scheme == "https":
        extensions["sni_hostname"] = parsed.raw_host.decode("ascii")
    return Target(
        parsed.copy_with(host=address),
        {"Host": parsed.netloc.decode("ascii")},
        extensions,
    )
