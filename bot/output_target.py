"""Where a command may write a file it makes (a backup, an audit or memory export).

R141: `steward backup ~/steward/.env` replaced the settings with an archive, and an export's
`-o` into the data directory replaced the database or the audit key, each with exit 0. A file a
command writes is never the settings file, nor inside the data directory, nor written through a
link; a backup replaces only an older backup (a daily `latest.tar.gz`), never another file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["is_backup", "output_problem"]


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
