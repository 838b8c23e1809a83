"""What `steward restore` trusts in an archive: a manifest of the expected shape, and members
that are plain files with safe names.

An archive is a file someone hands us, so nothing in it is taken on faith: the manifest must
name each file as `data/<relative path>` (or `extra/mcp.json`) with a sha256, and only those
names are extracted, as regular files, under the staging directory. Python 3.11.4 added
tarfile's "data" filter; before it (Debian 12 ships 3.11.2) `extract_checked` applies the same
rules by hand, so a restore works, and is as safe, on every 3.11.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["MalformedManifest", "UnsafeMember", "check_manifest", "extract_checked"]

EXTRA_MCP = "extra/mcp.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")
Refused = Callable[[PurePosixPath], bool]  # a data-directory path Steward never archives


def _nothing(_: PurePosixPath) -> bool:
    return False


class MalformedManifest(ValueError):
    """The manifest is not what `steward backup` writes."""


class UnsafeMember(ValueError):
    """A member that is not a regular file, or would land outside the staging directory."""


def safe_name(name: str, *, refused: Refused = _nothing) -> bool:
    """`data/<relative path>` or `extra/mcp.json`, already normalised: no `..`, no `.`, no
    absolute path, no empty part, nothing Steward never archives (`refused`). A backslash is
    an ordinary character of a POSIX name ("notes\\2026.txt", as a zip made on Windows
    unpacks): the archive's separator is "/" alone."""
    if not name or "\x00" in name:
        return False
    path = PurePosixPath(name)
    if str(path) != name or path.is_absolute() or ".." in path.parts:
        return False
    if name == EXTRA_MCP:
        return True
    if len(path.parts) < 2 or path.parts[0] != "data":
        return False
    return not refused(path.relative_to("data"))


def check_manifest(manifest: Any, *, refused: Refused = _nothing) -> dict[str, str]:
    """The manifest's `files` ({name: sha256}) once its whole shape is checked; raises
    MalformedManifest otherwise. `format` is checked by the caller (its own message)."""
    if not isinstance(manifest, dict):
        raise MalformedManifest("not an object")
    schema = manifest.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 0:
        raise MalformedManifest("schema")
    if not isinstance(manifest.get("created_at", ""), str):
        raise MalformedManifest("created_at")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise MalformedManifest("files")
    for name, digest in files.items():
        if not (isinstance(name, str) and safe_name(name, refused=refused)):
            raise MalformedManifest(f"file name {name!r}")
        if not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise MalformedManifest(f"checksum of {name!r}")
    return files


def _check_member(member: tarfile.TarInfo) -> None:
    if not member.isreg():
        raise UnsafeMember(f"{member.name} is not a regular file")
    if not safe_name(member.name):
        raise UnsafeMember(f"{member.name} is not a name a backup uses")


def _neutered(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """What the data filter does to a regular file: owner read/write, no setuid/setgid/sticky,
    no group/other write, and the extracting user as owner."""
    member.mode = (member.mode | 0o600) & 0o755
    member.uid, member.gid, member.uname, member.gname = os.getuid(), os.getgid(), "", ""
    return member


def extract_checked(tar: tarfile.TarFile, staging: Path, members: list[tarfile.TarInfo]) -> None:
    """Extract `members` (each checked first) under `staging`; raises UnsafeMember."""
    for member in members:
        _check_member(member)
    if hasattr(tarfile, "data_filter"):  # 3.11.4+: the filter checks again, belt and braces
        tar.extractall(staging, members=members, filter="data")
        return
    tar.extractall(staging, members=[_neutered(m) for m in members])  # checked above
