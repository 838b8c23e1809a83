"""Files, confined to the workspace (`STEWARD_DATA_DIR/workspace`); commands are in `shell.py`.

Files are opened by `workspace_open`: walking down from the workspace without following links,
one link only, nothing written inside `.git`, and an approved call's file the one it approved.

(Some 410 lines: the three file tools, and a card's preview, its diff, reads the file through
the same open.)
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import difflib
import os
import re
import stat
from pathlib import PurePosixPath
from typing import Any

from agent.media.documents import DocumentError, decode_text
from agent.sandbox import Sandbox
from agent.tools.canonical import WorkspacePath
from agent.tools.registry import (
    ActionHook,
    Precheck,
    Risk,
    ToolContext,
    ToolError,
    ToolResult,
    tool,
)
from agent.tools.workspace_open import (
    Missing,
    Pinned,
    as_approved,
    changed,
    fingerprint,
    linked,
    no_git,
    open_in_workspace,
    open_pinned,
    same_file,
    walk_down,
)

__all__ = ["WORKSPACE_TOOLS", "leads_to", "sandbox_of"]

_READ_LIMIT = 200_000
_DRAIN_SECONDS = 2.0


def sandbox_of(ctx: ToolContext) -> Sandbox:
    if ctx.deps.sandbox is None:
        raise ToolError("no workspace is configured")
    return ctx.deps.sandbox


def _check_file(sandbox: Sandbox, path: str, *, write: bool) -> None:
    """Refuse before anyone is asked: outside, inside .git (writes), or hard-linked. Blocking."""
    target = sandbox.resolve(path)
    if write:
        relative = PurePosixPath(target.relative_to(sandbox.root()).as_posix())
        no_git(path, sandbox.check_relative(path), relative)
    with contextlib.suppress(FileNotFoundError):
        info = target.stat()
        if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
            raise linked(path, info.st_nlink)


async def _path_ok(ctx: ToolContext, arguments: dict[str, Any]) -> None:
    sandbox_of(ctx).resolve(str(arguments.get("path") or "."))


def _file_ok(write: bool) -> Precheck:
    async def check(ctx: ToolContext, arguments: dict[str, Any]) -> None:
        await asyncio.to_thread(_check_file, sandbox_of(ctx), str(arguments["path"]), write=write)

    return check


def _where(sandbox: Sandbox, path: str) -> str:
    """Where `path` leads now, for the approval of a read: the card's path swapped for a link
    after the card (or a link's target changed) is another action."""
    return fingerprint(sandbox, path, Pinned.where)


def _read_hooks(what: str, done: str) -> tuple[ActionHook, ActionHook]:
    """A read's preview (the file or folder it really reads, when a link leads elsewhere) and
    fingerprint (where the path leads). R154: a guest's approved read of `shared/readme.md`,
    a link to `private/diary.md`, showed only the path, and a link made after the card did
    not void the approval."""

    async def preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
        path = str(arguments.get("path") or ".")
        real = await asyncio.to_thread(leads_to, sandbox_of(ctx), path)
        shown = f"{what} {path}"
        return f"{shown} (a link: the {done} is {real})" if real is not None else shown

    async def fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
        return await asyncio.to_thread(_where, sandbox_of(ctx), str(arguments.get("path") or "."))

    return preview, fingerprint


async def _through_links(ctx: ToolContext, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """The call as it reaches its file: the path a link on the way leads to, if any."""
    real = await asyncio.to_thread(leads_to, sandbox_of(ctx), str(arguments.get("path") or "."))
    return [arguments | {"path": real}] if real is not None else []


_list_preview, _list_fingerprint = _read_hooks("list workspace folder", "folder listed")
_read_preview, _read_fingerprint = _read_hooks("read workspace file", "file read")


@tool(
    risk=Risk.READ,
    owner_data=True,
    untrusted_output=True,
    preview=_list_preview,
    fingerprint=_list_fingerprint,
    aliases=_through_links,
    precheck=_path_ok,
)
async def list_files(ctx: ToolContext, path: WorkspacePath = ".") -> str | ToolResult:
    """List the files and folders in the workspace (or in a folder of it).

    Args:
        path: A folder relative to the workspace; the workspace itself when omitted.
    """
    body = await asyncio.to_thread(_listing, sandbox_of(ctx), path, ctx.approved_fingerprint)
    return ToolResult(body, source=f"workspace:{path}")


def _listing(sandbox: Sandbox, path: str, approved: str | None) -> str:
    pinned = as_approved(sandbox, path, approved, Pinned.where, "nothing was listed")
    relative = pinned.relative
    # opened from the workspace down, never following a link, and read through that one open
    # folder: a command swapping it for a link mid-listing listed the data folder (R128); nor
    # does a link it holds say whether the path it names exists here (R105)
    try:
        at = walk_down(sandbox.root(), relative.parts, path, make=False)
    except Missing:
        raise ToolError(f"{path} is not a folder in the workspace") from None
    try:
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=at)  # the folder itself
    except PermissionError:
        raise ToolError(f"refused: no permission to list {path}") from None
    finally:
        os.close(at)
    was = pinned.found
    if approved is not None and (was is None or not same_file(os.fstat(fd), was)):
        os.close(fd)  # R253: another folder than the one approved
        raise changed(path, "nothing was listed")
    try:
        with os.scandir(fd) as scan:
            found = sorted(scan, key=lambda e: (not e.is_dir(follow_symlinks=False), e.name))
        lines = [_listed(fd, relative, item) for item in found[:500]]
    finally:
        os.close(fd)
    return "\n".join(lines) or "(empty)"


def _listed(fd: int, relative: PurePosixPath, item: os.DirEntry[str]) -> str:
    name = (relative / item.name).as_posix()
    try:
        info = item.stat(follow_symlinks=False)
    except OSError:
        return f"{name} (gone)"
    if stat.S_ISLNK(info.st_mode):
        try:
            return f"{name} -> {os.readlink(item.name, dir_fd=fd)} (a link)"
        except OSError:
            return f"{name} (a link)"
    if stat.S_ISDIR(info.st_mode):
        return f"{name}/"
    note = f"{info.st_size} bytes"
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        note += f", {info.st_nlink} hard links: not readable"
    return f"{name} ({note})"


@tool(
    risk=Risk.READ,
    owner_data=True,
    untrusted_output=True,
    preview=_read_preview,
    fingerprint=_read_fingerprint,
    aliases=_through_links,
    precheck=_file_ok(write=False),
    paged=True,
)
async def read_file(ctx: ToolContext, path: WorkspacePath) -> ToolResult:
    """Read a text file from the workspace.

    Args:
        path: The file, relative to the workspace (e.g. notes/todo.md).
    """
    data = await asyncio.to_thread(_approved_read, sandbox_of(ctx), path, ctx.approved_fingerprint)
    return ToolResult(data, source=f"file:{path}")


_SIGNATURES = (
    (b"%PDF-", "a PDF"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"OggS", "an Ogg recording"),
)
_SNIFF = 8192


def _binary(data: bytes) -> str | None:
    """What a file is when it is not text (by its first bytes), else None."""
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            return what
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "a WebP image"
    return None


def _approved_read(sandbox: Sandbox, path: str, approved: str | None) -> str:
    """R253: the file checked is the file opened (pinned once, its identity compared)."""
    undone = "nothing was read"
    pinned = as_approved(sandbox, path, approved, Pinned.where, undone)
    fd = open_pinned(sandbox, pinned, write=False, undone=undone if approved is not None else None)
    return _read_text(fd, path)


def _read_text(fd: int, path: str, limit: int = _READ_LIMIT) -> str:
    """The file open at `fd` as text (the handle closed); a binary file (a saved photo) is
    refused in one sentence: read as text it had given the model 135,000 characters of U+FFFD.
    Text with NUL bytes in it is text still: UTF-16 (PowerShell's `>`), NUL-separated names
    (`find -print0`: review 90)."""
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    cut = "\n[… truncated]" if len(data) > limit else ""
    what = _binary(data)
    if what is None and b"\x00" in data[:_SNIFF]:
        text = _text_with_nuls(data[:limit])
        if text is not None:
            return text + cut
        what = "a binary file"
    if what is not None:
        # the text Steward read from a file that came in is named in the note of its message;
        # a name guessed here could be another person's file (review 90: "x.pdf.txt")
        raise ToolError(
            f"{path} is {what}, not text; read_file reads text files only (the text read from "
            "a file that came in is in the .txt its message named)."
        )
    return data[:limit].decode("utf-8", errors="replace") + cut


_NUL_SHOWN = "\u2400"  # ␀: one character, where a NUL went to the model as six (\u0000)


_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _text_with_nuls(data: bytes) -> str | None:
    """Text that holds NUL bytes: UTF-16 or UTF-32 with a byte order mark; else UTF-8 whose
    NULs separate words (`-print0`), its NULs shown as ␀; else UTF-16 without a mark (every
    other byte NUL, which is too many NULs for separators); None for anything else (review
    92: zeros and a tar archive are valid UTF-8 too, and went to the model as 200,000 NULs;
    review 93: "USD␀EUR␀" had been read as UTF-16, as CJK junk)."""
    if data.startswith(_BOMS):
        return decode_text(data)
    decoded = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=False)
    sample = decoded[:_SNIFF]
    nuls, bad = sample.count("\x00"), sample.count("\ufffd")
    controls = sum(1 for char in sample if char < " " and char not in "\t\n\r\x00")
    if (
        "\x00\x00\x00\x00" not in sample
        and nuls <= len(sample) * 0.25
        and controls <= max(2, len(sample) * 0.05)  # a small file may hold one or two
        and bad <= max(2, len(sample) * 0.01)  # a Latin-1 name among UTF-8 ones, not binary
    ):
        return decoded.replace("\x00", _NUL_SHOWN)
    try:
        return decode_text(data)  # UTF-16 without a byte order mark
    except DocumentError:
        return None


