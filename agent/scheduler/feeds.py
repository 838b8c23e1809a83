"""Fetching RSS and Atom feeds for the briefing: httpx with a deadline, a size cap and
conditional requests (ETag / Last-Modified), parsed by feedparser on a worker thread.

Every address it goes to, the feed's own and each redirect's, must be a public one, as for
`web_fetch` (STEWARD_FETCH_ALLOW_HOSTS names hosts you trust): a feed, or a redirect from one,
must not turn the briefing into a reader of loopback, LAN or cloud-metadata services whose
answers it would post. Proxy settings from the environment are not used.

A feed that fails gives a `FetchResult` with an `error`; nothing here raises for one bad feed.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from agent.capped_decode import ACCEPT_ENCODING, BodyRefused, BodyTooLarge, read_capped
from agent.public_web import checked_target
from agent.tools.registry import ToolError
from memory.feeds import Feed, NewItem

if TYPE_CHECKING:
    import httpx

__all__ = ["FeedFetcher", "FetchResult", "strip_html"]

USER_AGENT = "Steward/0.1 (personal feed reader)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
SUMMARY_CHARS = 400
TITLE_CHARS = 300
LINK_CHARS = 2000
"""A title or link past these is cut (a link, dropped): one item's 1.9 MB title went whole into
the briefing's prompt, failed the model call, and so every briefing for a week."""
LOOSE_PARSE_BYTES = 200_000
"""Past this, a feed that is not well-formed XML is refused: feedparser's forgiving parser
takes time growing with the square of its size (200 KB: 22 s; 2 MB: half an hour of a core,
in a thread no deadline can stop)."""
MAX_REDIRECTS = 5

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def strip_html(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text or ""))).strip()


@dataclass(frozen=True)
class FetchResult:
    feed: Feed
    status: str  # "ok", "not_modified" or "error"
    items: list[NewItem] = field(default_factory=list)
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    title: str | None = None


class _TooLarge(Exception):
    pass


class _Refused(Exception):
    pass


class FeedFetcher:
    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        allow_hosts: frozenset[str] = frozenset(),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`allow_hosts`: hosts fetched although they are not public (STEWARD_FETCH_ALLOW_HOSTS)."""
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_hosts = frozenset(h.lower() for h in allow_hosts)
        self._transport = transport

    async def fetch_all(self, feeds: Sequence[Feed]) -> list[FetchResult]:
        if not feeds:
            return []
        import httpx  # lazy: only the briefing needs it

        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            follow_redirects=False,  # each hop's address is checked first
            trust_env=False,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": ACCEPT,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            transport=self._transport,
        ) as client:
            return list(await asyncio.gather(*(self._fetch(client, feed) for feed in feeds)))

    async def _fetch(self, client: httpx.AsyncClient, feed: Feed) -> FetchResult:
        import httpx

        headers: dict[str, str] = {}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        try:
            async with asyncio.timeout(self.timeout):
                body, response = await self._download(client, feed.url, headers)
        except TimeoutError:
            return FetchResult(feed, "error", error=f"timed out after {self.timeout:g} s")
        except _TooLarge:
            return FetchResult(feed, "error", error=f"larger than {self.max_bytes:,} bytes")
        except _Refused as exc:
            return FetchResult(feed, "error", error=str(exc))
        except httpx.HTTPError as exc:
            return FetchResult(feed, "error", error=_describe(exc))
        if response.status_code == 304:
            return FetchResult(feed, "not_modified")
        if response.status_code >= 400:
            return FetchResult(feed, "error", error=f"HTTP {response.status_code}")
        parsed = await asyncio.to_thread(_parse, body, feed.url, response.headers)
        if parsed is None:
            return FetchResult(feed, "error", error="not a valid RSS or Atom feed")
        title, items = parsed
        return FetchResult(
            feed,
            "ok",
            items=items,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            title=title,
        )

    async def _download(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> tuple[bytes, httpx.Response]:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                target = await checked_target(current, self.allow_hosts)
            except ToolError as exc:
                raise _Refused(str(exc)) from None
            async with client.stream(
                "GET",
                target.url,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            ) as response:
                if response.is_redirect and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                if response.status_code == 304 or response.status_code >= 400:
                    return b"", response
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.max_bytes:
                    raise _TooLarge
                try:  # inflated here under the cap, never by httpx (agent/capped_decode.py)
                    body = await read_capped(
                        response.aiter_raw(),
                        response.headers.get("content-encoding"),
                        self.max_bytes,
                    )
                except BodyTooLarge:
                    raise _TooLarge from None
                except BodyRefused as exc:
                    raise _Refused(str(exc)) from None
                return body, response
        raise _Refused("too many redirects")


def _describe(exc: httpx.HTTPError) -> str:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    if isinstance(exc, httpx.TooManyRedirects):
        return "too many redirects"
    return type(exc).__name__


def _parse(body: bytes, url: str, headers: httpx.Headers) -> tuple[str, list[NewItem]] | None:
    """feedparser on bytes (wrapped in a stream: a bare string could make it fetch a URL)."""
    import feedparser  # lazy: only the briefing needs it

    if len(body) > LOOSE_PARSE_BYTES and not _well_formed(body):
        return None

    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers={
            "content-location": url,
            "content-type": headers.get("content-type", "application/xml"),
        },
    )
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        return None
    items = [item for entry in parsed.entries if (item := _item(entry)) is not None]
    return strip_html(parsed.feed.get("title", "")), items


def _well_formed(body: bytes) -> bool:
    """Whether expat (linear in the size, entity expansion bounded) reads it as XML."""
    from xml.parsers import expat

    try:
        expat.ParserCreate(namespace_separator=" ").Parse(body, True)  # as feedparser's strict
    except expat.ExpatError:
        return False
    return True


def _item(entry: Any) -> NewItem | None:
    title = strip_html(entry.get("title", ""))
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    link = entry.get("link", "") or ""
    if len(link) > LINK_CHARS:
        link = ""
    if not title and not link:
        return None
    key = entry.get("id") or link or hashlib.sha256(title.encode()).hexdigest()
    summary = strip_html(entry.get("summary", ""))
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1].rstrip() + "…"
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    moment = datetime.fromtimestamp(calendar.timegm(published), UTC) if published else None
    return NewItem(str(key)[:500], title or link, link, summary, moment)
