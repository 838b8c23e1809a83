"""A stdio MCP server's transport, with a limit on what one message may be.

The SDK's stdio client reads the server's stdout as text and gathers a line by joining each
piece to all it had so far: a 50 MB line (a tool's result from a large file or table) held the
event loop for seconds (every 64 KiB piece copied the whole line again) and all of it in
memory, with no limit. This is the same transport, as the MCP specification has it: the server
started in a session of its own; newline-delimited JSON-RPC both ways; at the end its stdin
closed, a grace period, then its process group terminated. A line is gathered in one buffer,
and one past `LINE_LIMIT` ends the link: `on_refused` is told (the server is restarted, as for
a remote server's overlong answer). The limit is higher than a remote server's (a local one
may hand over a whole file; its output is cut for the model far below either).

The server dies with Steward (`_start`): a Steward killed (SIGKILL, the OOM killer) never
stops it, and one that ignores its stdin's end (a Node server with a timer) ran on, one more
at every crash and restart (R254). Most are started through a launcher (`uvx`, `npx`,
`sh -c`), and the kernel's tie to a parent is not inherited: the launcher died with Steward
and the real server ran on (R263). So where the shell's sandbox finds user namespaces working,
a server runs in a PID namespace of its own (`unshare`; a user namespace mapping Steward's own
user to itself, none when Steward is root), and the `unshare` is what is tied to Steward: when
it dies its child, the namespace's first process, is killed, and with that one the kernel
kills every process in the namespace, however deep or detached. A second `unshare` is that
first process, so the server keeps the usual signals (a first process ignores SIGTERM unless it
handles it). The server's PIDs are the namespace's (it is 2; /proc is still the host's);
setuid helpers (`sudo`, rootless Podman's `newuidmap`) do not work in it; what it leaves
running when it exits ends with it. Where namespaces are missing (or util-linux is older
than 2.38) a server is tied to Steward directly, and only one not behind a launcher dies with
it.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import IO

import anyio
import mcp_types as types
from anyio._core._eventloop import get_async_backend
from anyio.abc import Process
from mcp import StdioServerParameters
from mcp.client.stdio import get_default_environment
from mcp.os.posix.utilities import terminate_posix_process_tree
from mcp.shared.message import SessionMessage

from agent.child_death import dies_with_parent
from agent.sandbox import os_sandbox_available

__all__ = ["LINE_LIMIT", "stdio_transport"]

log = logging.getLogger(__name__)

LINE_LIMIT = 64 * 1024 * 1024
"""Bytes in one line from the server: one JSON-RPC message."""

GRACE = 2.0
"""Seconds a server has to exit once its stdin is closed, and again once it is told to stop."""

_GONE = (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError)


@asynccontextmanager
async def stdio_transport(
    server: StdioServerParameters,
    errlog: IO[str],
    *,
    on_refused: Callable[[str], None],
    limit: int = LINE_LIMIT,
) -> AsyncIterator[tuple[anyio.abc.ObjectReceiveStream, anyio.abc.ObjectSendStream]]:
    """Start `server` and yield the session's read and write streams (the SDK's transport)."""
    process = await _start(server, errlog)
    to_session, from_server = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    to_server, from_session = anyio.create_memory_object_stream[SessionMessage](0)

    async def read() -> None:
        assert process.stdout is not None
        line = bytearray()
        try:
            async with to_session:
                async for chunk in process.stdout:
                    start = 0
                    while (end := chunk.find(b"\n", start)) >= 0:
                        line += chunk[start:end]
                        start = end + 1
                        await to_session.send(_parsed(bytes(line)))
                        line.clear()
                    line += chunk[start:]
                    if len(line) > limit:
                        on_refused(
                            f"it sent a message over {limit // (1024 * 1024)} MiB; the link "
                            "was dropped"
                        )
                        return
        except _GONE:
            pass  # the session ended, or the server did
        finally:
            await _drain(process)

    async def write() -> None:
        assert process.stdin is not None
        try:
            async with from_session:
                async for message in from_session:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await process.stdin.send(data.encode() + b"\n")
        except _GONE:
            await to_session.aclose()  # the session sees the link end, not a hang

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        tasks.start_soon(write)
        try:
            yield from_server, to_server
        finally:
            with anyio.CancelScope(shield=True):  # stopped even when the caller is cancelled
                from_server.close()  # a reader blocked on the session turns to draining
                to_server.close()
                await _stop(process)
            tasks.cancel_scope.cancel()


async def _start(server: StdioServerParameters, errlog: IO[str]) -> Process:
    """The server's process, as `anyio.open_process` makes it, in a session of its own (its
    process group: stopped whole, children too) and tied to Steward's life: the kernel kills
    it when Steward dies (`dies_with_parent`, as the shell tool's commands), and with it its
    namespace (`_launcher`). `open_process` takes no `preexec_fn`; the backend it calls passes
    one on to the loop's `subprocess_exec` (asyncio's and uvloop's both take it). The fork is
    made on the event loop's thread, which lives as long as Steward (the signal comes when the
    thread that forked ends)."""
    env = get_default_environment() | (server.env or {})
    argv = await anyio.to_thread.run_sync(_argv, server, env)
    return await get_async_backend().open_process(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        cwd=server.cwd,
        env=env,
        start_new_session=True,
        preexec_fn=dies_with_parent(),
    )


def _argv(server: StdioServerParameters, env: dict[str, str]) -> list[str]:
    """The command line: the server's own, behind `_launcher` where there is one. A missing
    command is the same `FileNotFoundError` as without (`unshare` would start and then only
    say so in the server's stderr.log); the server's name (`argv[0]`) is left as configured."""
    argv = [server.command, *server.args]
    launcher = _launcher()
    if launcher is None:
        return argv
    command = server.command
    if "/" in command:  # a path: from the server's working directory, as the exec does
        command = os.path.join(server.cwd or os.getcwd(), command)
    if shutil.which(command, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), server.command)
    return [*launcher, *argv]


@functools.cache
def _launcher() -> list[str] | None:
    """`unshare` for a PID namespace whose first process is a plain `unshare --fork` (it waits
    for the server and exits as it does), or None. Only where the sandbox's own check found
    namespaces working; tried once here with `true`, for what that check does not cover (its
    `unshare` maps root, this one Steward's user: util-linux 2.38 or later). Blocking."""
    unshare = shutil.which("unshare")
    if unshare is None or not os_sandbox_available():
        return None
    user = [] if os.geteuid() == 0 else ["--user", "--map-current-user"]
    launcher = [unshare, *user, "--pid", "--fork", "--kill-child", "--", unshare, "--fork", "--"]
    why = "no answer in 10 s"
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        probe = subprocess.run(
            [*launcher, "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=10
        )
        if probe.returncode == 0:
            return launcher
        why = probe.stderr.decode(errors="replace").strip()[:200]
    log.warning(
        "MCP servers get no namespace of their own (%s): one behind a launcher (npx, uvx) "
        "outlives a killed Steward",
        why,
    )
    return None


def _parsed(line: bytes) -> SessionMessage | Exception:
    """One line as a message, or the error the session surfaces for it."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        log.warning("an MCP server wrote a line that is not JSON-RPC (%d bytes)", len(line))
        return exc


async def _drain(process: Process) -> None:
    """Read and drop what the server still writes, so that one flushing its output on the way
    out is not stuck on a full pipe; ends when the pipe closes."""
    assert process.stdout is not None
    with anyio.CancelScope(shield=True), contextlib.suppress(*_GONE):
        while True:
            await process.stdout.receive()


async def _stop(process: Process) -> None:
    """The specification's shutdown: stdin closed, a grace period, then the process group
    terminated (and killed after another), whether or not the server exited by then: what it
    started (a browser, a language server, `npx`'s child) is in its group, and outlived it
    (R160, R161: a `sleep` left behind at every stop and restart)."""
    assert process.stdin is not None and process.stdout is not None
    with contextlib.suppress(*_GONE):
        await process.stdin.aclose()
    await _exited(process, GRACE)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        await terminate_posix_process_tree(process, GRACE)  # at once when the group is gone
    if not await _exited(process, GRACE):
        log.warning("MCP server process %d did not stop; left behind", process.pid)
    with contextlib.suppress(*_GONE):
        await process.stdout.aclose()
    # the asyncio transport, else left open (and warned of when collected) while a child
    # that inherited a pipe lives on; anyio does not expose it
    transport = getattr(getattr(process, "_process", None), "_transport", None)
    with contextlib.suppress(PermissionError):
        if callable(close := getattr(transport, "close", None)):
            close()


async def _exited(process: Process, seconds: float) -> bool:
    """Whether the process ended within `seconds` (by its return code: `wait()` also waits for
    the pipes, which a child that inherited them keeps open)."""
    deadline = anyio.current_time() + seconds
    while process.returncode is None:
        if anyio.current_time() >= deadline:
            return False
        await anyio.sleep(0.01)
    return True
