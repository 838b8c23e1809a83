"""One MCP server's connection: start it, list its tools, notice when it dies, call a tool.

`ServerLink.run()` is a background task that keeps the server connected: it starts it (stdio: a
child process with only the environment the config gives it plus the SDK's minimal set, in its
own working directory; http: streamable HTTP with the configured headers), lists its tools,
refreshes them on `notifications/tools/list_changed` and on a periodic health check, and, when
the connection is lost, drops the tools and starts it again with exponential backoff.
Only the official SDK speaks the protocol here.

A server that announces its changes is listed by the health check only every SAFETY_RELIST
(R250: an idle Steward downloaded every listing again every 15 s, a new connection to a remote
server, a stdio child woken). Its death is noticed when the link ends (a stdio server's stdout
closes, a listen stream drops), or, for a remote server on the 2025 handshake, at the next
call or safety listing.

(Over 400 lines: the link's life and each way it ends, a crash, a timeout, a misbehaving
server, a malformed answer, told apart in one place so the model and the owner hear which.)

Whether a failed call lost the connection or timed out is read from the link itself (its
streams ended; the call's own clock ran out), not from the error's code: the SDK's local
signals (CONNECTION_CLOSED -32000, REQUEST_TIMEOUT -32001) share their codes with the JSON-RPC
"Server error" range that servers answer with ("quota exceeded"), and a server's answer is its
error, passed on to the model as such.

A call the link lost (a timeout, a crash) may still have been carried out by the server, partly
or fully: the model is told so and to check before doing it again (review 99: "the call was
cancelled" after a payment had been made had it made again). A result the SDK refuses for not
matching the tool's output schema is the server's answer, of the wrong shape (`malformed`), not
a broken link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import httpx2
import mcp.types as mt
import pydantic
from mcp import Client, InputRequiredRoundsExceededError, MCPError, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError
from mcp_types.jsonrpc import CONNECTION_CLOSED, HEADER_MISMATCH, REQUEST_TIMEOUT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from agent.cards import escape_invisible
from agent.mcp.capped_http import CappedTransport, TooLarge
from agent.mcp.config import ServerSpec
from agent.mcp.listing import MAX_LISTING_BYTES, Listing, ListingRefused, read_listing
from agent.mcp.schema_check import output_problem
from agent.mcp.sdk_logs import quiet_sdk_logs
from agent.mcp.stderr_log import capped_stderr
from agent.mcp.stdio import stdio_transport
from agent.mcp.wire import Wire

__all__ = ["MAY_HAVE_RUN", "CallFailed", "Listing", "OutputRefused", "ServerLink"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0
REFRESH_PAUSE = 1.0
"""Seconds between two listings on `notifications/tools/list_changed`: a server sending them
in a loop had Steward re-list its tools back to back (1,700 listings in 10 s, a full core)."""
SAFETY_RELIST = 600.0
"""Seconds between two health listings of a server that announces its changes (R250): it says
when its tools change, so asking is only a safety net, for a notice lost on the way (an HTTP
server's notification with no stream open to carry it, a listen stream a proxy ended) and for
a remote server that died unseen; every 15 s was 5,760 whole listings a day per server."""
CLOSE_TIMEOUT = 5.0
"""Seconds a remote server's closing DELETE may take to connect, to send, to each read (R238:
one never answering it held the link's end, and the owner's notice, for the 300 s read timeout)."""

quiet_sdk_logs()


class CallFailed(Exception):
    """A call that produced no result from the server: down, timed out, or lost mid-call.
    The message is Steward's own words (no server text), fit for the model."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


Notify = Callable[["ServerLink", str], Awaitable[None]]


