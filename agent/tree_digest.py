"""The workspace's fingerprint for shell approvals: what a command could run or read, hashed.

An approval of a shell command is bound to this digest, so editing any file under the workspace
after the owner approved stops the approval from matching. Files a command made unreadable to
Steward are repaired first (see `_readable`), without following links swapped in meanwhile.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from agent.errors import ToolError

__all__ = ["file_digest", "workspace_digest"]


def workspace_digest(root: Path, leave_out: str = "") -> str:
    """A hash of everything under `root` (but the top-level entry `leave_out`): every path
    with its type, mode, link count, symlink target and content digest, so an approval stops
    matching when any file a command could run or read changes; ToolError when something in
    it cannot be read. Blocking: call it from a worker thread."""
    digest = hashlib.sha256()

    def note(*fields: object) -> None:
        digest.update(repr(fields).encode("utf-8", "surrogateescape"))

    def unverifiable(relative: str) -> ToolError:
        # A file or folder Steward cannot read could change unseen: no digest, so no
        # approval can match it. (Its own files it makes readable first, see _readable.)
        return ToolError(
            f"refused: I cannot read {relative} in the workspace, so an approval could not "
            "tell whether it changed"
        )

    def failed(exc: OSError) -> None:
        raise unverifiable(os.path.relpath(exc.filename or root, root))

    note(".", oct(_readable(str(root), root.lstat()).st_mode))  # the folder itself too
    for folder, dirs, files in os.walk(root, onerror=failed):
        if leave_out and folder == str(root):
            dirs[:] = [d for d in dirs if d != leave_out]
            files = [f for f in files if f != leave_out]
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root)
            try:
                info = os.lstat(path)
            except OSError as exc:
                note(relative, "gone", exc.errno)
                continue
            info = _readable(path, info)
            if stat.S_ISLNK(info.st_mode):
                try:
                    note(relative, "link", os.readlink(path))
                except OSError as exc:  # gone since the lstat
                    note(relative, "gone", exc.errno)
            elif stat.S_ISREG(info.st_mode):
                content = file_digest(path, info)
                if content.startswith("unreadable:"):
                    raise unverifiable(relative)
                note(relative, "file", oct(info.st_mode), info.st_nlink, content)
            else:
                note(relative, "other", oct(info.st_mode))
    return digest.hexdigest()


_DIGESTS: dict[tuple[int, ...], str] = {}


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
    """A file's SHA-256, read a MiB at a time and remembered while its inode, size, mtime and
    ctime stay the same; `unreadable:<errno>` or `replaced` (not the regular file `info` was)."""
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
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    if len(_DIGESTS) > 200_000:
        _DIGESTS.clear()
    _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]
