"""Fetching RSS and Atom feeds for the briefing: httpx with a deadline, a size cap and
conditional requests (ETag / Last-Modified), parsed by feedparser on a worker thread.

Every address it goes to, the feed's own and each redirect's, must be a public one, as for
`web_fetch` (STEWARD_FETCH_ALLOW_HOSTS names hosts you trust): a feed, or a redirect from one,
must not turn the briefing into a reader of loopback, LAN or cloud-metadata services whose
answers it would post. Proxy settings from the environment are not used.

A feed that fails gives a `FetchResult` with an `error`; nothing here raises for one bad feed:
an error no one foresaw (a library's, or ours) fails that feed alone, named in the briefing's
footer. An ETag or Last-Modified that is not printable ASCII is neither kept nor sent back (httpx
cannot send it). A feed in a charset whose decoding raises past feedparser (undefined, idna) or
takes quadratic time (punycode) is read as UTF-8; feedparser itself passes over unknown names and
codecs that are no text encoding (base64).
"""

from __future__ import annotations

import asyncio
import calendar
import codecs
import hashlib
import html
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from agent.capped_decode import ACCEPT_ENCODING, BodyRefused, BodyTooLarge, read_capped
from agent.public_web import checked_target, text_codec
from agent.secret_shapes import shown_url
from agent.tools.registry import ToolError
from memory.feeds import Feed, NewItem

if TYPE_CHECKING:
    import httpx

__all__ = ["FeedFetcher", "FetchResult", "strip_html"]

log = logging.getLogger(__name__)

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
ITEMS_PER_FETCH = 300
"""A feed's first items stored a fetch (a news feed serves 10-100): a hostile one of 40,000
small items a fetch, new keys each time, grew the database by as many rows a briefing (R126)."""
MAX_REDIRECTS = 5
_INVALID_REDIRECT = "it redirects to an invalid address"