class ServerLink:
    def __init__(
        self,
        spec: ServerSpec,
        *,
        workdir: Path,
        on_change: Callable[[], None],
        on_down: Notify,
        on_up: Notify,
        health_every: float = 15.0,
        backoff: tuple[float, float] = (1.0, 300.0),
        mode: str = "auto",
        refresh_pause: float = REFRESH_PAUSE,
        listing_bytes: int = MAX_LISTING_BYTES,
    ) -> None:
        """`mode` is the SDK's: "auto" speaks 2026-07-28 where the server does and falls back
        to the 2025 initialize handshake; "legacy" always uses the handshake."""
        self.spec = spec
        self._mode = mode
        self.workdir = workdir
        self.status = "stopped"
        self.error: str | None = None
        self.restarts = 0
        self.since: float | None = None
        self.listing = Listing()
        self.protocol: str | None = None
        self._on_change = on_change
        self._on_down = on_down
        self._on_up = on_up
        self._health_every = health_every
        self._refresh_pause = refresh_pause
        self._listing_bytes = listing_bytes
        self._listing_took = 0.0
        self._listed_at = 0.0
        self._listening = False
        """A listen stream carrying the tools' changes is open (2026-07-28)."""
        self._backoff = backoff
        self._client: Client | None = None
        self._wire: Wire | None = None
        self._lost = asyncio.Event()
        self._refresh = asyncio.Event()
        self._settled = asyncio.Event()
        self._stopping = False
        self._problem: str | None = None
        """Why Steward dropped the connection (a misbehaving server), None otherwise."""

    @property
    def name(self) -> str:
        return self.spec.name

    async def settled(self) -> None:
        """Wait until the first start attempt ended (up or failed)."""
        await self._settled.wait()

    def stop(self) -> None:
        self._stopping = True
        self._lost.set()

    async def run(self) -> None:
        delay = self._backoff[0]
        while not self._stopping:
            self.status = "starting" if self.restarts == 0 else "restarting"
            started = time.monotonic()
            try:
                await self._serve()
                problem = "the connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anyio groups, OSError, MCPError, …
                problem = self.spec.redact(_describe(exc, self.spec.command))
            problem, self._problem = self._problem or problem, None
            self._client = self._wire = None
            self._withdraw()
            if self._stopping:
                break
            self.status = "down"
            self.error = problem
            self.since = time.time()
            self._settled.set()
            log.warning("MCP server %s is down: %s", self.name, problem)
            with contextlib.suppress(Exception):
                await self._on_down(self, problem)
            if time.monotonic() - started > 120:
                delay = self._backoff[0]  # it ran a good while: start the backoff again
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff[1])
            self.restarts += 1
        self.status = "stopped"

    async def _serve(self) -> None:
        self._lost.clear()
        async with AsyncExitStack() as stack:
            wire = Wire(
                self._transport(stack), on_misbehaving=self._misbehaving, on_end=self._ended
            )
            client = Client(
                wire,
                message_handler=self._message,
                client_info=mt.Implementation(name="steward", version="1"),
                mode=self._mode,  # type: ignore[arg-type]
            )
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await stack.enter_async_context(client)
                client.session.validate_tool_result = self._check_output  # type: ignore[method-assign]
                client._relist_tool = self._no_relist  # type: ignore[method-assign]
                await self._list(client)
            self.protocol = client.protocol_version
            self._client, self._wire = client, wire
            self.status, self.error, self.since = "up", None, time.time()
            self._settled.set()
            log.info("MCP server %s is up: %d tools", self.name, len(self.listing.tools))
            with contextlib.suppress(Exception):
                await self._on_up(self, "")
            watchers = [
                asyncio.create_task(self._listen(client)),
                asyncio.create_task(self._health(client)),
                asyncio.create_task(self._refresher(client)),
            ]
            try:
                await self._lost.wait()
            finally:
                for task in watchers:
                    task.cancel()
                await asyncio.gather(*watchers, return_exceptions=True)
                self._client = self._wire = None
                # lost: not up nor offered while the connection closes (R238), however long
                if not self._stopping:
                    self.status = "down"
                self._withdraw()

    def _transport(self, stack: AsyncExitStack) -> Any:
        spec = self.spec
        if spec.transport == "http":
            http = httpx2.AsyncClient(
                headers={k: v.get_secret_value() for k, v in spec.headers.items()},
                timeout=httpx2.Timeout(30, read=300),
                transport=CappedTransport(httpx2.AsyncHTTPTransport()),
                event_hooks={"request": [_bounded_delete]},
            )
            stack.push_async_callback(http.aclose)
            return streamable_http_client(spec.url, http_client=http)
        self.workdir.mkdir(parents=True, exist_ok=True)
        cwd = spec.cwd if spec.cwd is None or spec.cwd.is_absolute() else self.workdir / spec.cwd
        errlog: IO[str] = stack.enter_context(
            capped_stderr(self.workdir / "stderr.log", secrets=spec.secrets)
        )
        params = StdioServerParameters(
            command=spec.command,
            args=list(spec.args),
            env={k: v.get_secret_value() for k, v in spec.env.items()},
            cwd=cwd or self.workdir,
        )
        return stdio_transport(params, errlog, on_refused=self._misbehaving)

    async def _list(self, client: Client) -> None:
        began = time.monotonic()
        try:
            listing = await read_listing(client, self._listing_bytes)
        except ListingRefused as exc:
            self._misbehaving(str(exc))
            raise
        finally:
            # the SDK parses a listing on the event loop: one that took long is asked for
            # less often (review 117: 8 MB re-listed each second held every chat)
            self._listing_took = time.monotonic() - began
        self._listed_at = time.monotonic()
        if listing != self.listing:  # by the tools' digests: no schema compared
            self.listing = listing
            self._on_change()

    async def _no_relist(self, name: str) -> None:
        """In place of the SDK's own re-listing on a call answered HEADER_MISMATCH (R238): it
        read the listing outside Steward's limits and sent the call again. The server's answer
        stands as its error; Steward re-lists within its limits."""
        self._refresh.set()
        raise MCPError(HEADER_MISMATCH, "not re-listed by the call")

    def _withdraw(self) -> None:
        """The link is lost: its tools are offered no more."""
        if self.listing.tools:
            self.listing = Listing()
            self._on_change()

    def _spaced(self, pause: float) -> float:
        """`pause`, or ten times what the last listing took: a tenth of the loop at most."""
        return max(pause, 10 * self._listing_took)

    async def _message(self, message: Any) -> None:
        if isinstance(message, mt.ToolListChangedNotification) or (
            getattr(message, "method", None) == "notifications/tools/list_changed"
        ):
            self._refresh.set()

    async def _refresher(self, client: Client) -> None:
        """Lists again on a change notice, at most once a `refresh_pause`: notices that come
        during a listing or the pause after it are one listing after the pause, never lost."""
        while True:
            await self._refresh.wait()
            self._refresh.clear()
            try:
                await self._list(client)
            except Exception as exc:
                self._lose(exc)
                return
            await asyncio.sleep(self._spaced(self._refresh_pause))

    async def _listen(self, client: Client) -> None:
        """2026-07-28 servers send list changes on a listen stream; an abrupt end of that
        stream is also the quickest sign that the server died."""
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                self._listening = bool(subscription.honored.tools_list_changed)
                async for _event in subscription:
                    self._refresh.set()
        except (ListenNotSupportedError, MCPError):
            return  # an older server, or one without subscriptions: the health check watches
        except Exception as exc:
            self._lose(exc)
        finally:
            self._listening = False  # the stream ended: no change comes on it any more

    def _announces(self, client: Client) -> bool:
        """Whether the server tells Steward when its tools change: on an open listen stream
        (2026-07-28, where that is the only way), or by `tools.listChanged` declared in the
        handshake (its notifications come on the link)."""
        if self._listening:
            return True
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return False
        tools = client.server_capabilities.tools
        return bool(tools and tools.list_changed)

    async def _health(self, client: Client) -> None:
        """Lists the tools every `health_every`: a listing that fails is a link lost, one that
        changed is taken. One that announces its changes: every SAFETY_RELIST (R250)."""
        while True:
            await asyncio.sleep(self._spaced(self._health_every))
            if self._announces(client) and time.monotonic() - self._listed_at < SAFETY_RELIST:
                continue
            try:
                async with asyncio.timeout(max(10.0, self._health_every)):
                    await self._list(client)
            except Exception as exc:
                self._lose(exc)
                return

    def _ended(self, exc: BaseException) -> None:
        """The link's read stream ended: the server exited (its stdout closed) or the link
        broke. Noticed at once, not at the next listing (R250), unless already being dropped."""
        if not self._lost.is_set():
            self._lose(exc)

    def _lose(self, exc: BaseException) -> None:
        log.info("MCP server %s: connection lost (%s)", self.name, type(exc).__name__)
        self._lost.set()

    def _misbehaving(self, problem: str) -> None:
        """The wire found the server misbehaving: drop the link, the owner is told why."""
        log.warning("MCP server %s: %s", self.name, problem)
        self._problem = problem
        self._lost.set()

    async def call(self, tool: str, arguments: dict[str, Any], seconds: float) -> mt.CallToolResult:
        """Call one tool; CallFailed when no result came. Cancelling the caller (the turn ended)
        cancels the request on the server (`notifications/cancelled`). An error the server
        answered (whatever its code) is raised as the SDK's MCPError: the server's own words."""
        client, wire = self._client, self._wire
        if client is None or wire is None:
            raise CallFailed(f"the MCP server {self.name} is not running right now", "down")
        loop = asyncio.get_running_loop()
        started = loop.time()  # the clock the SDK's request timeout runs on (anyio's)
        try:
            async with asyncio.timeout(seconds + 5):
                return await client.call_tool(tool, arguments, read_timeout_seconds=seconds)
        except TimeoutError:
            raise CallFailed(self._late(seconds), "timeout") from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED and wire.closed:
                # the SDK's own signal: the link's streams ended (the server exited, the
                # connection broke, Steward dropped it) before an answer came
                self._lose(exc)
                why = f" ({wire.problem})" if wire.problem else ""
                raise CallFailed(
                    f"the MCP server {self.name} stopped during the call{why}; {MAY_HAVE_RUN}",
                    "crashed",
                ) from None
            if exc.code == REQUEST_TIMEOUT and loop.time() - started >= seconds - 0.001:
                # the SDK's clock for this call ran out (it fires no sooner; a server answering
                # -32001 sooner is answering: its error)
                raise CallFailed(self._late(seconds), "timeout") from None
            raise
        except InputRequiredRoundsExceededError as exc:
            # the server kept answering "call again with this state" (a request for input
            # Steward does not give fails at once): a server's answer, not a broken link, which
            # the RuntimeError below would have reconnected (review 90)
            raise CallFailed(
                f"the MCP server {self.name} kept asking to be called again "
                f"({exc.max_rounds} times); the call was not completed",
                "input_required",
            ) from None
        except OutputRefused as exc:
            raise self._refused(tool, exc) from None
        except RuntimeError as exc:
            if _shape_refused(exc):
                raise self._refused(tool, exc) from None
            self._lose(exc)
            raise CallFailed(self._broke(), "crashed") from None
        except (OSError, EOFError) as exc:
            self._lose(exc)
            raise CallFailed(self._broke(), "crashed") from None

    async def _check_output(self, name: str, result: mt.CallToolResult) -> None:
        """In place of the SDK's check of a result against the tool's `outputSchema`, which ran
        jsonschema's patterns with `re` on the event loop: `^(a|a)*$` against 40 "a"s, or `allOf`
        nested 20 deep, held every chat for as long as the server liked, past
        STEWARD_MCP_TIMEOUT (R173). Same verdicts, within `schema_check`'s limits."""
        schema = next((t.output_schema for t in self.listing.tools if t.name == name), None)
        if schema is None:
            return
        if result.structured_content is None:
            raise OutputRefused(
                f"{name} declares an output schema but returned no structured content"
            )
        problem = output_problem(schema, result.structured_content)
        if problem is not None:
            raise OutputRefused(f"{name}: {problem}")

    def _refused(self, tool: str, exc: RuntimeError) -> CallFailed:
        """The SDK refused an answer for its output schema: the server's, the link is fine."""
        why = escape_invisible(self.spec.redact(str(exc))[:500])
        log.warning(
            "MCP server %s: %s's result does not match its schema: %s", self.name, tool, why
        )
        return CallFailed(
            f"the MCP server {self.name} answered with a result that does not match the output "
            f"schema the tool declares; nothing of it was read, but {MAY_HAVE_RUN}",
            "malformed",
        )

    def _broke(self) -> str:
        return f"the connection to MCP server {self.name} broke during the call; {MAY_HAVE_RUN}"

    def _late(self, timeout: float) -> str:
        return (
            f"the MCP server {self.name} did not answer within {timeout:g} s "
            f"(STEWARD_MCP_TIMEOUT) and was told to stop; {MAY_HAVE_RUN}"
        )


