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

A feed that declares XML entities, or any DTD of its own (a DOCTYPE with `[...]`), is refused
before it is parsed, as it would be decoded (R255: feedparser keeps a declared entity it thinks
safe, of any length, and its forgiving parser expands each reference: one of 60 KB used 45,000
times in a 195 KB feed made a 2.7 GB string, 164 s and 7.8 GB). Parsing has a time limit too:
the feed's (STEWARD_FEED_TIMEOUT) again, at least PARSE_SECONDS; past it the briefing stops
waiting and names the feed, though the thread parsing runs on to its end (a thread cannot be
stopped; the guards here keep that end near).

(Some 450 lines: what each guard on feedparser's input must match is how feedparser reads it,
which is best read in one place.)
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
PARSE_SECONDS = 5.0
"""The least time a parse is waited for, whatever the feed's time limit (which is the network's:
feedparser takes half a second for 500 items)."""
MAX_REDIRECTS = 5
_INVALID_REDIRECT = "it redirects to an invalid address"
_OWN_DTD = "it declares XML entities or a DTD of its own, which could expand without bound"

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


class _Declared(Exception):
    """expat met an internal DTD subset or an entity declaration."""


class _PastProlog(Exception):
    """expat reached the first element: declarations come before it."""


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

        await asyncio.to_thread(_load_parser)  # not on a feed's clock, nor on the loop
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
        limit = max(self.timeout, PARSE_SECONDS)
        try:  # a parse past its limit is left to finish in its thread, unwaited for
            async with asyncio.timeout(limit):
                parsed = await asyncio.to_thread(_parse, body, feed.url, response.headers)
        except TimeoutError:
            return FetchResult(feed, "error", error=f"parsing it took over {limit:g} s")
        except _Refused as exc:
            return FetchResult(feed, "error", error=str(exc))
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
                if declared.isascii() and declared.isdigit() and int(declared) > self.max_bytes:
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
    """feedparser on bytes (wrapped in a stream: a bare string could make it fetch a URL);
    `_Refused` for a feed that declares entities or a DTD (`_screen`)."""
    content_type = headers.get("content-type", "application/xml")
    if _unreadable_charset(body, content_type):
        body, content_type = _as_utf8(body)
    try:
        parsed = _checked_parse(body, content_type, url)
    except (LookupError, ValueError):  # a charset `_unreadable_charset` did not see: as UTF-8
        parsed = _checked_parse(*_as_utf8(body), url)
    if parsed is None:
        return None
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


def _load_parser() -> None:
    import feedparser.encodings  # lazy: only the briefing needs it
    import feedparser.sanitizer  # noqa: F401


def _checked_parse(body: bytes, content_type: str, url: str) -> Any | None:
    """`_feedparse` once `_screen` passed it; None for a large feed that is not XML. Should its
    strict parser meet entities expanding past expat's limit all the same, the forgiving one's
    reading, which expands them all, is refused."""
    _screen(body, content_type, url)
    if len(body) > LOOSE_PARSE_BYTES and not _well_formed(body):
        return None
    parsed = _feedparse(body, content_type, url)
    if "amplification factor" in str(parsed.get("bozo_exception", "")):
        raise _Refused(_OWN_DTD)
    return parsed


def _screen(body: bytes, content_type: str, url: str) -> None:
    """`_Refused` when the text feedparser reads declares an entity or holds an internal DTD
    subset: looked for in the text as feedparser decodes it (with its own function), and as it
    hands it on once it has taken out the DOCTYPE: the entities it keeps (of any length: R255)
    go to its forgiving parser, what is left to its strict one (expat)."""
    from feedparser.encodings import convert_to_utf8
    from feedparser.sanitizer import replace_doctype

    headers = {"content-location": url, "content-type": content_type}  # as `_feedparse`'s
    text = convert_to_utf8(headers, body, {})
    _, kept, entities = replace_doctype(text)
    if entities or _declares(text) or _declares(kept):
        raise _Refused(_OWN_DTD)


def _declares(text: bytes) -> bool:
    """Whether expat finds an internal DTD subset or an entity declaration (it stops at the
    first element: they come before it)."""
    from xml.parsers import expat

    parser = _expat()
    parser.StartElementHandler = _past_prolog
    try:
        parser.Parse(text, True)
    except _Declared:
        return True
    except (_PastProlog, expat.ExpatError, LookupError, ValueError):
        return False
    return False


def _expat() -> Any:
    """An expat parser as feedparser's strict one, raising `_Declared` at an internal DTD subset
    (before any declaration in it is read) or an entity declaration."""
    from xml.parsers import expat

    def doctype(_name: str, _system: str | None, _public: str | None, subset: int) -> None:
        if subset:
            raise _Declared

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = _declared
    return parser


def _declared(*_: object) -> None:
    raise _Declared


def _past_prolog(*_: object) -> None:
    raise _PastProlog


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
    """Whether expat (linear in the size, no entity of the feed's own) reads it as XML;
    `_Refused` for a declaration `_screen` did not see (it reads the feed as feedparser does)."""
    from xml.parsers import expat

    try:
        _expat().Parse(body, True)  # as feedparser's strict
    except _Declared:
        raise _Refused(_OWN_DTD) from None
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
