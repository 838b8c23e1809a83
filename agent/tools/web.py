"""web_fetch: GET a page and return its text, as untrusted data.

http(s) only; every hop of a redirect is checked again, and decided by the policy as the
first address was (R230); the host must resolve to public addresses (STEWARD_FETCH_ALLOW_HOSTS
excepted); size and time are capped, the time for the whole fetch (STEWARD_FETCH_TIMEOUT),
redirects and body included. A page in a charset Python
does not know, or one that reads no web page (base64, rot13, idna, punycode...), is read as UTF-8.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from agent.capped_decode import ACCEPT_ENCODING, BodyRefused, BodyTooLarge, read_capped
from agent.html_text import html_to_text
from agent.policy import Decision, policy_in_force
from agent.public_web import checked_target, text_codec
from agent.sandbox import Sandbox
from agent.tools.canonical import WebAddress, as_servers_decode
from agent.tools.registry import Risk, ToolContext, ToolError, ToolResult, tool

if TYPE_CHECKING:
    import httpx

__all__ = ["WEB_TOOLS", "html_to_text"]

MAX_REDIRECTS = 5


def _sandbox(ctx: ToolContext) -> Sandbox:
    if ctx.deps.sandbox is None:
        raise ToolError("web access is not configured")
    return ctx.deps.sandbox


async def _fetch_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    url = str(arguments["url"])
    parts = urlsplit(url)
    query = f"\nquery: {html.unescape(parts.query)}" if parts.query else ""
    return f"GET {url}\nhost: {parts.hostname}\npath: {parts.path or '/'}{query}"


async def _url_ok(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    parts = urlsplit(str(arguments["url"]))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError("refused: only http(s) URLs with a host can be fetched")


async def _decoded(ctx: ToolContext, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The address as a server that decodes `%2F` reads it: a rule that denies or asks sees it."""
    decoded = as_servers_decode(str(arguments["url"]))
    return [arguments | {"url": decoded}] if decoded is not None else []


@tool(
    risk=Risk.EXTERNAL_EFFECT,
    untrusted_output=True,
    preview=_fetch_preview,
    precheck=_url_ok,
    aliases=_decoded,
    paged=True,
)
async def web_fetch(ctx: ToolContext, url: WebAddress) -> ToolResult:
    """Fetch a web page (GET) and return its text.

    Args:
        url: The http(s) address to fetch.
    """
    sandbox = _sandbox(ctx)
    hops = [url]
    try:  # httpx's timeout is per read: a page dripping a byte a second would hold the chat
        async with asyncio.timeout(sandbox.fetch_timeout):
            page = await _get(sandbox, hops, lambda hop: _policy_allows(ctx, url, hop))
    except TimeoutError:
        raise ToolError(
            f"could not fetch {hops[-1]}: it did not finish within {sandbox.fetch_timeout:g} s",
            source=_redirected(url, hops[-1]),
        ) from None
    current = hops[-1]
    text = page.body.decode(text_codec(page.charset) or "utf-8", errors="replace")
    if "html" in page.content_type or text.lstrip()[:15].lower().startswith(("<!doctype", "<html")):
        text = await asyncio.to_thread(html_to_text, text, title=True)  # 1.8 MB: 1 s
    text = text[: sandbox.output_limit]
    return ToolResult(
        f"HTTP {page.status} {current}\n\n{text}", page.status >= 400, f"web:{current}"
    )


@dataclass(frozen=True)
class _Page:
    status: int
    content_type: str
    charset: str | None
    body: bytes


async def _policy_allows(ctx: ToolContext, asked: str, hop: str) -> None:
    """R230: a redirect's address decided by the policy as the first one was (an allowed URL
    that redirected into a denied one was fetched): a deny stops, and so does an ask, naming
    where it leads for the owner to fetch it directly. The turn's taint is no reason to ask
    here: the address is the server's, not words the model wrote from what the turn holds."""
    policy = policy_in_force()
    if policy is None:
        return
    try:
        arguments = web_fetch.validate({"url": hop})
    except ToolError:
        raise ToolError(f"could not fetch {asked}: it redirects to an invalid address") from None
    verdict = await policy.decide(web_fetch, arguments, replace(ctx, tainted=False))
    if verdict.decision is Decision.DENY:
        raise ToolError(f"refused: {asked} redirects to {hop}, which the policy forbids")
    if verdict.decision is Decision.ASK:
        raise ToolError(
            f"not followed: {asked} redirects to {hop}, which the owner is asked about first; "
            "fetch that address itself to ask them"
        )


async def _get(
    sandbox: Sandbox, hops: list[str], allowed: Callable[[str], Awaitable[None]]
) -> _Page:
    """GET `hops[0]`, following redirects (each appended to `hops`), every hop checked: its
    address public, and `allowed` by the policy."""
    import httpx  # with its CLI's rich and click: 50-70 ms, not at start-up (issue 19)

    url = hops[0]
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(sandbox.fetch_timeout), follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            current = hops[-1]
            try:
                if current != url:
                    await allowed(current)
                target = await checked_target(current, sandbox.fetch_allow_hosts)
            except ToolError as exc:  # after a redirect the address is the server's words
                raise ToolError(str(exc), source=_redirected(url, current)) from None
            request = client.build_request(
                "GET",
                target.url,
                headers={
                    "User-Agent": "Steward/0.1 (+self-hosted agent)",
                    "Accept-Encoding": ACCEPT_ENCODING,
                    **target.headers,
                },
                extensions=target.extensions,
            )
            try:
                response = await client.send(request, stream=True)
                try:
                    if response.is_redirect and "location" in response.headers:
                        hops.append(urljoin(current, response.headers["location"]))
                        continue
                    body = await _read_limited(response, sandbox.fetch_max_bytes)
                finally:
                    await response.aclose()
            except httpx.HTTPError as exc:
                raise ToolError(
                    f"could not fetch {current}: {type(exc).__name__}",
                    source=_redirected(url, current),
                ) from None
            except (ValueError, httpx.InvalidURL):  # httpx reads a Location even when it does
                raise ToolError(  # not follow it: IDNA refuses "xn--a"; urljoin "http://[::1"
                    f"could not fetch {current}: it redirects to an invalid address",
                    source=f"web:{current}",
                ) from None
            return _Page(
                response.status_code,
                response.headers.get("content-type", ""),
                response.charset_encoding,
                body,
            )
    raise ToolError(f"refused: more than {MAX_REDIRECTS} redirects", source=f"web:{url}")


def _redirected(asked: str, current: str) -> str | None:
    """The source of an error about `current`: outside content once a server chose it."""
    return None if current == asked else f"web:{current}"


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    """The body, inflated here under the limit (agent/capped_decode.py), never by httpx."""
    try:
        return await read_capped(
            response.aiter_raw(), response.headers.get("content-encoding"), limit
        )
    except BodyTooLarge:
        raise ToolError(f"the page is larger than {limit} bytes; not fetched") from None
    except BodyRefused as exc:
        raise ToolError(f"refused: {exc}") from None


WEB_TOOLS = (web_fetch,)
