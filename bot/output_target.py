"""Where a command may write a file it makes (a backup, an audit or memory export).

R141: `steward backup ~/steward/.env` replaced the settings with an archive, and an export's
`-o` into the data directory replaced the database or the audit key, each with exit 0. A file a
command writes is never the settings file, nor inside the data directory, nor written through a
link; a backup replaces only an older backup (a daily `latest.tar.gz`), never another file.
R196: an export's `-o` replaced a backup archive with JSON lines; it now replaces only an
earlier export of the same kind (`export_kind`), as people re-export to one name.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Literal

__all__ = ["ExportKind", "export_kind", "file_export_kind", "is_backup", "output_problem"]

ExportKind = Literal["audit", "memory"]

_KEYS: dict[ExportKind, frozenset[str]] = {
    "audit": frozenset({"id", "at", "kind", "actor", "detail", "prev_hash", "hash"}),
    "memory": frozenset({"id", "user_id", "text", "source", "created_at", "user"}),
}
"""The fields every line of `steward audit export` and of `steward memory export` has."""

_FIRST_LINE_MAX = 1 << 20
"""Bytes read for an existing file's first line: a memory's text is far shorter."""


def output_problem(target: Path, *, data_dir: Path, env_file: Path | None) -> str | None:
    """Why a command may not write `target` (None: it may), in one line. A terminal or a pipe
    (`-o /dev/stdout`) may be written; a file with another name (a hard link: R149, to `.env`
    it passed every other check) may not."""
    try:
        found = os.stat(target)
    except OSError:
        found = None
    if found is not None and (stat.S_ISCHR(found.st_mode) or stat.S_ISFIFO(found.st_mode)):
        return None
    if found is not None and stat.S_ISREG(found.st_mode) and found.st_nlink > 1:
        return f"{target} has other names (hard links): name a new file"
    if target.is_symlink():
        return f"{target} is a symbolic link: name the file itself"
    real = target.resolve()
    if env_file is not None and real == env_file.resolve():
        return f"{target} is Steward's settings file (.env): name another file"
    data = data_dir.resolve()
    if real == data or data in real.parents:
        return f"write it outside the data directory {data_dir}"
    return None


def is_backup(path: Path) -> bool:
    """Whether `path` is an archive `steward backup` wrote (it holds its manifest)."""
    import tarfile  # by a backup alone, not by every start

    try:
        with tarfile.open(path) as archive:
            return any(member.name == "manifest.json" for member in archive)
    except (OSError, tarfile.TarError, EOFError, ValueError):
        return False


def export_kind(line: str) -> ExportKind | None:
    """Which export a JSON line is a record of ("audit", "memory"), or None: neither."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    return next((kind for kind, keys in _KEYS.items() if keys <= record.keys()), None)


def file_export_kind(path: Path) -> ExportKind | Literal["empty"] | None:
    """What an existing regular file is, judged by its first line: an earlier export of a kind,
    "empty" (nothing to lose), or None (anything else: a backup, notes, another tool's file)."""
    try:
        with open(path, "rb") as file:
            first = file.readline(_FIRST_LINE_MAX)
    except OSError:
        return None
    if not first:
        return "empty"
    try:
        return export_kind(first.decode("utf-8"))
    except UnicodeDecodeError:  # a tar.gz, a picture
        return None
