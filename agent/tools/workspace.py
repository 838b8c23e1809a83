"""Files and commands, confined to the workspace (`STEWARD_DATA_DIR/workspace`)."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import os
import re
import signal
from pathlib import Path
from typing import Any

from agent.policy import SHELL_OPERATORS, shell_argv
from agent.sandbox import Sandbox, os_sandbox_available
from agent.tools.registry import Risk, ToolContext, ToolError, ToolResult, tool

__all__ = ["WORKSPACE_TOOLS"]

_READ_LIMIT = 200_000


def _sandbox(ctx: ToolContext) -> Sandbox:
    if ctx.deps.sandbox is None:
        raise ToolError("no workspace is configured")
    return ctx.deps.sandbox


def _digest(path: Path) -> str:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return "absent" if not path.exists() else "not-a-file"


async def _path_ok(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    _sandbox(ctx).resolve(str(arguments.get("path") or "."))


async def _command_ok(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    _parse_command(_sandbox(ctx), str(arguments["command"]))


@tool(risk=Risk.READ, untrusted_output=True, precheck=_path_ok)
async def list_files(ctx: ToolContext, path: str = ".") -> str | ToolResult:
    """List the files and folders in the workspace (or in a folder of it).

    Args:
        path: A folder relative to the workspace; the workspace itself when omitted.
    """
    sandbox = _sandbox(ctx)
    folder = sandbox.resolve(path)
    if not folder.is_dir():
        raise ToolError(f"{path} is not a folder in the workspace")
    root = sandbox.root()
    entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
    lines = [
        f"{p.relative_to(root)}{'/' if p.is_dir() else ''}"
        + ("" if p.is_dir() else f" ({p.lstat().st_size} bytes)")
        for p in entries[:500]
    ]
    body = "\n".join(lines) or "(empty)"
    return ToolResult(body, source=f"workspace:{path}")


@tool(risk=Risk.READ, untrusted_output=True, precheck=_path_ok)
async def read_file(ctx: ToolContext, path: str) -> ToolResult:
    """Read a text file from the workspace.

    Args:
        path: The file, relative to the workspace (e.g. notes/todo.md).
    """
    target = _sandbox(ctx).resolve(path)
    if not target.is_file():
        raise ToolError(f"{path} is not a file in the workspace")
    data = await asyncio.to_thread(_read_head, target)
    return ToolResult(data, source=f"file:{path}")


def _read_head(target: Path) -> str:
    with target.open("rb") as handle:
        data = handle.read(_READ_LIMIT + 1)
    text = data[:_READ_LIMIT].decode("utf-8", errors="replace")
    return text + ("\n[… truncated]" if len(data) > _READ_LIMIT else "")


async def _write_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    sandbox = _sandbox(ctx)
    path = str(arguments["path"])
    try:
        target = sandbox.resolve(path)
        old = target.read_text(encoding="utf-8", errors="replace") if target.is_file() else ""
    except ToolError as exc:
        return f"write {path}: {exc}"
    diff = difflib.unified_diff(
        old.splitlines(),
        str(arguments["content"]).splitlines(),
        f"a/{path}",
        f"b/{path}",
        lineterm="",
    )
    text = "\n".join(diff)
    return f"write workspace file {path}\n{text[:3000]}"


async def _write_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The file as it is now: where the path leads and what it holds."""
    sandbox = _sandbox(ctx)
    path = str(arguments["path"])
    try:
        sandbox.check_relative(path)
        link = sandbox.root() / path
        target = link.resolve()
    except (ToolError, OSError) as exc:
        return f"invalid:{exc}"
    return f"{target}|symlink={link.is_symlink()}|{_digest(target)}"


@tool(
    risk=Risk.WRITE_INTERNAL,
    preview=_write_preview,
    fingerprint=_write_fingerprint,
    precheck=_path_ok,
)
async def write_file(ctx: ToolContext, path: str, content: str) -> str:
    """Write a text file in the workspace, replacing what was there.

    Args:
        path: The file, relative to the workspace (e.g. notes/todo.md).
        content: The whole new content of the file.
    """
    sandbox = _sandbox(ctx)
    target = sandbox.resolve(path)
    if target.is_dir():
        raise ToolError(f"{path} is a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_write_no_follow, target, content)
    return f"wrote {len(content.encode())} bytes to {path}"


def _write_no_follow(target: Path, content: str) -> None:
    """Open without following a final symlink, so a link swapped in after the check fails."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)


def _parse_command(sandbox: Sandbox, command: str) -> list[str]:
    try:
        argv = shell_argv(command)
    except ValueError as exc:
        raise ToolError(f"could not parse the command: {exc}") from None
    if not argv:
        raise ToolError("empty command")
    if any(token in SHELL_OPERATORS for token in argv):
        raise ToolError(
            "refused: one plain command only; shell operators (; | && > < ` $( ) are not run"
        )
    for token in argv[1:]:
        if _points_outside(token):
            raise ToolError(f"refused: {token} points outside the workspace")
    return argv


def _points_outside(token: str) -> bool:
    """An argument naming a path outside the workspace, also inside quoted code (`sh -c`)."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", token, re.IGNORECASE):
        return False
    for piece in re.split(r"[\s'\"=:;,()<>|&]+", token.replace("\\", "/")):
        if piece.startswith(("/", "~")) or ".." in piece.split("/"):
            return True
    return False


async def _shell_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    sandbox = _sandbox(ctx)
    return f"$ {arguments['command']}\n(working directory: {sandbox.root()}, no secrets in env)"


async def _shell_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The content of every workspace file the command names (an edited script won't match)."""
    sandbox = _sandbox(ctx)
    try:
        argv = _parse_command(sandbox, str(arguments["command"]))
    except ToolError as exc:
        return f"invalid:{exc}"
    parts = []
    for token in argv:
        try:
            target = sandbox.resolve(token)
        except ToolError:
            continue
        if target.is_file():
            parts.append(f"{token}={_digest(target)}")
    return ";".join(parts)


@tool(
    risk=Risk.EXTERNAL_EFFECT,
    untrusted_output=True,
    preview=_shell_preview,
    fingerprint=_shell_fingerprint,
    precheck=_command_ok,
)
async def shell(ctx: ToolContext, command: str) -> ToolResult:
    """Run one command (no shell operators) in the workspace, with a timeout and no secrets.

    Args:
        command: The command line, e.g. "git status" or "python report.py".
    """
    sandbox = _sandbox(ctx)
    argv = _parse_command(sandbox, command)
    await asyncio.to_thread(os_sandbox_available)  # its one-off probe runs a process: not here
    try:
        process = await asyncio.create_subprocess_exec(
            *sandbox.confine(argv),
            cwd=sandbox.root(),
            env=sandbox.env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolError(f"no such command: {argv[0]}") from None
    except PermissionError:
        raise ToolError(f"not allowed to run {argv[0]}") from None
    assert process.stdout is not None
    try:
        output = await asyncio.wait_for(
            _read_capped(process.stdout, sandbox.output_limit + 1), sandbox.shell_timeout
        )
        if len(output) > sandbox.output_limit:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        await asyncio.wait_for(process.wait(), sandbox.shell_timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise ToolError(f"timed out after {sandbox.shell_timeout:g} s and was stopped") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    text = output[: sandbox.output_limit].decode("utf-8", errors="replace")
    if len(output) > sandbox.output_limit:
        text += "\n[… output truncated]"
    return ToolResult(
        f"exit code {process.returncode}\n{text}",
        is_error=process.returncode != 0,
        source=f"shell:{argv[0]}",
    )


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


WORKSPACE_TOOLS = (list_files, read_file, write_file, shell)
