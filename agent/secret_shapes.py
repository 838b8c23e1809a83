"""What an error line or a log may show of a value that may hold a secret: a URL without its
user, password, path or query, and whether a word looks like a key at all."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["looks_like_key", "shown_url"]

_KEY = re.compile(
    r"(?<![A-Za-z0-9])(sk-|xox[a-z]-|xapp-|gh[pousr]_|github_pat_|glpat-)|[A-Za-z0-9_+/=-]{24,}"
)
"""What a key or token looks like: a known prefix, or a long unbroken run of random text."""


def looks_like_key(text: str) -> bool:
    """Whether `text` may be a key: then an error line must not show it (the journal keeps it)."""
    return bool(_KEY.search(text))


def shown_url(value: str) -> str | None:
    """A URL setting as an error line may show it: scheme, host and a numeric port, `***@` for
    any user or password, `/…` for a path or query (a token may sit in either). None when it
    is no scheme://host URL (a scheme is a short word), or its host looks like a key: a value
    pasted into the wrong setting."""
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
    except ValueError:
        return None
    if not re.fullmatch(r"[a-z][a-z+.-]{0,9}", parts.scheme) or not host:
        return None
    if looks_like_key(f"{parts.scheme} {host}"):
        return None
    _, at, hostport = parts.netloc.rpartition("@")
    _, colon, port = hostport.rpartition("]")[2].rpartition(":")
    return "".join(
        (
            f"{parts.scheme}://",
            "***@" if at else "",
            f"[{host}]" if ":" in host else host,
            (f":{port}" if port.isdigit() and len(port) <= 6 else ":***") if colon else "",
            "/…" if parts.path not in ("", "/") or parts.query or parts.fragment else "",
        )
    )
