"""Hostile answers to web_fetch and the briefing's feed fetcher, from a loopback server.

A non-ASCII ETag, a redirect to a name IDNA refuses, a charset that is no text encoding and a
page that drips a byte at a time each once failed a whole briefing (every feed with the one),
gave the model "failed unexpectedly", or held the owner's chat far past STEWARD_FETCH_TIMEOUT.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from aiohttp import web
from fakes.anthropic import FakeAnthropic, Reply
from fakes.recorded_site import serve_recorded
from harness import running_steward

from agent.errors import ToolError
from agent.public_web import checked_target
from agent.sandbox import Sandbox
from agent.scheduler.feeds import FeedFetcher, strip_html
from agent.tools.registry import ToolResult
from agent.tools.web import web_fetch
from memory.clock import FrozenClock
from memory.feeds import Feed

DAY1 = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
LOOPBACK = frozenset({"127.0.0.1"})
NON_ASCII_ETAG = '"caf\u00e9"'
BAD_NAMES = ["http://a..example/feed", "http://" + "a" * 64 + ".example/", "http://xn--a.example/"]
"""Names IDNA refuses: an empty label, a 64-character one, an "xn--" label that decodes to none."""


def rss(title: str, *, declared: str = "", filler: int = 0) -> bytes:
    """A feed of one item; `filler` digits after a "-" in its description (punycode's own)."""
    encoding = f' encoding="{declared}"' if declared else ""
    description = f"<description>-{'ab' * filler}</description>" if filler else ""
    return (
        f'<?xml version="1.0"{encoding}?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{title}</title><link>http://news.example/{title.split()[0]}</link>"
        f"{description}</item></channel></rss>"
    ).encode()


class Hostile:
    """127.0.0.1: feeds and pages with hostile headers, redirects and timing."""

    def __init__(self) -> None:
        self.base = ""
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def headers(self, path: str) -> list[dict[str, str]]:
        return [headers for seen, headers in self.requests if seen == path]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/plain.xml", self._plain)
        app.router.add_get("/etag.xml", self._etag)
        app.router.add_get("/moved", self._moved)
        app.router.add_get("/charset", self._charset)
        app.router.add_get("/drip", self._drip)
        app.router.add_get("/hop", self._hop)
        self._runner, self.base = await serve_recorded(app, self.requests)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _plain(self, request: web.Request) -> web.Response:
        return web.Response(body=rss("Plain news"), content_type="application/rss+xml")

    async def _etag(self, request: web.Request) -> web.Response:
        """Validators past ASCII (aiohttp sends them as UTF-8; httpx reads them back)."""
        return web.Response(
            body=rss("Etag news"),
            content_type="application/rss+xml",
            headers={"ETag": NON_ASCII_ETAG, "Last-Modified": "Tue, 10 M\u00e4r 2026"},
        )

    async def _moved(self, request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": BAD_NAMES[int(request.query["i"])]})

    async def _charset(self, request: web.Request) -> web.Response:
        """`?cs=` in the Content-Type; with `?feed=`, a feed, `?declared=` in its XML declaration
        `?filler=` that many digits for punycode, `?garbled=` a byte past ASCII as its name."""
        query = request.query
        if "feed" in query:
            filler = int(query.get("filler", "0"))  # with none past ASCII, punycode reads on
            title = "Digits news" if filler else "Caf\u00e9 news"
            body = rss(title, declared=query.get("declared", ""), filler=filler)
            if "garbled" in query:  # a declared name that is not UTF-8: feedparser raises
                body = body.replace(b'"1.0"?>', b'"1.0" encoding="\xff"?>', 1)
            kind = "application/rss+xml"
        else:
            body, kind = "hello caf\u00e9 world".encode(), "text/plain"
        charset = f"; charset={query['cs']}" if "cs" in query else ""
        return web.Response(body=body, headers={"Content-Type": kind + charset})

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        """A byte every 0.3 s for 6 s: no single read waits long."""
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for _ in range(20):
            await response.write(b"x")
            await asyncio.sleep(0.3)
        return response

    async def _hop(self, request: web.Request) -> web.Response:
        """`?n=` redirects more, each after 0.4 s: every hop quick, all of them not."""
        await asyncio.sleep(0.4)
        left = int(request.query["n"])
        if left == 0:
            return web.Response(text="arrived")
        return web.Response(status=302, headers={"Location": f"/hop?n={left - 1}"})


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def feed(feed_id: int, url: str, etag: str | None = None, modified: str | None = None) -> Feed:
    return Feed(feed_id, 1, url, "", etag, modified, None, None, None)


def fetcher(transport: httpx.AsyncBaseTransport | None = None) -> FeedFetcher:
    return FeedFetcher(timeout=5, max_bytes=400_000, allow_hosts=LOOPBACK, transport=transport)


async def fetch(tmp_path: Path, url: str, limit: float = 15.0) -> ToolResult:
    sandbox = Sandbox(tmp_path / "workspace", fetch_allow_hosts=LOOPBACK, fetch_timeout=limit)
    ctx = SimpleNamespace(deps=SimpleNamespace(sandbox=sandbox))
    return await web_fetch.run(ctx, {"url": url})  # type: ignore[arg-type]


# -- 1. validators and one feed's failure --------------------------------------------------------


async def test_a_non_ascii_validator_is_neither_kept_nor_sent(hostile: Hostile) -> None:
    [first] = await fetcher().fetch_all([feed(1, hostile.url("/etag.xml"))])
    assert first.status == "ok", first
    assert first.etag is None and first.last_modified is None  # not stored to go back out
    # one an earlier version stored, with a feed beside it: no request of theirs fails
    stored = feed(1, hostile.url("/etag.xml"), NON_ASCII_ETAG, "Tue, 10 M\u00e4r 2026")
    results = await fetcher().fetch_all([stored, feed(2, hostile.url("/plain.xml"))])
    assert [r.status for r in results] == ["ok", "ok"], results
    last = hostile.headers("/etag.xml")[-1]
    assert "If-None-Match" not in last and "If-Modified-Since" not in last


class _Faulty(httpx.AsyncHTTPTransport):
    """The real transport, but a request for /fault.xml raises what httpx does not wrap."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/fault.xml":
            raise RuntimeError("a fault no one foresaw")
        return await super().handle_async_request(request)


async def test_an_error_no_one_foresaw_fails_that_feed_alone(
    hostile: Hostile, caplog: pytest.LogCaptureFixture
) -> None:
    """Its log line names the feed's host, not its path or query: a private feed's URL often
    holds its token (R108)."""
    private = hostile.url("/fault.xml") + "?token=feedsecret123"
    feeds = [feed(1, private), feed(2, hostile.url("/plain.xml"))]
    faulty, plain = await fetcher(_Faulty()).fetch_all(feeds)
    assert faulty.status == "error" and faulty.error == "failed unexpectedly (RuntimeError)"
    assert plain.status == "ok" and [i.title for i in plain.items] == ["Plain news"]
    [line] = [r.getMessage() for r in caplog.records if "failed unexpectedly" in r.getMessage()]
    assert "feedsecret123" not in line and "127.0.0.1" in line


# -- 2. names IDNA refuses -----------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(BAD_NAMES)))
async def test_a_redirect_to_a_name_idna_refuses_fails_that_feed_alone(
    hostile: Hostile, index: int
) -> None:
    feeds = [feed(1, hostile.url(f"/moved?i={index}")), feed(2, hostile.url("/plain.xml"))]
    moved, plain = await fetcher().fetch_all(feeds)
    assert (moved.status, plain.status) == ("error", "ok"), (moved, plain)
    assert moved.error in (
        f"could not resolve {BAD_NAMES[index].split('/')[2]}: not a valid host name",
        "it redirects to an invalid address",
    )


@pytest.mark.parametrize("index", range(len(BAD_NAMES)))
async def test_web_fetch_says_a_redirect_names_an_invalid_host(
    tmp_path: Path, hostile: Hostile, index: int
) -> None:
    moved = hostile.url(f"/moved?i={index}")
    result = await fetch(tmp_path, moved)
    assert result.is_error and "unexpectedly" not in result.content, result.content
    assert result.content in (
        f"could not resolve {BAD_NAMES[index].split('/')[2]}: not a valid host name",
        f"could not fetch {moved}: it redirects to an invalid address",
    )


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://a..example/", "could not resolve a..example: not a valid host name"),
        ("http://" + "b" * 64 + ".example/", "not a valid host name"),
        ("http://xn--a.example/", "refused: xn--a.example is not a valid host name"),
        ("http://[::1/", "refused: not a valid URL (Invalid IPv6 URL)"),
    ],
)
async def test_checked_target_refuses_a_name_idna_refuses(url: str, said: str) -> None:
    """Refused before any DNS query: IDNA fails on the name itself."""
    with pytest.raises(ToolError) as refused:
        await checked_target(url, frozenset())
    assert said in str(refused.value)


# -- 3. one deadline for a whole web_fetch -------------------------------------------------------


@pytest.mark.parametrize(("path", "where"), [("/drip", "/drip"), ("/hop?n=4", "/hop?n=")])
async def test_web_fetch_timeout_is_a_deadline_for_the_whole_fetch(
    tmp_path: Path, hostile: Hostile, path: str, where: str
) -> None:
    """A page dripping a byte every 0.3 s, or four redirects 0.4 s apart: no read waits 1 s."""
    start = time.monotonic()
    result = await fetch(tmp_path, hostile.url(path), limit=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 2.0, f"a 1 s limit took {elapsed:.1f} s: {result.content[:80]!r}"
    assert result.is_error and result.content.startswith("could not fetch "), result.content
    assert where in result.content and result.content.endswith("did not finish within 1 s")


# -- 4. charsets that are no text encoding --------------------------------------------------------


@pytest.mark.parametrize(
    "charset",
    ["base64", "rot13", "hex", "zlib", "quopri", "idna", "undefined", "punycode", "no-such-codec"],
)
async def test_a_charset_that_reads_no_text_gives_the_page_as_utf8(
    tmp_path: Path, hostile: Hostile, charset: str
) -> None:
    result = await fetch(tmp_path, hostile.url(f"/charset?cs={charset}"))
    assert not result.is_error, result.content
    assert result.content.endswith("\n\nhello caf\u00e9 world"), result.content


@pytest.mark.parametrize(
    "query",
    [
        "cs=undefined",
        "declared=undefined",  # application/rss+xml with no charset: the declaration's
        "cs=punycode&filler=150000",  # 300 KB: 4 s of a core before punycode's error
        "declared=punycode&filler=99000",  # 198 KB, under LOOSE_PARSE_BYTES: 1.7 s
        "declared=undefined&filler=100000",  # past it: expat asked Python for "undefined"
        "cs=idna",
        "cs=base64",
        "garbled=1",
    ],
)
async def test_a_feed_in_a_charset_that_reads_no_text_is_read_as_utf8(
    hostile: Hostile, query: str
) -> None:
    start = time.monotonic()
    [result] = await fetcher().fetch_all([feed(1, hostile.url(f"/charset?feed=1&{query}"))])
    assert result.status == "ok", result
    title = "Digits news" if "filler" in query else "Caf\u00e9 news"
    assert [item.title for item in result.items] == [title]
    assert time.monotonic() - start < 1.0  # 0.03 s read as UTF-8


# -- the briefing, whole --------------------------------------------------------------------------


async def test_the_briefing_goes_on_past_hostile_feeds_day_after_day(
    tmp_path: Path, fake_model: FakeAnthropic, hostile: Hostile
) -> None:
    fake_model.on_request(lambda request: Reply.text("Good morning! briefing"))
    overrides = {"STEWARD_FETCH_ALLOW_HOSTS": "127.0.0.1", "STEWARD_FEED_TIMEOUT": "5"}
    async with running_steward(
        tmp_path, fake_model.base_url, clock=FrozenClock(DAY1), **overrides
    ) as h:
        moved = hostile.url("/moved?i=0")
        for path in ("/plain.xml", "/etag.xml", "/moved?i=0", "/charset?feed=1&cs=undefined"):
            assert "added" in await h.say(f"/briefing feeds add {hostile.url(path)}")
        for day in (1, 2):  # the second sends back what the first stored; nothing new in it
            reply = await h.say("/briefing now")
            assert reply.startswith("Good morning"), f"day {day}: {reply!r}"
            assert reply.endswith(
                "Feeds that failed this time (I'll try them again next time): "
                f"{moved} (could not resolve a..example: not a valid host name)"
            ), reply
    assert len(hostile.headers("/etag.xml")) == 2
    [day1] = [r for r in fake_model.requests if "Morning briefing" in r.last_user_text]
    for news in ("Plain news", "Etag news", "Caf\u00e9 news"):
        assert news in day1.last_user_text


def test_a_summary_of_angle_brackets_is_stripped_in_one_pass() -> None:
    """Review 75: `<[^>]+>` took time with the square of a run of "<" (40,000: 2.5 s, holding
    the GIL in the parsing thread; a 2 MB feed: an hour of every chat standing still). At this
    size the old pattern outlasts the test's timeout."""
    text = "<b>bold</b> words " + "<" * 600_000  # no ">" after them: each "<" read to the end
    assert strip_html(text) == "bold words " + "<" * 600_000
    assert strip_html('a <a href="x">link</a> and <<b>> too') == "a link and < > too"


@pytest.mark.parametrize("charset", ["utf-7"])
async def test_a_page_that_decodes_to_a_lone_surrogate_does_not_fail_the_turn(
    tmp_path: Path, charset: str
) -> None:
    """A page's charset is its author's choice: UTF-7 or UTF-16 can decode to a lone
    surrogate, which failed the turn when the request to the model was encoded (review 118's
    mail had it; every tool's result is made well-formed before the model reads it)."""
    from trust_world import instruction, trust_world

    async with trust_world(tmp_path) as w:
        body = b"<p>read +2AA- this</p>"
        w.web.raw_pages["/odd"] = (body, f"text/html; charset={charset}")
        reply = await w.h.say(instruction("web_fetch", {"url": f"{w.web.base_url}/odd"}))
        assert "went wrong" not in reply
        assert "\ufffd" in str(w.model.requests[-1].body)
        assert [t.status for t in await w.h.turns()] == ["completed"]


def test_a_feed_of_escaped_comments_or_a_huge_title_is_read_quickly_and_cut() -> None:
    """feedparser's HTML sanitising searched for each unclosed "<!--" again: 400 KB of escaped
    ones in one item held the whole process 7.6 s, 1.9 MB 171 s, in one call no deadline
    stops; and a feed's own 1.8 MB title was kept, and listed, whole (review 126)."""
    from agent.scheduler.feeds import TITLE_CHARS, _parse

    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>'
        + b"T" * 100_000
        + b"</title><item><title>x</title><link>http://a.example/1</link><description>"
        + b"&lt;!--" * 70_000
        + b"</description></item></channel></rss>"
    )
    headers = httpx.Headers({"content-type": "application/rss+xml"})
    started = time.process_time()
    parsed = _parse(body, "http://feed.example/rss", headers)
    assert time.process_time() - started < 3.0  # 7.6 s of CPU before, ~0.15 s after
    assert parsed is not None
    title, [item] = parsed
    assert len(title) <= TITLE_CHARS and item.title == "x"
