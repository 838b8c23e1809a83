"""The shell tool: one plain command in the workspace, confined by the sandbox.

The command line is parsed once (no shell operators), arguments pointing outside the workspace
are refused before anyone is asked, and an approval is bound to a digest of the whole workspace
(an edited script, or a file it sources, voids it). Where the machine has no user namespaces
the tool is off unless the owner opted in (`STEWARD_SHELL_UNCONFINED`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

from agent.child_death import dies_with_parent
from agent.git_pins import GIT_DRIVER_KEYS, git_pins
from agent.inbox_gate import gate_for
from agent.keyrings import fresh_keyring
from agent.policy import SHELL_OPERATORS, shell_argv
from agent.sandbox import OTHERS_FILES, Sandbox
from agent.tools.registry import Risk, ToolContext, ToolError, ToolResult, tool
from agent.tools.workspace import sandbox_of

__all__ = ["SHELL_TOOLS", "shell"]

_DRAIN_SECONDS = 2.0


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
    sandbox = sandbox_of(ctx)
    _parse_command(sandbox, str(arguments["command"]))
    await asyncio.to_thread(sandbox.confined)  # the shell is off: refuse before asking


async def _shell_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    sandbox = sandbox_of(ctx)
    network = (
        "ON, the internet and this machine's own local services"
        if arguments.get("network")
        else "off"
    )
    try:
        confined = await asyncio.to_thread(sandbox.confined)
    except ToolError:
        confined = False
    where = "confined to the workspace" if confined else "UNCONFINED"
    sent = await asyncio.to_thread(_files_sent, sandbox)
    return (
        f"$ {arguments['command']}\n"
        f"(working directory: {sandbox.root()}; network: {network}; {where}; "
        "empty HOME, no secrets in env)"
        + (
            f"\nThe command sees {OTHERS_FILES}/: {sent} file(s) sent in chat, by you or by "
            "others; a test runner or build there may read or run them."
            if sent
            else ""
        )
    )


def _files_sent(sandbox: Sandbox) -> int:
    """Files in the workspace's inbox/ (what was sent in chat, anyone's), a command approved
    sees them (a rule-allowed one does not). Blocking."""
    try:
        with os.scandir(sandbox.root() / OTHERS_FILES) as entries:
            return sum(1 for entry in entries if not entry.name.startswith("."))
    except OSError:  # none yet, or not a folder
        return 0


async def _shell_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The whole workspace tree: a script the command runs, or anything that script sources
    or imports, edited after the approval no longer matches."""
    sandbox = sandbox_of(ctx)
    try:
        argv = _parse_command(sandbox, str(arguments["command"]))
    except ToolError as exc:
        return f"invalid:{exc}"
    try:
        confined = await asyncio.to_thread(sandbox.confined)
    except ToolError:
        confined = False
    # where it runs is part of the action: approved confined, it must not run unconfined after a
    # restart where namespaces fail and STEWARD_SHELL_UNCONFINED is set (review 68)
    where = "confined" if confined else "unconfined"
    removed = _removed_whole(argv)
    return f"tree:{where}:" + await asyncio.to_thread(sandbox.tree_digest, removed)


def _removed_whole(argv: list[str]) -> tuple[str, ...]:
    """The folders `rm -r` deletes whole, as workspace paths: what is inside them does not
    change what it does, so it is left out of the card's digest, and a tree too deep to hash
    (R105: every card after it was refused, the repair's too) can still be removed."""
    if argv[0] != "rm":  # the system's, by PATH: a script called rm may read what it removes
        return ()
    flags, operands, ended = [], [], False
    for word in argv[1:]:
        if not ended and word == "--":
            ended = True
        elif not ended and word.startswith("-") and word != "-":
            flags.append(word)
        else:
            operands.append(os.path.normpath(word))
    recursive = any(
        f in ("--recursive", "-R") or (not f.startswith("--") and ("r" in f or "R" in f))
        for f in flags
    )
    if not recursive:
        return ()
    return tuple(path for path in operands if path not in (".", "..", "/"))


def _inbox_alone_changed(approved: str, current: str) -> bool:
    """`inbox/` was empty (or absent) on the card and only it changed since (someone sent a
    file), and the command runs confined: it can still run, with `inbox/` hidden, so it sees
    just what the card showed (R100: any file another person sent denied the owner's approval
    as "changed"). Had it held files, hiding them would change what the command does (a
    `git commit -a` deleting the tracked ones, R102): that is a changed action still."""
    tree, _, inbox = approved.partition(":inbox:")
    return (
        tree.startswith("tree:confined:")
        and (inbox == "none" or inbox.startswith("empty:"))
        and tree == current.partition(":inbox:")[0]
    )


