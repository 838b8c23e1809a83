"""Public web addresses only, checked once and connected to as checked.

`web_fetch` and the feed fetcher reach public hosts only. A host's name is resolved once, every
address it resolves to must be public (or the host allow-listed), and the request then goes to
the address that was checked, not to whatever the name resolves to a moment later: a name that
answers a public address for the check and a loopback one for the connection (DNS rebinding)
would otherwise reach the machine's own services. The Host header and TLS's server name (so the
certificate check) stay the name's.

A name IDNA refuses ("a..example", a 64-character label, "xn--a") is refused as a `ToolError`
like one that does not resolve. `text_codec` is the other thing both fetchers share: which codec
reads a page or feed that names its charset.
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent.errors import ToolError

if TYPE_CHECKING:
    import httpx

__all__ = ["Target", "checked_target", "public_address", "text_codec"]


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
    except ValueError:  # UnicodeError: IDNA refuses the name (an empty or 64+ character label)
        raise ToolError(f"could not resolve {host}: not a valid host name") from None
    if not infos:
        raise ToolError(f"could not resolve {host}")
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not _public(address):
            raise ToolError(
                f"refused: {host} resolves to {address}, which is not a public address "
                "(STEWARD_FETCH_ALLOW_HOSTS can allow a host you trust)"
            )
    return str(infos[0][4][0])


# IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 (RFC 6052, 8215),
# IPv4-compatible (::a.b.c.d) and SIIT (::ffff:0:a.b.c.d). Through a NAT64 gateway, or a host
# that routes them, they reach the IPv4 address: a private or metadata one must be refused.
_EMBEDDING = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _public(address.ipv4_mapped)
        if address.sixtofour is not None and not _public(address.sixtofour):
            return False  # 6to4 (2002::/16): the IPv4 address in bits 16-48
        if address.teredo is not None:
            return False  # Teredo (2001::/32): a tunnel to any IPv4 client
        if address.is_site_local:
            return False  # fec0::/10, deprecated, but not "global" either
        if any(address in net for net in _EMBEDDING):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            return embedded.is_global and not embedded.is_multicast and address != _UNSPECIFIED
    return address.is_global and not address.is_multicast


_UNSPECIFIED = ipaddress.IPv6Address("::")


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

    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError as exc:  # "http://[::1", a netloc NFKC would change
        raise ToolError(f"refused: not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ToolError("refused: only http and https URLs can be fetched")
    if not hostname:
        raise ToolError("refused: the URL has no host")
    if parts.username or parts.password:
        raise ToolError("refused: URLs with credentials are not fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        parsed = httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise ToolError(f"refused: not a valid URL ({exc})") from None
    try:
        named = bool(parsed.host)  # decoding the name: IDNA refuses "xn--a", which none can own
    except ValueError:
        named = False
    if not named:
        raise ToolError(f"refused: {hostname} is not a valid host name")
    address = await public_address(hostname, port, allow)
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


_NOT_FOR_PAGES = frozenset(
    {"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"}
)
"""Text codecs no page is in: undefined fails on any text, idna on any byte past ASCII (and
with errors="replace" at all), punycode takes time growing with the square of the length
(800 KB: 37 s), the escapes make any code point a page's author names (a lone surrogate)."""


def text_codec(charset: str | None) -> str | None:
    """The codec to read text its server says is in `charset`; None when it names none Python
    knows or none that reads bytes as text (base64, hex, rot13, zlib, quopri: bytes to bytes or
    text to text), or idna, punycode or undefined: the caller reads UTF-8 instead."""
    if not charset:
        return None
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_FOR_PAGES:
        return None
    return info.name