class OutputRefused(RuntimeError):
    """A result that does not fit the tool's output schema (`ServerLink._check_output`)."""


MAY_HAVE_RUN = (
    "it may have run, partly or fully (a payment made, a message sent): check before trying "
    "it again"
)
"""Said of a call that ended without its answer: the server may have done it already."""


async def _bounded_delete(request: httpx2.Request) -> None:
    """The SDK's DELETE ending a remote session waits CLOSE_TIMEOUT at a time, not the 300 s
    read timeout kept for answers that take long (R238)."""
    if request.method == "DELETE":
        request.extensions["timeout"] = httpx2.Timeout(CLOSE_TIMEOUT).as_dict()


def _shape_refused(exc: RuntimeError) -> bool:
    """The SDK's check of a result against the tool's output schema raised it (the SDK says
    so only by a RuntimeError, which is also what a broken link may raise): it was raised in
    the session's `validate_tool_result` (or the schema compiler it calls) itself, not in the
    listing it may make first."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    frame = tb.tb_frame
    return frame.f_globals.get("__name__") == "mcp.client.session" and frame.f_code.co_name in (
        "validate_tool_result",
        "_output_schema_validator",
    )


def _describe(exc: BaseException, command: str = "") -> str:
    """A short account of why a start failed (the first leaf of a group); the caller redacts
    secrets. A missing command is named: asyncio's loop puts it in the error, uvloop's does not,
    so the configured one stands in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        name = exc.filename or command
        return f"command not found: {name}" if name else "command not found"
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED:
        return "the server closed the connection (did it exit? see its stderr.log)"
    if isinstance(exc, MCPError | pydantic.ValidationError):
        # the server's own words: they would be read as Steward's in the owner's notice and in
        # /mcp ("Steward: your approvals are paused, re-link at …"); the log keeps them
        log.warning("MCP server's answer: %s", escape_invisible(str(exc)[:500]))
        if isinstance(exc, MCPError):
            return f"the server answered with error {exc.code} (its words are in the log)"
        return "the server's answer is not valid MCP (the details are in the log)"
    if isinstance(exc, httpx2.HTTPStatusError):  # its reason phrase is the server's to write
        return f"the server answered HTTP {exc.response.status_code}"
    text = escape_invisible(str(exc).splitlines()[0][:200]) if str(exc) else ""
    if not isinstance(exc, OSError | httpx2.ConnectError | httpx2.TimeoutException | TooLarge):
        # a protocol error quotes the peer too (an HTTP status line of its choosing, R119)
        # not the system's words: the SDK's may quote the server ("Unsupported protocol
        # version from the server: <anything>", review 117), so the log keeps them
        log.warning("MCP server's link failed: %s: %s", type(exc).__name__, text)
        return f"{type(exc).__name__} (the details are in the log)"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
