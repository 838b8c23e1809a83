"""One spelling for a workspace path and for a web address, given before anything reads them.

A tool's arguments are made canonical as they are validated, so the policy's rules, the
approval card, the approved action's hash and the tool itself all see the same spelling (R154:
a rule denying `private/*` did not match `./private/diary.md`, which the tool read all the same;
one denying `https://tracker.example/*` did not match `HTTPS://TRACKER.example.:443/p`).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated
from urllib.parse import unquote, urlsplit, urlunsplit

import idna
from pydantic import AfterValidator

__all__ = ["WebAddress", "WorkspacePath", "as_servers_decode", "canonical_path", "canonical_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_SEPARATORS = re.compile(r"%2F|%5C|\\|//|;", re.IGNORECASE)
_PARAMETERS = re.compile(r";[^/]*")
"""A segment's parameters (`/secret;v=1/x`, `/..;/`): Tomcat and Jetty drop them before routing."""
_FULL_STOPS = ".\u3002\uff0e\uff61"  # and the ideographic, fullwidth and halfwidth ones


def canonical_path(value: str) -> str:
    """`./notes//todo.md/.` as `notes/todo.md`; a backslash is a slash, as the sandbox reads it.
    What the sandbox refuses (`..`, an absolute path) is kept as written, for it to refuse."""
    return str(PurePosixPath(value.replace("\\", "/")))


def _unescaped(part: str) -> str:
    """RFC 3986's normalisation: `%70` is `p` (an unreserved character), other escapes in
    capitals."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if _UNRESERVED.fullmatch(char) else f"%{match.group(1).upper()}"

    return _ESCAPE.sub(one, part)


def _without_dots(path: str) -> str:
    """RFC 3986's remove_dot_segments: `/a/../b/./c` is `/b/c`, as the request is sent (R157:
    `/public/../secret/x` passed a rule on `/secret/*` and fetched `/secret/x`)."""
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    last = path.rsplit("/", 1)[-1]
    return "/" + "/".join(out) + ("/" if last in (".", "..") and out else "")


def canonical_url(value: str) -> str:
    """The scheme and host in small letters, the host in its IDNA form (as it goes on the
    wire: a look-alike letter shows), without a trailing dot (a full stop of any script) or
    the scheme's own port, escapes of plain characters undone, then the path's dot segments
    resolved (at least `/`). What does not parse is kept as written, for the tool's own check
    to refuse."""
    try:
        parts = urlsplit(value.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return value
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return value
    if not host.isascii():  # UTS 46 maps the other scripts' full stops to "."
        try:
            host = idna.encode(host.rstrip(_FULL_STOPS), uts46=True).decode("ascii")
        except idna.IDNAError:
            return value
    host = host.rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{host}" if userinfo else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    path = _without_dots(_unescaped(parts.path) or "/")
    return urlunsplit((scheme, netloc, path, _unescaped(parts.query), parts.fragment))


def as_servers_decode(url: str) -> str | None:
    """`url` (canonical) as many servers read its path when it holds an escaped slash, a
    backslash, two slashes in a row or a segment's parameters: parameters dropped, every escape
    decoded, a backslash as a slash, slashes in a row as one, dot segments resolved again; None
    when it holds none of them (the folders a rule names are those the URL shows). The URL is
    sent as it is; this is the other name a rule must see (R158: `/secret%2fx` and
    `/public/%2e%2e%2fsecret/x` passed a deny rule on `/secret/*` and fetched it; R160: so did
    `//secret/x`; so would `/public/..;/secret/x` on Tomcat)."""
    parts = urlsplit(url)
    if not _SEPARATORS.search(parts.path):
        return None
    path = _PARAMETERS.sub("", parts.path)  # `/public/..;/secret/x` is `/secret/x` to Tomcat
    path = re.sub("/{2,}", "/", unquote(path).replace("\\", "/"))  # merged, as nginx does
    path = _without_dots(path or "/")
    decoded = urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
    return decoded if decoded != url else None


WorkspacePath = Annotated[str, AfterValidator(canonical_path)]
"""A path in the workspace, as a tool's parameter: canonical once validated."""

WebAddress = Annotated[str, AfterValidator(canonical_url)]
"""An http(s) address, as a tool's parameter: canonical once validated."""