_DIFF_LIMIT = 256 * 1024
"""An old file larger than this is not diffed: its preview would be stored with the request and
drawn by every card and console poll (a 20 MB document in the inbox stalled the loop for 9 s)."""


def leads_to(sandbox: Sandbox, path: str) -> str | None:
    """The workspace file `path` really names when a link on the way leads elsewhere (what a
    write replaces, what an attachment holds), None when it is `path` itself. Blocking."""
    try:
        relative = sandbox.check_relative(path)
        real = sandbox.resolve(path).relative_to(sandbox.root())
    except (ToolError, OSError, ValueError):
        return None
    if PurePosixPath(real.as_posix()) == PurePosixPath(relative):
        return None
    # on one line, as a card shows it: a control character in a name is written as its code
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", real.as_posix())


def _write_diff(sandbox: Sandbox, path: str, content: str) -> str:
    """The whole diff against the file as it is (blocking: difflib is slow on big files),
    headed by the file that changes: through a link, the link's target, named as such."""
    real = leads_to(sandbox, path)
    heading = f"write workspace file {path}"
    if real is not None:
        heading += f" (a link: the file written is {real})"
    return heading + "\n" + _diff(sandbox, real or path, content)


def _diff(sandbox: Sandbox, path: str, content: str) -> str:
    new = _lines(content)
    sandbox.resolve(path)  # a path no write can take (a link loop) is refused in words, alone
    try:
        with os.fdopen(open_in_workspace(sandbox, path, write=False), "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            data = handle.read(_DIFF_LIMIT + 1)
    except Missing:
        size, data = 0, b""
    except ToolError as exc:
        # R222: a file Steward may write but not read (mode 0200) gave a card of one line,
        # "refused: could not open …", and approving wrote words it never showed. The card
        # shows all it writes; refusing instead would stop a write that can be done.
        why = str(exc).removeprefix("refused: ")
        return (
            f"{path} could not be read ({why}), so what changes cannot be shown; approving "
            f"replaces it with all {len(new)} line(s):\n" + _added(new)
        )
    if len(data) > _DIFF_LIMIT:
        return (
            f"replaces all of {path} ({size:,} bytes, too large to show as a diff) with "
            f"{len(new)} line(s):\n" + _added(new)
        )
    old = _lines(data.decode("utf-8", errors="replace"))
    return "\n".join(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}", lineterm=""))


def _added(lines: list[str]) -> str:
    return "\n".join(f"+{line}" for line in lines)


def _lines(text: str) -> list[str]:
    """A file's lines as a shell or an editor reads them: split at newlines only. (R139:
    `splitlines` also split at \\v, \\f, \\r, U+2028…, which the card then could not show, so
    `rm -rf ./cache\\v# a comment` looked like the line kept and a comment added.)"""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


async def _write_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The whole diff: the card layer decides how to show a long one, never this function."""
    path = str(arguments["path"])
    try:
        return await asyncio.to_thread(
            _write_diff, sandbox_of(ctx), path, str(arguments["content"])
        )
    except ToolError as exc:
        return f"write {path}: {exc}"


async def _write_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """The file as it is now: where the path leads, its links and what it holds."""
    return await asyncio.to_thread(_file_state, sandbox_of(ctx), str(arguments["path"]))


def _file_state(sandbox: Sandbox, path: str) -> str:
    return fingerprint(sandbox, path, Pinned.state)


@tool(
    risk=Risk.WRITE_INTERNAL,
    owner_data=True,
    preview=_write_preview,
    fingerprint=_write_fingerprint,
    aliases=_through_links,
    precheck=_file_ok(write=True),
)
async def write_file(ctx: ToolContext, path: WorkspacePath, content: str) -> str:
    """Write a text file in the workspace, replacing what was there.

    Args:
        path: The file, relative to the workspace (e.g. notes/todo.md).
        content: The whole new content of the file.
    """
    data = content.encode()
    await asyncio.to_thread(_write, sandbox_of(ctx), path, data, ctx.approved_fingerprint)
    return f"wrote {len(data)} bytes to {path}"


def _write(sandbox: Sandbox, path: str, data: bytes, approved: str | None) -> None:
    """R253: the file checked is the file written, its identity compared before truncating."""
    undone = "nothing was written"
    pinned = as_approved(sandbox, path, approved, Pinned.state, undone)
    fd = open_pinned(sandbox, pinned, write=True, undone=undone if approved is not None else None)
    with os.fdopen(fd, "wb") as handle:
        os.ftruncate(fd, 0)
        handle.write(data)


WORKSPACE_TOOLS = (list_files, read_file, write_file)
