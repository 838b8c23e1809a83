"""Files and commands, confined to the workspace (`STEWARD_DATA_DIR/workspace`).

Files are opened by walking down from the workspace one folder at a time without following
symlinks, so a folder swapped for a link after the checks cannot redirect the open; a file with
more than one hard link is refused (it may be `policy.toml` or `.env` under another name), and
nothing is written inside a `.git` folder (a planted config or hook would run code).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import os
import re
import signal
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from agent.policy import SHELL_OPERATORS, shell_argv
from agent.sandbox import GIT_DRIVER_KEYS, Sandbox, git_pins
from agent.tools.registry import Precheck, Risk, ToolContext, ToolError, ToolResult, tool

__all__ = ["WORKSPACE_TOOLS"]

_READ_LIMIT = 200_000
_DRAIN_SECONDS = 2.0


def _sandbox(ctx: ToolContext) -> Sandbox:
    if ctx.deps.sandbox is None:
        raise ToolError("no workspace is configured")
    return ctx.deps.sandbox


class _Missing(ToolError):
    """The file does not exist (yet)."""


def _linked(path: str, links: int) -> ToolError:
    return ToolError(
        f"refused: {path} has {links} hard links, so it may be a file from outside the workspace "
        "(such as policy.toml or .env) under another name; only files with a single link are "
        "read or written"
    )


def _no_git(path: str, *relatives: PurePosixPath) -> None:
    for relative in relatives:
        if any(part.casefold() == ".git" for part in relative.parts):
            raise ToolError(
                f"refused: {path} is inside a .git folder; Steward does not write git's own files "
                "(a planted config or hook would run code)"
            )


def _open(sandbox: Sandbox, path: str, *, write: bool) -> int:
    """Open a workspace file walking down from the workspace with O_NOFOLLOW, then check the
    opened file itself: a regular file with one link. Blocking."""
    root = sandbox.root()
    target = sandbox.resolve(path)
    relative = PurePosixPath(target.relative_to(root).as_posix())
    if not relative.parts:
        raise ToolError(f"{path} is a folder")
    if write:
        _no_git(path, sandbox.check_relative(path), relative)
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in relative.parts[:-1]:
            if write:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=folder)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            except OSError:
                raise ToolError(f"refused: {path} changed while it was being opened") from None
            os.close(folder)
            folder = inner
        flags = (os.O_WRONLY | os.O_CREAT) if write else os.O_RDONLY
        try:
            fd = os.open(
                relative.parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644, dir_fd=folder
            )
        except FileNotFoundError:
            raise _Missing(f"{path} is not a file in the workspace") from None
        except IsADirectoryError:
            raise ToolError(f"{path} is a folder") from None
        except OSError as exc:
            raise ToolError(f"refused: could not open {path} safely ({exc.strerror})") from None
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
        return fd
    os.close(fd)
    if stat.S_ISREG(info.st_mode):
        raise _linked(path, info.st_nlink)
    raise ToolError(
        f"{path} is a folder"
        if stat.S_ISDIR(info.st_mode)
        else f"refused: {path} is not a regular file"
    )


def _check_file(sandbox: Sandbox, path: str, *, write: bool) -> None:
    """Refuse before anyone is asked: outside, inside .git (writes), or hard-linked. Blocking."""
    target = sandbox.resolve(path)
    if write:
        relative = PurePosixPath(target.relative_to(sandbox.root()).as_posix())
        _no_git(path, sandbox.check_relative(path), relative)
    with contextlib.suppress(FileNotFoundError):
        info = target.stat()
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            raise _linked(path, info.st_nlink)


async def _path_ok(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    _sandbox(ctx).resolve(str(arguments.get("path") or "."))


def _file_ok(write: bool) -> Precheck:
    async def check(ctx: ToolContext, arguments: dict[str, Any]) -> None:
        await asyncio.to_thread(_check_file, _sandbox(ctx), str(arguments["path"]), write=write)

    return check


@tool(risk=Risk.READ, untrusted_output=True, precheck=_path_ok)
async def list_files(ctx: ToolContext, path: str = ".") -> str | ToolResult:
    """List the files and folders in the workspace (or in a folder of it).

    Args:
        path: A folder relative to the workspace; the workspace itself when omitted.
    """
    body = await asyncio.to_thread(_listing, _sandbox(ctx), path)
    return ToolResult(body, source=f"workspace:{path}")


def _listing(sandbox: Sandbox, path: str) -> str:
    folder = sandbox.resolve(path)
    if not folder.is_dir():
        raise ToolError(f"{path} is not a folder in the workspace")
    root = sandbox.root()
    entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
    lines = []
    for entry in entries[:500]:
        name = entry.relative_to(root).as_posix()
        if entry.is_dir():
            lines.append(f"{name}/")
            continue
        info = entry.lstat()
        note = f"{info.st_size} bytes"
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            note += f", {info.st_nlink} hard links: not readable"
        lines.append(f"{name} ({note})")
    return "\n".join(lines) or "(empty)"


@tool(risk=Risk.READ, untrusted_output=True, precheck=_file_ok(write=False))
async def read_file(ctx: ToolContext, path: str) -> ToolResult:
    """Read a text file from the workspace.

    Args:
        path: The file, relative to the workspace (e.g. notes/todo.md).
    """
    data = await asyncio.to_thread(_read_text, _sandbox(ctx), path)
    return ToolResult(data, source=f"file:{path}")


def _read_text(sandbox: Sandbox, path: str, limit: int | None = _READ_LIMIT) -> str:
    with os.fdopen(_open(sandbox, path, write=False), "rb") as handle:
        data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is None or len(data) <= limit:
        return data.decode("utf-8", errors="replace")
    return data[:limit].decode("utf-8", errors="replace") + "\n[… truncated]"


def _old_text(sandbox: Sandbox, path: str) -> str:
    try:
        return _read_text(sandbox, path, limit=None)
    except _Missing:
        return ""


async def _write_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The whole diff: the card layer decides how to show a long one, never this function."""
    path = str(arguments["path"])
    try:
        old = await asyncio.to_thread(_old_text, _sandbox(ctx), path)
    except ToolError as exc:
        return f"write {path}: {exc}"
    diff = difflib.unified_diff(
        old.splitlines(),
        str(arguments["content"]).splitlines(),
        f"a/{path}",
        f"b/{path}",
        lineterm="",
    )
    return f"write workspace file {path}\n" + "\n".join(diff)