_TAG = re.compile(r"<[^<>]+>")  # no "<" inside: linear (with it, 40,000 "<" took 2.5 s)
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
            return list(await asyncio.gather(*(self._isolated(client, feed) for feed in feeds)))

    async def _isolated(self, client: httpx.AsyncClient, feed: Feed) -> FetchResult:
        """`_fetch`, an exception it did not expect failing this feed only (gather would have
        failed them all, and so the briefing: a non-ASCII ETag once did, every day after)."""
        try:
            return await self._fetch(client, feed)
        except Exception as exc:
            log.warning("feed %s failed unexpectedly", shown_url(feed.url), exc_info=True)
            return FetchResult(feed, "error", error=f"failed unexpectedly ({type(exc).__name__})")

    async def _fetch(self, client: httpx.AsyncClient, feed: Feed) -> FetchResult:
        import httpx

        headers: dict[str, str] = {}
        if etag := _validator(feed.etag):  # one stored before it was checked is not sent
            headers["If-None-Match"] = etag
        if last_modified := _validator(feed.last_modified):
            headers["If-Modified-Since"] = last_modified
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
            etag=_validator(response.headers.get("etag")),
            last_modified=_validator(response.headers.get("last-modified")),
            title=title,
        )

    async def _download(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str]
    ) -> tuple[bytes, httpx.Response]:
        import httpx

        current = url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                target = await checked_target(current, self.allow_hosts)
            except ToolError as exc:
                raise _Refused(str(exc)) from None
            request = client.build_request(  # headers encoded here, out of the `try` below
                "GET",
                target.url,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            )
            try:
                response = await client.send(request, stream=True)
            except (ValueError, httpx.InvalidURL):  # httpx reads a Location even when it does not
                raise _Refused(_INVALID_REDIRECT) from None  # follow it: IDNA refuses "xn--a"
            try:
                if response.is_redirect and "location" in response.headers:
                    try:
                        current = urljoin(current, response.headers["location"])
                    except ValueError:
                        raise _Refused(_INVALID_REDIRECT) from None
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
            finally:
                await response.aclose()
        raise _Refused("too many redirects")


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified as it can go back out: printable ASCII, else none."""
    return value if value and value.isascii() and value.isprintable() else None


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
    content_type = headers.get("content-type", "application/xml")
    if _unreadable_charset(body, content_type):
        body, content_type = _as_utf8(body)
    if len(body) > LOOSE_PARSE_BYTES and not _well_formed(body):
        return None
    try:
        parsed = _feedparse(body, content_type, url)
    except (LookupError, ValueError):  # a charset `_unreadable_charset` did not see: as UTF-8
        parsed = _feedparse(*_as_utf8(body), url)
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        return None
    entries = parsed.entries
    if len(entries) > ITEMS_PER_FETCH:  # the newest: an archive lists oldest first (R132)
        entries = sorted(entries, key=_newness, reverse=True)[:ITEMS_PER_FETCH]
    items = [item for entry in entries if (item := _item(entry)) is not None]
    return _cut(strip_html(parsed.feed.get("title", "")), TITLE_CHARS), items  # R126: 1.8 MB


def _newness(entry: Any) -> float:
    """When an entry was published (or updated); undated ones count as new (they are dated by
    when they were first seen)."""
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    try:
        return float(calendar.timegm(published)) if published else float("inf")
    except (TypeError, ValueError, OverflowError):
        return float("inf")


def _feedparse(body: bytes, content_type: str, url: str) -> Any:
    import feedparser  # lazy: only the briefing needs it

    # no HTML sanitising (strip_html takes all markup out afterwards): its comment search is
    # worse than quadratic, and 1.9 MB of escaped "<!--" in one item held the whole process
    # 171 s in one call (R126); relative links are not resolved for the same reason
    return feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-location": url, "content-type": content_type},
        sanitize_html=False,
        resolve_relative_uris=False,
    )


_EBCDIC = b"\x4c\x6f\xa7\x94"  # "<?xm" in cp037, which feedparser reads the declaration in
_DECLARED = re.compile(rb"""encoding=['"]([^'"\n]*)['"]""")
_XML_DECLARATION = re.compile(r"\A\ufeff?\s*<\?xml[^>]*\?>")


def _unreadable_charset(body: bytes, content_type: str) -> bool:
    """Whether feedparser could be led to decode with a codec that cannot read a feed: its
    charset parameter, or an encoding declared on the first line (feedparser takes the last
    `encoding="..."` there; this looks at each, UTF-16 and -32 included)."""
    names = [
        value.strip().strip("\"'")  # as feedparser.encodings.parse_content_type reads it
        for key, _, value in (chunk.partition("=") for chunk in content_type.split(";")[1:])
        if key.strip().lower() == "charset"
    ]
    if body.startswith(_EBCDIC):
        body = body.decode("cp037").encode()
    first_line = body.split(b"\n", 1)[0].replace(b"\x00", b"")
    names += (m.group(1).decode("utf-8", "replace") for m in _DECLARED.finditer(first_line))
    return any(_cannot_read(name) for name in names if name)


def _cannot_read(name: str) -> bool:
    """Whether decoding with `name` raises past feedparser (undefined, idna; a NUL in the name)
    or takes time growing with the square of the size (punycode: 200 KB, 4 s of a thread no
    deadline stops). A name Python does not know, or one that is no text encoding (base64),
    raises LookupError, which feedparser passes over to its next guess."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        return False
    except ValueError:
        return True
    return getattr(info, "_is_text_encoding", True) and text_codec(name) is None


def _as_utf8(body: bytes) -> tuple[bytes, str]:
    """The body as UTF-8, undecodable bytes replaced, without its XML declaration (expat and
    feedparser then read UTF-8), and a content type that says so: "application/xml", whatever
    the server named, for feedparser to try its charset first."""
    text = _XML_DECLARATION.sub("", body.decode("utf-8", "replace"), count=1)
    return text.encode(), "application/xml; charset=utf-8"


def _well_formed(body: bytes) -> bool:
    """Whether expat (linear in the size, entity expansion bounded) reads it as XML."""
    from xml.parsers import expat

    try:
        expat.ParserCreate(namespace_separator=" ").Parse(body, True)  # as feedparser's strict
    except (expat.ExpatError, LookupError, ValueError):  # an encoding expat asked Python for
        return False
    return True


def _item(entry: Any) -> NewItem | None:
    title = _cut(strip_html(entry.get("title", "")), TITLE_CHARS)
    link = entry.get("link", "") or ""
    if len(link) > LINK_CHARS:
        link = ""
    if not title and not link:
        return None
    key = entry.get("id") or link or hashlib.sha256(title.encode()).hexdigest()
    summary = _cut(strip_html(entry.get("summary", "")), SUMMARY_CHARS)
    published = entry.get("published_parsed") or entry.get("updated_parsed")
    moment = datetime.fromtimestamp(calendar.timegm(published), UTC) if published else None
    return NewItem(str(key)[:500], title or link, link, summary, moment)


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "…"
