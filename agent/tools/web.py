"""web_fetch: GET a page and return its text, as untrusted data.

http(s) only; every hop of a redirect is checked again; the host must resolve to public
addresses (STEWARD_FETCH_ALLOW_HOSTS excepted); size and time are capped.
"""

from __future__ import annotations

import asyncio
import html
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from agent.capped_decode import ACCEPT_ENCODING, BodyRefused, BodyTooLarge, read_capped
from agent.html_text import html_to_text
from agent.public_web import checked_target
from agent.sandbox import Sandbox
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


@tool(risk=Risk.EXTERNAL_EFFECT, untrusted_output=True, preview=_fetch_preview, precheck=_url_ok)
async def web_fetch(ctx: ToolContext, url: str) -> ToolResult:
    """Fetch a web page (GET) and return its text.

    Args:
        url: The http(s) address to fetch.
    """
    import httpx  # with its CLI's rich and click: 50-70 ms, not at start-up (issue 19)

    sandbox = _sandbox(ctx)
    timeout = httpx.Timeout(sandbox.fetch_timeout)
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=False, trust_env=False
    ) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                target = await checked_target(current, sandbox.fetch_allow_hosts)
            except ToolError as exc:  # after a redirect the address is the server's words
                raise ToolError(str(exc), source=_redirected(url, current)) from None
            try:
                async with client.stream(
                    "GET",
                    target.url,
                    headers={
                        "User-Agent": "Steward/0.1 (+self-hosted agent)",
                        "Accept-Encoding": ACCEPT_ENCODING,
                        **target.headers,
                    },
                    extensions=target.extensions,
                ) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    body = await _read_limited(response, sandbox.fetch_max_bytes)
                    content_type = response.headers.get("content-type", "")
                    status = response.status_code
            except httpx.HTTPError as exc:
                raise ToolError(
                    f"could not fetch {current}: {type(exc).__name__}",
                    source=_redirected(url, current),
                ) from None
            text = body.decode(response.encoding or "utf-8", errors="replace")
            if "html" in content_type or text.lstrip()[:15].lower().startswith(
                ("<!doctype", "<html")
            ):
                text = await asyncio.to_thread(html_to_text, text, title=True)  # 1.8 MB: 1 s
            text = text[: sandbox.output_limit]
            return ToolResult(f"HTTP {status} {current}\n\n{text}", status >= 400, f"web:{current}")
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