async def _write_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The file as it is now: where the path leads, its links and what it holds."""
    return await asyncio.to_thread(_file_state, _sandbox(ctx), str(arguments["path"]))


def _file_state(sandbox: Sandbox, path: str) -> str:
    try:
        sandbox.check_relative(path)
        link = sandbox.root() / path
        target = link.resolve()
        info = target.lstat()
    except FileNotFoundError:
        return f"{target}|symlink={link.is_symlink()}|absent"
    except (ToolError, OSError) as exc:
        return f"invalid:{exc}"
    if not stat.S_ISREG(info.st_mode):
        return f"{target}|symlink={link.is_symlink()}|not-a-file"
    content = hashlib.sha256(target.read_bytes()).hexdigest()
    return f"{target}|symlink={link.is_symlink()}|links={info.st_nlink}|{content}"


@tool(
    risk=Risk.WRITE_INTERNAL,
    preview=_write_preview,
    fingerprint=_write_fingerprint,
    precheck=_file_ok(write=True),
)
async def write_file(ctx: ToolContext, path: str, content: str) -> str:
    """Write a text file in the workspace, replacing what was there.

    Args:
        path: The file, relative to the workspace (e.g. notes/todo.md).
        content: The whole new content of the file.
    """
    data = content.encode()
    await asyncio.to_thread(_write, _sandbox(ctx), path, data)
    return f"wrote {len(data)} bytes to {path}"


def _write(sandbox: Sandbox, path: str, data: bytes) -> None:
    fd = _open(sandbox, path, write=True)
    with os.fdopen(fd, "wb") as handle:
        os.ftruncate(fd, 0)
        handle.write(data)


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


async def _command_ok(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    sandbox = _sandbox(ctx)
    _parse_command(sandbox, str(arguments["command"]))
    await asyncio.to_thread(sandbox.confined)  # the shell is off: refuse before asking


async def _shell_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    sandbox = _sandbox(ctx)
    network = "ON" if arguments.get("network") else "off"
    try:
        confined = await asyncio.to_thread(sandbox.confined)
    except ToolError:
        confined = False
    where = "confined to the workspace" if confined else "UNCONFINED"
    return (
        f"$ {arguments['command']}\n"
        f"(working directory: {sandbox.root()}; network: {network}; {where}; "
        "empty HOME, no secrets in env)"
    )


async def _shell_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The whole workspace tree: a script the command runs, or anything that script sources
    or imports, edited after the approval no longer matches."""
    sandbox = _sandbox(ctx)
    try:
        _parse_command(sandbox, str(arguments["command"]))
    except ToolError as exc:
        return f"invalid:{exc}"
    return "tree:" + await asyncio.to_thread(sandbox.tree_digest)


