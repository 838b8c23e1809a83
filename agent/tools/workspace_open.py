"""The confined open of a workspace file, and the fingerprints an approved file call is held to.

Files are opened by walking down from the workspace one folder at a time without following
symlinks, so a folder swapped for a link after the checks cannot redirect the open; a file with
more than one hard link is refused (it may be `policy.toml` or `.env` under another name), and
nothing is written inside a `.git` folder (a planted config or hook would run code).

R253: an approved call resolves its path once (`pin`), looks at what is there, checks its
fingerprint against that, and opens along that same route; the handle must be the file looked
at (device and inode; for a new file: made in the folder looked at, its name still free) before
a byte is read or the file is truncated. The check had resolved the path and the open resolved
it again, so a path swapped for a link to another file in between passed the check and the open
followed the link (read another file, or wrote the card's words into it). The fingerprints
themselves are as they were: approvals stored before still match.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent.errors import ToolError
from agent.sandbox import Sandbox
from agent.tree_digest import file_digest

__all__ = [
    "Missing",
    "Pinned",
    "as_approved",
    "changed",
    "fingerprint",
    "linked",
    "no_git",
    "open_in_workspace",
    "open_pinned",
    "pin",
    "same_file",
    "walk_down",
]


class Missing(ToolError):
    """The file does not exist (yet)."""


def linked(path: str, links: int) -> ToolError:
    return ToolError(
        f"refused: {path} has {links} hard links, so it may be a file from outside the workspace "
        "(such as policy.toml or .env) under another name; only files with a single link are "
        "read or written"
    )


def changed(path: str, undone: str) -> ToolError:
    return ToolError(f"refused: {path} changed after it was approved; {undone}")


def no_git(path: str, *relatives: PurePosixPath) -> None:
    for relative in relatives:
        if any(part.casefold() == ".git" for part in relative.parts):
            raise ToolError(
                f"refused: {path} is inside a .git folder; Steward does not write git's own files "
                "(a planted config or hook would run code)"
            )


def walk_down(root: os.PathLike[str], parts: tuple[str, ...], path: str, *, make: bool) -> int:
    """The folder `parts` below `root`, opened one folder at a time with O_NOFOLLOW (`make`:
    creating what is missing): a folder a command swaps for a link mid-way is refused, never
    followed. Blocking."""
    # O_PATH: a folder that may be passed through but not read (mode 0311) is no obstacle
    # (R132), as it is not to a path
    folder = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for part in parts:
            if make:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=folder)
            try:
                inner = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            except FileNotFoundError:
                raise Missing(f"{path} is not in the workspace") from None
            except NotADirectoryError:
                raise ToolError(f"{path} is not a folder in the workspace") from None
            except PermissionError:
                raise ToolError(f"refused: no permission to open {path}") from None
            except OSError:
                raise ToolError(f"refused: {path} changed while it was being opened") from None
            os.close(folder)
            folder = inner
    except BaseException:
        os.close(folder)
        raise
    return folder


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@dataclass(frozen=True)
class Pinned:
    """A path resolved once, for both an approval's check and the open."""

    path: str
    target: Path
    """Where it leads (links followed), inside the workspace."""
    relative: PurePosixPath
    """`target` from the workspace."""
    symlink: bool
    found: os.stat_result | None
    """What is at `target` (not followed); None: nothing."""
    folder: os.stat_result | None
    """When nothing is at `target`: the folder it would be made in (None: none either)."""

    def where(self) -> str:
        """A read's or a listing's fingerprint: where the path leads (the card's path swapped
        for a link after the card, or a link's target changed, is another action)."""
        return f"{self.target}|symlink={self.symlink}"

    def state(self) -> str:
        """A write's fingerprint: where the path leads, its links and what it holds. Blocking
        (reads the file, a MiB at a time)."""
        head = f"{self.target}|symlink={self.symlink}"
        if self.found is None:
            return f"{head}|absent"
        if not stat.S_ISREG(self.found.st_mode):
            return f"{head}|not-a-file"
        content = file_digest(str(self.target), self.found)
        return f"{head}|links={self.found.st_nlink}|{content}"


def _look(at: Path) -> os.stat_result | None:
    try:
        return at.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None