_HIDDEN_NOTE = f"({OTHERS_FILES}/ was hidden from the command: files arrived after the card)\n"


@tool(
    risk=Risk.EXTERNAL_EFFECT,
    owner_data=True,
    untrusted_output=True,
    preview=_shell_preview,
    fingerprint=_shell_fingerprint,
    precheck=_command_ok,
    still_matches=_inbox_alone_changed,
    paged=True,
)
async def shell(ctx: ToolContext, command: str, network: bool = False) -> ToolResult:
    """Run one command (no shell operators) in the workspace, with a timeout and no secrets.

    Args:
        command: The command line, e.g. "git status" or "python report.py".
        network: Give the command network access (off by default).
    """
    sandbox = sandbox_of(ctx)
    argv = _parse_command(sandbox, command)
    # no file lands in inbox/ while it runs: one sent meanwhile waits for it to end (R105)
    async with gate_for(sandbox.workspace).command():
        confined = await asyncio.to_thread(sandbox.confined)
        unasked = not ctx.approved
        told = ""
        if ctx.approved and ctx.approved_fingerprint is not None:
            now = await _shell_fingerprint(ctx, {"command": command})
            if now != ctx.approved_fingerprint:
                if not _inbox_alone_changed(ctx.approved_fingerprint, now):
                    raise ToolError("the workspace changed after the approval; nothing ran")
                unasked = True  # what was sent since the card is not shown to it
                if now.partition(":inbox:")[2].startswith("held:"):
                    told = _HIDDEN_NOTE
        pins = (
            await _git_pins(sandbox, argv, confined, unasked)
            if Path(argv[0]).name == "git"
            else None
        )
        code, output = await _run(
            sandbox,
            sandbox.command(argv, confined=confined, network=network, unasked=unasked),
            sandbox.env(confined=confined, git=pins),
        )
    text = output[: sandbox.output_limit].decode("utf-8", errors="replace")
    if len(output) > sandbox.output_limit:
        text += "\n[… output truncated]"
    return ToolResult(
        f"{told}exit code {code}\n{text}", is_error=code != 0, source=f"shell:{argv[0]}"
    )


async def _git_pins(
    sandbox: Sandbox, argv: list[str], confined: bool, unasked: bool
) -> dict[str, str]:
    """Pin every program-valued key the repository (and its submodules) configure, as found
    by git itself in the same sandbox, seeing what the command will see (`inbox/` hidden or
    not), so `git status` runs no filter or diff driver."""
    index = 1
    while index < len(argv) and argv[index].startswith("-"):
        index += 2 if argv[index] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    scan = [
        "/bin/sh",
        "-c",
        'git "$@" config -z --name-only --get-regexp "$STEWARD_GIT_KEYS" 2>/dev/null\n'
        'git "$@" submodule foreach --quiet --recursive '
        "'git config -z --name-only --get-regexp \"$STEWARD_GIT_KEYS\"; true' 2>/dev/null\n"
        # submodules not checked out keep a git folder a later `submodule update` reuses (R109)
        'common=$(git "$@" rev-parse --path-format=absolute --git-common-dir 2>/dev/null) &&'
        ' [ -d "$common/modules" ] && find "$common/modules" -name config -type f -exec'
        ' git config -z --includes --name-only --file {} --get-regexp "$STEWARD_GIT_KEYS" \\;'
        " 2>/dev/null\n"
        "exit 0",
        "git-scan",
        *argv[1:index],
    ]
    env = {**sandbox.env(confined=confined), "STEWARD_GIT_KEYS": GIT_DRIVER_KEYS}
    scanning = sandbox.command(scan, confined=confined, unasked=unasked)
    code, output = await _run(sandbox, scanning, env)
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
            # dies with Steward; not Steward's keyring, nor an earlier command's
            preexec_fn=dies_with_parent(fresh_keyring),
        )
    except FileNotFoundError:
        raise ToolError(f"no such command: {argv[0]}") from None
    except PermissionError:
        raise ToolError(f"not allowed to run {argv[0]}") from None
    except subprocess.SubprocessError:  # the child could not get a keyring of its own
        raise ToolError("could not start the command in a keyring of its own") from None
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


SHELL_TOOLS = (shell,)