@tool(
    risk=Risk.EXTERNAL_EFFECT,
    untrusted_output=True,
    preview=_shell_preview,
    fingerprint=_shell_fingerprint,
    precheck=_command_ok,
)
async def shell(ctx: ToolContext, command: str, network: bool = False) -> ToolResult:
    """Run one command (no shell operators) in the workspace, with a timeout and no secrets.

    Args:
        command: The command line, e.g. "git status" or "python report.py".
        network: Give the command network access (off by default).
    """
    sandbox = _sandbox(ctx)
    argv = _parse_command(sandbox, command)
    confined = await asyncio.to_thread(sandbox.confined)
    pins = await _git_pins(sandbox, argv, confined) if Path(argv[0]).name == "git" else None
    code, output = await _run(
        sandbox,
        sandbox.command(argv, confined=confined, network=network),
        sandbox.env(confined=confined, git=pins),
    )
    text = output[: sandbox.output_limit].decode("utf-8", errors="replace")
    if len(output) > sandbox.output_limit:
        text += "\n[… output truncated]"
    return ToolResult(f"exit code {code}\n{text}", is_error=code != 0, source=f"shell:{argv[0]}")


async def _git_pins(sandbox: Sandbox, argv: list[str], confined: bool) -> dict[str, str]:
    """Pin every program-valued key the repository (and its submodules) configure, as found
    by git itself in the same sandbox, so `git status` runs no filter or diff driver."""
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    scan = [
        "/bin/sh",
        "-c",
        'git "$@" config -z --name-only --get-regexp "$STEWARD_GIT_KEYS" 2>/dev/null\n'
        'git "$@" submodule foreach --quiet --recursive '
        "'git config -z --name-only --get-regexp \"$STEWARD_GIT_KEYS\"; true' 2>/dev/null\n"
        "exit 0",
        "git-scan",
        *argv[1:index],
    ]
    env = {**sandbox.env(confined=confined), "STEWARD_GIT_KEYS": GIT_DRIVER_KEYS}
    code, output = await _run(sandbox, sandbox.command(scan, confined=confined), env)
    if code != 0:
        raise ToolError(f"could not check the repository's config (exit code {code})")
    keys = output.decode("utf-8", errors="surrogateescape").split("\0")
    return git_pins([key for key in keys if re.match(GIT_DRIVER_KEYS, key, re.IGNORECASE)])


async def _run(sandbox: Sandbox, argv: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run with a timeout and an output cap. When the command ends its process group ends too
    (in the namespace the kernel also kills whatever it left behind). The output pipe is ours,
    not asyncio's, so a leftover holding it open cannot delay the end."""
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=sandbox.root(),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_end,
            stderr=write_end,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise ToolError(f"no such command: {argv[0]}") from None
    except PermissionError:
        raise ToolError(f"not allowed to run {argv[0]}") from None
    finally:
        os.close(write_end)
        if "process" not in locals():
            os.close(read_end)
    reader = asyncio.StreamReader()
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", buffering=0)
    )
    output = bytearray()
    pump = asyncio.create_task(_pump(reader, output, sandbox.output_limit + 1, process.pid))
    try:
        await asyncio.wait_for(process.wait(), sandbox.shell_timeout)
    except TimeoutError:
        raise ToolError(f"timed out after {sandbox.shell_timeout:g} s and was stopped") from None
    finally:
        _kill_group(process.pid)
        if process.returncode is None:
            await process.wait()
        with contextlib.suppress(TimeoutError):  # the rest, unless an escapee holds the pipe
            await asyncio.wait_for(pump, _DRAIN_SECONDS)
        transport.close()
    assert process.returncode is not None
    return process.returncode, bytes(output)


async def _pump(stream: asyncio.StreamReader, into: bytearray, limit: int, pid: int) -> None:
    while len(into) < limit:
        chunk = await stream.read(limit - len(into))
        if not chunk:
            return
        into += chunk
    _kill_group(pid)  # more output than anyone will read: stop it


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


WORKSPACE_TOOLS = (list_files, read_file, write_file, shell)