def pin(sandbox: Sandbox, path: str) -> Pinned:
    """`path` resolved once, and what is there now; ToolError for a path outside the workspace
    or a link loop. Blocking."""
    root = sandbox.root()
    link = root / sandbox.check_relative(path or ".")
    target = sandbox.resolve(path)
    try:
        found = _look(target)
        folder = _look(target.parent) if found is None else None
    except OSError as exc:
        raise ToolError(f"refused: could not look at {path} ({exc.strerror})") from None
    relative = PurePosixPath(target.relative_to(root).as_posix())
    return Pinned(path, target, relative, link.is_symlink(), found, folder)


def fingerprint(sandbox: Sandbox, path: str, state: Callable[[Pinned], str]) -> str:
    """`state` (`Pinned.where`, `Pinned.state`) of `path` now; `invalid:…` when it cannot be
    pinned. Blocking."""
    try:
        return state(pin(sandbox, path))
    except (ToolError, OSError) as exc:
        return f"invalid:{exc}"


def as_approved(
    sandbox: Sandbox,
    path: str,
    approved: str | None,
    state: Callable[[Pinned], str],
    undone: str,
) -> Pinned:
    """`path` pinned, and for an approved call (R222) its fingerprint (`state`) checked again,
    in the thread that then opens what was pinned: the approval's check and the run are awaits
    apart, and a file edited or a folder swapped for a link in between had been written (or
    read) anyway. Blocking."""
    try:
        pinned = pin(sandbox, path)
    except (ToolError, OSError) as exc:
        if approved is not None and f"invalid:{exc}" != approved:
            raise changed(path, undone) from None
        raise
    if approved is not None and state(pinned) != approved:
        raise changed(path, undone)
    return pinned


def open_in_workspace(sandbox: Sandbox, path: str, *, write: bool) -> int:
    """Open a workspace file walking down from the workspace with O_NOFOLLOW, then check the
    opened file itself: a regular file with one link. Blocking."""
    return open_pinned(sandbox, pin(sandbox, path), write=write)


def open_pinned(sandbox: Sandbox, pinned: Pinned, *, write: bool, undone: str | None = None) -> int:
    """Open the file `pinned` leads to, along that route (never resolved again). `undone`, for
    an approved call: the handle must be the file pinned (a new file: made in the folder
    pinned, its name still free), else it is refused, before anything is read or truncated,
    as changed after it was approved (`undone`: what was not done). Blocking."""
    path, relative, approved = pinned.path, pinned.relative, undone is not None
    if not relative.parts:
        raise ToolError(f"{path} is a folder")
    if write:
        no_git(path, sandbox.check_relative(path), relative)
    moved = changed(path, undone or "")
    new = pinned.found is None  # nothing was there: a write makes the file, a read finds none
    # an approved call makes no folder that was there and has gone since
    make = write and not (approved and (not new or pinned.folder is not None))
    try:
        folder = walk_down(sandbox.root(), relative.parts[:-1], path, make=make)
    except Missing:
        if approved and (not new or pinned.folder is not None):
            raise moved from None
        raise
    try:
        was = pinned.folder  # a new file goes into the folder approved, not one put there since
        if approved and new and was is not None and not same_file(os.fstat(folder), was):
            raise moved
        flags = os.O_RDONLY
        if write:  # never O_TRUNC: the handle is checked first, then truncated
            flags = os.O_WRONLY | (os.O_CREAT if not approved or new else 0)
            flags |= os.O_EXCL if approved and new else 0  # the name is still free
        try:
            fd = os.open(
                relative.parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644, dir_fd=folder
            )
        except FileExistsError:
            raise moved from None
        except FileNotFoundError:
            if approved and not new:
                raise moved from None
            raise Missing(f"{path} is not a file in the workspace") from None
        except IsADirectoryError:
            raise ToolError(f"{path} is a folder") from None
        except OSError as exc:
            if approved and exc.errno == errno.ELOOP:
                raise moved from None  # a link now, where the approval found a file
            raise ToolError(f"refused: could not open {path} safely ({exc.strerror})") from None
    finally:
        os.close(folder)
    info = os.fstat(fd)
    if approved and not (write if pinned.found is None else same_file(info, pinned.found)):
        os.close(fd)  # another file than the one approved: not a byte read or truncated
        raise moved
    if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
        return fd
    os.close(fd)
    if stat.S_ISREG(info.st_mode):
        raise linked(path, info.st_nlink)
    raise ToolError(
        f"{path} is a folder"
        if stat.S_ISDIR(info.st_mode)
        else f"refused: {path} is not a regular file"
    )
