"""The workspace's fingerprint for shell approvals: what a command could run or read, hashed.

An approval of a shell command is bound to this digest, so editing any file under the workspace
after the owner approved stops the approval from matching. Files a command made unreadable to
Steward are repaired first (see `_readable`), without following links swapped in meanwhile.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable, Collection
from pathlib import Path

from agent.errors import ToolError

__all__ = ["MAX_DEPTH", "file_digest", "workspace_digest"]


MAX_DEPTH = 256
"""Folders nested deeper than this are not walked (each level holds a descriptor open while
its contents are hashed); a tree deeper refuses, naming its top, which `rm -r` may remove."""


def workspace_digest(
    root: Path, leave_out: str = "", removed: Collection[str] = (), shown: str = ""
) -> str:
    """A hash of everything under `root` (but the top-level entry `leave_out`): every path
    with its type, mode, link count, symlink target and content digest, so an approval stops
    matching when any file a command could run or read changes; ToolError when something in
    it cannot be read. `removed`: relative paths whose contents do not count (only the entry
    itself), for a command that deletes them whole (`rm -r`): what is in them does not change
    what it does, and a tree too deep to hash can still be removed. `shown`: what comes before
    a path in a refusal (`inbox/` for that folder's own walk). Walked through directory
    descriptors, one level at a time, so neither the length of a path (past PATH_MAX) nor the
    depth (Python 3.11's `os.walk` recursed) breaks it (R105). Blocking: call it from a worker
    thread."""
    digest = hashlib.sha256()
    opaque = {os.path.normpath(path) for path in removed}

    def note(*fields: object) -> None:
        digest.update(repr(fields).encode("utf-8", "surrogateescape"))

    note(".", oct(_readable(str(root), root.lstat()).st_mode))  # the folder itself too
    try:
        top = os.open(root, _DIRECTORY)
    except OSError:
        raise _unverifiable(shown or ".") from None
    # each level: its descriptor and the folders under it still to walk (last first)
    stack: list[tuple[int, str, list[str]]] = [(top, "", [])]
    try:
        stack[0][2].extend(reversed(_walk_one(top, "", note, leave_out, opaque)))
        while stack:
            fd, relative, pending = stack[-1]
            if not pending:
                os.close(fd)
                stack.pop()
                continue
            name = pending.pop()
            below = os.path.join(relative, name)
            if len(stack) >= MAX_DEPTH:
                top = shown + below.split(os.sep)[0]
                raise ToolError(
                    f"refused: {top}/ in the workspace holds folders nested more than "
                    f"{MAX_DEPTH} deep, too deep to tell whether it changed; remove it "
                    f"(`rm -r {top}` can be asked for)"
                )
            try:
                child = os.open(name, _DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                note(below, "gone")
                continue
            except OSError:
                raise _unverifiable(below) from None
            stack.append((child, below, []))
            stack[-1][2].extend(reversed(_walk_one(child, below, note, "", opaque)))
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    return digest.hexdigest()


_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _unverifiable(relative: str) -> ToolError:
    # A file or folder Steward cannot read could change unseen: no digest, so no approval can
    # match it. (Its own files it makes readable first, see _readable.)
    return ToolError(
        f"refused: I cannot read {relative} in the workspace, so an approval could not "
        "tell whether it changed"
    )


def _walk_one(
    fd: int, relative: str, note: Callable[..., None], leave_out: str, opaque: set[str]
) -> list[str]:
    """Note every entry of the folder open as `fd` (sorted by name); the names of the folders
    in it to walk next."""
    try:
        names = sorted(os.listdir(fd))
    except OSError:
        raise _unverifiable(relative or ".") from None
    folders = []
    for name in names:
        if name == leave_out:
            continue
        path = os.path.join(relative, name)
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError as exc:
            note(path, "gone", exc.errno)
            continue
        info = _readable(f"/proc/self/fd/{fd}/{name}", info)
        if stat.S_ISLNK(info.st_mode):
            try:
                note(path, "link", os.readlink(name, dir_fd=fd))
            except OSError as exc:  # gone since the lstat
                note(path, "gone", exc.errno)
        elif stat.S_ISREG(info.st_mode):
            content = file_digest(f"/proc/self/fd/{fd}/{name}", info)
            if content.startswith("unreadable:"):
                raise _unverifiable(path)
            note(path, "file", oct(info.st_mode), info.st_nlink, content)
        else:
            note(path, "other", oct(info.st_mode))
            if stat.S_ISDIR(info.st_mode) and path not in opaque:
                folders.append(name)
    return folders


_DIGESTS: dict[tuple[int, ...], str] = {}
_RACY_NS = 2_000_000_000


def _readable(path: str, info: os.stat_result) -> os.stat_result:
    """A workspace file or folder of Steward's own that a command made unreadable to it
    (`chmod 000`, an archive unpacked with such modes) is made readable again (u+r, and u+x
    for a folder) so its contents can be hashed: refused instead, one such entry left every
    later command, the chmod that would fix it included, without an approval (a lockout).

    The entry is opened without following a link and checked to be the one `lstat` saw, and
    the mode is changed through that handle from its current bits: a link swapped in
    meanwhile (a command still running) cannot turn this into a chmod of a file elsewhere.
    Set-id bits are never kept. (A file's other names, hard links, are the same inode: the
    handle check covers them; the sandbox cannot link a file from outside the workspace.)"""
    if stat.S_ISLNK(info.st_mode) or info.st_uid != os.geteuid():
        return info
    folder = stat.S_ISDIR(info.st_mode)
    wanted = stat.S_IRUSR | (stat.S_IXUSR if folder else 0)
    if not (folder or stat.S_ISREG(info.st_mode)) or info.st_mode & wanted == wanted:
        return info
    try:
        fd = os.open(path, os.O_PATH | os.O_NOFOLLOW)
    except OSError:
        return info
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino) or stat.S_IFMT(
            now.st_mode
        ) != stat.S_IFMT(info.st_mode):
            return info
        mode = stat.S_IMODE(now.st_mode) & ~(stat.S_ISUID | stat.S_ISGID) | wanted
        os.chmod(f"/proc/self/fd/{fd}", mode)
        return os.fstat(fd)
    except OSError:
        return info
    finally:
        os.close(fd)


def file_digest(path: str, info: os.stat_result) -> str:
    """A file's SHA-256 over its data extents (with where each lies), read a MiB at a time and
    remembered while its inode, size, mtime and ctime stay the same; `unreadable:<errno>` or
    `replaced` (not the regular file `info` was). Holes are skipped: a 4 GiB sparse file a
    command made in a moment took 4 s to read, zeros all of it (R105)."""
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    if key in _DIGESTS:
        return _DIGESTS[key]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "replaced"
        digest.update(b"size:%d;" % info.st_size)  # a trailing hole has no extent (R109)
        for start, end in _extents(fd):
            digest.update(b"%d-%d:" % (start, end))  # where the data lies: holes read as zeros
            handle.seek(start)
            left = end - start
            while left > 0 and (chunk := handle.read(min(left, 1 << 20))):
                digest.update(chunk)
                left -= len(chunk)
    found = digest.hexdigest()
    # a file changed within the file system's timestamp tick of now could change again with
    # the same size and times: not remembered (as git treats a "racily clean" entry). A same
    # size edit right after a card was hashed read back the card's digest (R109)
    if time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns) > _RACY_NS:
        if len(_DIGESTS) > 200_000:
            _DIGESTS.clear()
        _DIGESTS[key] = found
    return found


def _extents(fd: int) -> list[tuple[int, int]]:
    """The (start, end) of each run of data in the file, holes left out (SEEK_DATA and
    SEEK_HOLE; the whole file where the file system cannot say)."""
    size = os.fstat(fd).st_size
    extents: list[tuple[int, int]] = []
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole from here to the end
                break
            return [(0, size)]
        end = os.lseek(fd, start, os.SEEK_HOLE)
        extents.append((start, end))
        offset = end
    return extents
