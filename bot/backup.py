"""`steward backup FILE` and `steward restore FILE`: the data directory in one archive.

A backup is a gzipped tar made while Steward runs:

- `data/steward.db`: a consistent snapshot through SQLite's online backup API (memory/backup.py);
- every other file of the data directory as it is (`audit.key`, `policy.toml`, `mcp.json`, the
  workspace, …), except what is rebuilt or belongs to the running process: the live database
  files (`steward.db-wal`, `-shm`), the Chroma directory (memory vectors are rebuilt from SQLite
  when Steward next starts), the lock, the log and the folders earlier restores moved aside;
- the MCP config (`STEWARD_MCP_CONFIG`) when it lives outside the data directory, as
  `extra/mcp.json`;
- `manifest.json`: format, Steward version, schema version, and the sha256 of every file.

What a backup leaves out is listed, one line each: a file that cannot be read, a link, a folder
nested deeper than a restore could make (or a path longer), named once by its top folder, and
a large sparse file, whose holes a restore would write out as zeros (R253).

Each file is copied to a staging folder beside the archive before it is archived, so a file
rewritten meanwhile (a workspace log) cannot leave a member shorter than its header says; the
finished archive is read back whole before it gets its name. It holds the audit key, so it is
written with mode 0600.

`restore` checks the manifest's shape and every hash first, then the database itself (an
SQLite file that checks, with Steward's tables, of a schema no newer than this code's: the
manifest's word is not taken), and refuses while a Steward runs on the data directory (it takes
the same lock as `steward run`, and holds it while it works); a refusal moves nothing. A data
directory that already holds a database is replaced only with `--force`, and its old content
is moved aside, never deleted: to `<data dir>.before-restore-<time>`, or to
`<data dir>/.before-restore-<time>` when the data directory is a mount point (a container's
volume) or its parent is not writable; an error after that says where it went. The next
`steward run` migrates an older schema and re-embeds the memory vectors.

A backup whose owner (as the last start recorded STEWARD_OWNER in it) has no identity in this
STEWARD_OWNER is refused unless `other_owner` says so (R207: the next start gave that owner's
memories and goals to this one, and cancelled their reminders, without a word). An archive
damaged in storage is refused as damaged, named, whatever gzip or tar says of it (R207).

(Over 400 lines: making and restoring are the two sides of one format, kept together so they
cannot drift apart; what a restore accepts of an archive's members is in backup_checks.py.)
"""

from __future__ import annotations

import errno
import fcntl
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO

from agent.config import Settings
from agent.paths import LOCK_FILE, LOG_FILE, DataDirLock
from agent.tree_digest import MAX_DEPTH
from bot.backup_checks import (
    MalformedManifest,
    UnsafeMember,
    check_manifest,
    extract_checked,
    safe_name,
)
from bot.errors import BackupError
from bot.output_target import is_backup
from bot.owner import CONSOLE_IDENTITY, OWNER_STATE
from memory.audit_head import HEAD_FILE, log_end, reset_head
from memory.backup import (
    NoDatabase,
    UnreadableDatabase,
    archived_database,
    archived_state,
    latest_schema,
    owe_withdrawal,
    snapshot_database,
)

__all__ = [
    "BackupError",
    "BackupReport",
    "RestoreReport",
    "create_backup",
    "mcp_config_path",
    "restore_backup",
]

FORMAT = 1
MANIFEST = "manifest.json"
DB_NAME = "steward.db"
_SKIP_NAMES = {
    f"{DB_NAME}-wal",
    f"{DB_NAME}-shm",
    f"{DB_NAME}-journal",
    LOCK_FILE,
    "chroma",
    HEAD_FILE,  # written again from the restored database (memory/audit_head.py)
}
_STAGING = ".restore-"  # inside the data directory: one filesystem, even on a volume
_ASIDE = ".before-restore-"  # old data kept inside the data directory (see _aside_dir)
_NEEDED = {"data/audit.key", "data/policy.toml", "data/mcp.json", "extra/mcp.json"}
"""Files a restored Steward cannot do without as it was (the audit log's key, the owner's
rules, the MCP servers): unreadable, the backup fails; any other file is listed as left out."""
_BLOCK = 1 << 20
_LEFT_OVER_AFTER = 600.0
"""Seconds a backup's staging folder that was never locked (still empty, or on a file system
that locks no folders) stays untouched before a later backup takes it for left over: a live
backup writes in its folder every few seconds."""
_MANIFEST_MAX = 64 << 20


@dataclass
class BackupReport:
    path: Path
    schema: int
    files: int
    size: int
    skipped: list[str] = field(default_factory=list)


@dataclass
class RestoreReport:
    data_dir: Path
    schema: int
    files: int
    moved_aside: Path | None
    created_at: str


def mcp_config_path(settings: Settings) -> Path:
    """Where the MCP server config is: STEWARD_MCP_CONFIG, else `<data dir>/mcp.json`."""
    configured = getattr(settings, "mcp_config_path", None)  # the MCP settings' own rule
    return configured if isinstance(configured, Path) else settings.data_dir / "mcp.json"


def _version() -> str:
    try:
        return metadata.version("steward")
    except metadata.PackageNotFoundError:
        return "unknown"


def _skipped(relative: PurePosixPath) -> bool:
    top = relative.parts[0]
    if top == "mcp" and relative.name.startswith("stderr.log"):
        return True  # a server's own log, as Steward's is not kept (R143)
    return top in _SKIP_NAMES or top.startswith((LOG_FILE, _STAGING, _ASIDE))


def _inside(path: Path, data: Path) -> bool:
    """`path` is the data directory or under it, even through a symbolic link."""
    for a, b in ((path, data), (path.resolve(), data.resolve())):
        if a == b or b in a.parents:
            return True
    return False


def _check_target(target: Path, data: Path) -> None:
    # os.replace would put the archive in the link's place; writing through the link could
    # overwrite the older backup it names. Neither is what was asked: say so.
    if target.is_symlink():
        raise BackupError(
            f"{target} is a symbolic link (to {os.readlink(target)}): a backup never writes "
            "through a link; name the archive file itself"
        )
    if _inside(target, data):
        raise BackupError(f"write the backup outside the data directory {data}")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: no directory {target.parent}")
    if target.is_dir():
        raise BackupError(
            f"{target} is a directory: name the archive, e.g. {target / 'steward.tar.gz'}"
        )
    if target.exists() and not target.is_file():  # a FIFO is read to see if it is a backup:
        raise BackupError(  # it waited for a writer for ever (R155)
            f"{target} is not a regular file: name a new file, or an older backup to replace"
        )
    if target.exists() and not is_backup(target):  # R141: a typo replaced .env, a note
        raise BackupError(
            f"{target} exists and is not a Steward backup: name a new file (an older backup "
            "is replaced; nothing else is)"
        )


class _Unreadable(Exception):
    """A data file left out: it could not be read (vanished, no permission, not a regular
    file), or it is sparse (see `_SPARSE_FROM`)."""


_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


def _open_source(path: Path, data: Path) -> BinaryIO:
    """Open a data file to read: never through a link, never blocking on a FIFO swapped in. A
    file under the data directory is opened folder by folder through descriptors, so a path
    past PATH_MAX opens too (R253)."""
    parts = path.relative_to(data).parts if path.is_relative_to(data) else ()
    try:
        fd = _open_below(data, parts) if parts else os.open(path, _FILE)
    except OSError as exc:
        raise _Unreadable(exc.strerror or str(exc)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _Unreadable("not a regular file")
    return os.fdopen(fd, "rb")


def _open_below(data: Path, parts: tuple[str, ...]) -> int:
    fd = os.open(data, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            child = os.open(part, _FOLDER, dir_fd=fd)
            os.close(fd)
            fd = child
        return os.open(parts[-1], _FILE, dir_fd=fd)
    finally:
        os.close(fd)


_SPARSE_FROM = 64 << 20
"""A file of this apparent size or more whose holes are over half of it (`_SPARSE_SHARE`) is
not included: tarfile writes no sparse members, so its holes would be archived as zeros and a
restore would write them all to disk (R253: `truncate -s 4G` in the sandbox, 0 bytes on disk,
took minutes to archive and 4 GiB of real disk to restore, each)."""
_SPARSE_SHARE = 0.5


def _sparse(fd: int, status: os.stat_result) -> str | None:
    """Why the file open as `fd` is left out as sparse, or None. Few blocks allocated is only
    a hint (a compressing file system allocates few too): the holes are counted with
    SEEK_DATA/SEEK_HOLE, and a file system that cannot say has its file archived."""
    size, allocated = status.st_size, status.st_blocks * 512
    if size < _SPARSE_FROM or allocated >= size * _SPARSE_SHARE:
        return None
    data = offset = 0
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: only a hole from here to the end
                    raise
                break
            offset = os.lseek(fd, start, os.SEEK_HOLE)
            data += offset - start
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        return None
    if data >= size * _SPARSE_SHARE:
        return None
    return f"sparse: {_amount(size)} apparent, {_amount(allocated)} on disk"


def _amount(size: int) -> str:
    return f"{size / (1 << 30):,.1f} GiB" if size >= 1 << 30 else f"{size / (1 << 20):,.0f} MiB"


def _stage(path: Path, data: Path, copy: Path, name: str) -> tuple[tarfile.TarInfo, str]:
    """Copy `path` to `copy`, hashing what was read; returns the member for the copy and its
    sha256. A file being rewritten (a log cut short, then grown) gives the bytes read: the
    archive gets the copy, whose size nobody changes, so tarfile never meets a short read
    after it has written the member's header (that made archives no restore could read)."""
    digest = hashlib.sha256()
    with _open_source(path, data) as source:
        status = os.fstat(source.fileno())
        if sparse := _sparse(source.fileno(), status):
            raise _Unreadable(sparse)
        info = _member(name, status)
        with copy.open("wb") as sink:
            while True:
                try:
                    block = source.read(_BLOCK)
                except OSError as exc:  # a read error is the source's; a write error is ours
                    raise _Unreadable(exc.strerror or str(exc)) from None
                if not block:
                    break
                digest.update(block)
                sink.write(block)
            info.size = sink.tell()
    return info, digest.hexdigest()


def _member(name: str, status: os.stat_result) -> tarfile.TarInfo:
    """A regular-file member with the source's mode and time (never a hard link: each file is
    whole in the archive, so its checksum always matches what a restore extracts)."""
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(status.st_mode)
    info.mtime = int(status.st_mtime)
    info.uid, info.gid = status.st_uid, status.st_gid
    return info


def _add(tar: tarfile.TarFile, info: tarfile.TarInfo, copy: Path) -> None:
    with copy.open("rb") as handle:
        tar.addfile(info, handle)


_LONGEST = 3072
"""The longest member name (`data/…`, in bytes) a backup holds: a restore makes each file under
`<data dir>/.restore-XXXXXXXX/`, where no path past PATH_MAX (4096) can be made, so a longer
one would fail the whole restore; 1 KiB is left for the data directory's own path."""


def _data_files(data: Path, skipped: list[str]) -> Iterator[tuple[Path, str]]:
    """The data directory's files to archive, as (path, member name); links and special
    files go to `skipped` (a link could point anywhere). Walked one folder at a time through
    descriptors, as agent/tree_digest.py does, so neither depth nor a path past PATH_MAX fails
    the backup (R253: 1,200 nested folders made every backup a RecursionError): what lies
    deeper than MAX_DEPTH folders, or has a name longer than `_LONGEST`, is not included,
    named once by its top folder."""
    try:
        top = os.open(data, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise BackupError(f"cannot read the data directory {data}: {exc.strerror}") from None
    stack: list[tuple[int, str, list[str]]] = [(top, "", [])]  # a folder, the ones under it
    try:
        yield from _listed(stack[-1], data, skipped)
        while stack:
            fd, folder, pending = stack[-1]
            if not pending:
                os.close(fd)
                stack.pop()
                continue
            name = pending.pop()
            below = f"{folder}/{name}" if folder else name
            if len(stack) > MAX_DEPTH:
                _cut(skipped, below, f"folders nested more than {MAX_DEPTH} deep")
                continue
            if len(os.fsencode(f"data/{below}/x")) > _LONGEST:
                _cut(skipped, below, f"paths longer than {_LONGEST:,} bytes")
                continue
            try:
                child = os.open(name, _FOLDER, dir_fd=fd)
            except OSError as exc:
                skipped.append(f"{below}/ ({exc.strerror})")
                continue
            stack.append((child, below, []))
            yield from _listed(stack[-1], data, skipped)
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _cut(skipped: list[str], below: str, why: str) -> None:
    """List a part of the tree left out, once for its top folder (in the workspace's own
    folders for the workspace): one short line, not every path in it."""
    parts = below.split("/")
    top = "/".join(parts[:2] if parts[0] == "workspace" else parts[:1])
    line = f"{top}/ ({why}: what lies past that is not included)"
    if line not in skipped:
        skipped.append(line)


def _listed(
    level: tuple[int, str, list[str]], data: Path, skipped: list[str]
) -> list[tuple[Path, str]]:
    """The files to archive in the folder open as `level`'s descriptor; its folders to walk
    go to `level`'s list, last first."""
    fd, folder, folders = level
    try:
        names = sorted(os.listdir(fd))
    except OSError as exc:
        skipped.append(f"{folder or '.'}/ ({exc.strerror})")
        return []
    files = []
    for name in names:
        relative = PurePosixPath(folder, name)
        member = f"data/{relative}"
        if _skipped(relative):
            continue
        try:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
        except OSError:
            mode = 0  # gone since it was listed: as a special file
        if stat.S_ISDIR(mode):
            folders.append(name)
        elif relative == PurePosixPath(DB_NAME):
            continue
        elif not stat.S_ISREG(mode):
            path = data / relative
            if member not in _NEEDED:
                skipped.append(str(relative))
            elif path.is_file():  # a link to it (a dotfiles repo): what it holds (R149)
                files.append((path.resolve(), member))
            else:
                raise BackupError(
                    f"{path} is not a file a backup can read: a backup without it would "
                    "not restore whole; nothing was written"
                )
        elif not safe_name(member):  # one odd name costs that file, not the archive
            skipped.append(f"{relative} (a name a restore would refuse)")
        elif len(os.fsencode(member)) > _LONGEST:
            _cut(skipped, str(relative), f"paths longer than {_LONGEST:,} bytes")
        else:
            files.append((data / relative, member))
    folders.reverse()
    return files


def _manifest(data: Path, schema: int, hashes: dict[str, str], taken: datetime) -> dict[str, Any]:
    """`taken`: when the database was copied, to the second below (R175: the end of writing
    the archive, a 40 MB workspace later, left a reminder sent meanwhile out of the restore's
    window, and it came again unmarked)."""
    return {
        "format": FORMAT,
        "steward": _version(),
        "schema": schema,
        "created_at": taken.replace(microsecond=0).isoformat(timespec="seconds"),
        "data_dir": str(data),
        "vectors": "not included: rebuilt from SQLite when Steward next starts",
        "files": hashes,
    }


def _add_manifest(tar: tarfile.TarFile, manifest: dict[str, Any]) -> None:
    body = json.dumps(manifest, indent=2).encode()
    info = tarfile.TarInfo(MANIFEST)
    info.size, info.mode = len(body), 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(body))


def _write_archive(
    settings: Settings, data: Path, partial: Path, scratch: Path, skipped: list[str]
) -> tuple[int, dict[str, str]]:
    """Write the archive to `partial`; returns the schema and the files' hashes."""
    snapshot = scratch / DB_NAME
    taken = datetime.now(UTC)
    try:
        schema = snapshot_database(settings.database_path, snapshot)
    except NoDatabase as exc:
        raise BackupError(str(exc)) from None
    hashes: dict[str, str] = {}
    copy = scratch / "file"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds audit.key
    with os.fdopen(fd, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w:gz") as tar:
            info = _member(f"data/{DB_NAME}", snapshot.stat())  # ours: nothing changes it
            info.size, hashes[info.name] = snapshot.stat().st_size, _sha256(snapshot)
            _add(tar, info, snapshot)
            sources = list(_data_files(data, skipped))
            mcp = mcp_config_path(settings).absolute()
            if mcp.is_file() and not _inside(mcp, data):
                sources.append((mcp, "extra/mcp.json"))
            for path, name in sources:
                try:
                    info, digest = _stage(path, data, copy, name)
                except _Unreadable as exc:  # vanished, unreadable: nothing was written yet
                    if name in _NEEDED:  # R141: "written", exit 0, and it never restored
                        raise BackupError(
                            f"{path} could not be read ({exc}): a backup without it would not "
                            "restore whole; nothing was written"
                        ) from None
                    skipped.append(f"{name.removeprefix('data/')} ({exc})")
                    continue
                _add(tar, info, copy)  # any error here is fatal: the archive is incomplete
                hashes[name] = digest
            _add_manifest(tar, _manifest(data, schema, hashes, taken))
        raw.flush()
        os.fsync(raw.fileno())
    return schema, hashes


def _verify(archive: Path, hashes: dict[str, str]) -> None:
    """Read the finished archive back, every member, as a restore will: a backup that says
    "written" restores."""
    found: dict[str, str] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                handle = tar.extractfile(member)
                if handle is None:
                    raise BackupError(f"the archive holds {member.name}, not a file")
                found[member.name] = _digest(handle)
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupError(f"the archive written does not read back ({exc})") from None
    manifest = found.pop(MANIFEST, None)
    if manifest is None or found != hashes:
        raise BackupError("the archive written does not match what was read")


def _lock_staging(folder: Path) -> int | None:
    """Hold a `flock` on this backup's staging folder until it is removed: the kernel drops it
    when the process dies, however it dies, which is how a later backup knows the folder is
    left over (`_clear_left_over`). None where the file system locks no folders."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while another backup looks at it
    except OSError:
        os.close(fd)
        return None
    return fd


def _last_touched(folder: Path) -> float:
    times = [folder.lstat().st_mtime]
    times += [entry.stat(follow_symlinks=False).st_mtime for entry in os.scandir(folder)]
    return max(times)


def _size(folder: Path) -> int:
    return sum(
        (Path(top) / name).lstat().st_size for top, _, names in os.walk(folder) for name in names
    )


def _clear_left_over(target: Path) -> list[str]:
    """Remove the staging folders that backups to `target`'s name, killed mid-way (SIGKILL,
    power loss: their clean-up never ran), left beside it, each with a copy of the database.
    A live backup holds its folder's lock and writes in it only once it does, so a folder
    whose lock is free is left over, unless it is empty and recent (a backup between making
    its folder and locking it). Where folders cannot be locked, age decides. Returns what
    was removed, for the user to hear."""
    name = re.compile(re.escape(f".{target.name}-") + r"[a-z0-9_]{8}")  # tempfile.mkdtemp's
    removed: list[str] = []
    try:
        with os.scandir(target.parent) as entries:
            found = [e for e in entries if name.fullmatch(e.name)]
    except OSError:
        return removed
    for entry in found:
        if not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                lockable = True
            except BlockingIOError:
                continue  # a backup running now
            except OSError:
                lockable = False
            recent = time.time() - _last_touched(folder) < _LEFT_OVER_AFTER
            if recent and (not lockable or not any(folder.iterdir())):
                continue
            size = _size(folder)
            shutil.rmtree(folder)  # with the lock held: no backup can take the folder up
            removed.append(f"{entry.name} ({size:,} bytes)")
        except OSError:
            continue  # gone meanwhile (another backup cleared it), or not ours to remove
        finally:
            os.close(fd)
    return removed


def create_backup(settings: Settings, target: Path) -> BackupReport:
    """Write the archive to `target`, atomically and verified: the snapshot and the partial
    archive are staged in a hidden directory beside `target` (the same filesystem, so the
    final rename is atomic and the space needed is where the archive goes, not in TMPDIR),
    read back whole, and only then renamed. A failure leaves no file; what a backup killed
    outright left there (SIGKILL skips any clean-up) is removed by the next one, said on stderr."""
    data = settings.data_dir.absolute()
    target = target.absolute()
    _check_target(target, data)
    skipped: list[str] = []
    if removed := _clear_left_over(target):
        print(
            f"removed what a backup cut short left beside {target.name}: {', '.join(removed)}",
            file=sys.stderr,
        )
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as exc:
        raise BackupError(f"cannot write in {target.parent}: {exc.strerror or exc}") from None
    lock = _lock_staging(scratch)  # before anything is written in it
    try:
        partial = scratch / target.name
        schema, hashes = _write_archive(settings, data, partial, scratch, skipped)
        try:
            _verify(partial, hashes)
        except BackupError as exc:
            raise BackupError(f"backup not written to {target}: {exc}") from None
        os.replace(partial, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise BackupError(
                f"no space left in {target.parent} for the backup (the database snapshot and "
                "the archive are both written there first); nothing was written"
            ) from None
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if lock is not None:
            os.close(lock)
    return BackupReport(target, schema, len(hashes), target.stat().st_size, skipped)


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    """The manifest, its shape checked (a crafted one is refused in one line)."""
    malformed = f"{archive} is not a Steward backup (its manifest is malformed)"
    try:
        member = tar.getmember(MANIFEST)
    except KeyError:
        raise BackupError(f"{archive} is not a Steward backup (no manifest)") from None
    handle = tar.extractfile(member) if member.isreg() and member.size <= _MANIFEST_MAX else None
    if handle is None:
        raise BackupError(malformed)
    try:
        manifest = json.loads(handle.read())
    except ValueError:  # not JSON, not UTF-8
        raise BackupError(malformed) from None
    if isinstance(manifest, dict) and manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: unknown backup format {manifest.get('format')!r}")
    try:
        check_manifest(manifest, refused=_skipped)
    except MalformedManifest:
        raise BackupError(malformed) from None
    return manifest


def _digest(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(_BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return _digest(handle)


_DAMAGE = (gzip.BadGzipFile, zlib.error, EOFError, tarfile.ReadError)
"""What reading a stored archive raises when its bytes changed or are missing: a CRC or length
that does not match, a deflate stream or a tar header that does not read, an end too soon."""


def _damaged(archive: Path, exc: BaseException) -> BackupError:
    """R207: gzip's own words ("CRC check failed 0x… != 0x…") named neither the file nor what
    was wrong with it, nor that nothing was changed."""
    why = "it ends too soon: cut short?" if isinstance(exc, EOFError) else _one_line(exc)
    return BackupError(
        f"{archive} is damaged ({why}); nothing was changed: restore another copy of it, or an "
        "older backup"
    )


def _stream_damage(archive: Path) -> BaseException | None:
    """What is wrong with `archive`'s gzip stream read to its end, if it is a gzip file at all:
    tar stops at the first header it cannot read, before gzip checks the CRC, so a damaged
    archive looked like no tar archive, or one without a manifest (R207)."""
    try:
        with archive.open("rb") as raw:
            if raw.read(2) != b"\x1f\x8b":
                return None
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw) as stream:
                while stream.read(_BLOCK):
                    pass
    except (OSError, EOFError, zlib.error) as exc:
        return exc
    return None


def _unpack(archive: Path, staging: Path) -> dict[str, Any]:
    """Extract and check every file into `staging`; returns the manifest."""
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        if damage := _stream_damage(archive):
            raise _damaged(archive, damage) from None
        raise BackupError(f"cannot read {archive}: {exc}") from None
    try:
        return _unpack_open(tar, archive, staging)
    except _DAMAGE as exc:  # read while the manifest is looked for, or a file extracted
        raise _damaged(archive, exc) from None
    except BackupError:
        if damage := _stream_damage(archive):  # "no manifest": tar stopped at a bad header
            raise _damaged(archive, damage) from None
        raise


def _unpack_open(tar: tarfile.TarFile, archive: Path, staging: Path) -> dict[str, Any]:
    with tar:
        manifest = _read_manifest(tar, archive)
        files: dict[str, str] = manifest["files"]
        if f"data/{DB_NAME}" not in files:
            raise BackupError(f"{archive} holds no database")
        newest = latest_schema()
        if manifest["schema"] > newest:
            raise BackupError(
                f"{archive} was made by a newer Steward (schema {manifest['schema']}, this one "
                f"knows up to {newest}): upgrade Steward first"
            )
        members = [m for m in tar.getmembers() if m.name in files]
        try:
            extract_checked(tar, staging, members)
        except UnsafeMember as exc:
            raise BackupError(f"{archive} is not a Steward backup ({exc})") from None
        except _DAMAGE:  # BadGzipFile is an OSError too: said as damage by _unpack
            raise
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"cannot unpack {archive}: {exc}") from None
    for name, expected in files.items():
        path = staging / name
        if not path.is_file() or _sha256(path) != expected:
            raise BackupError(f"{archive} is damaged: {name} does not match its checksum")
    return manifest


def _check_database(database: Path, archive: Path) -> int:
    """Refuse the archive unless its database is one this Steward can take: an SQLite file
    that checks, holding Steward's tables, of a schema no newer than this code's (what the
    file says, not the manifest). Before anything is moved: a refused restore leaves the data
    directory as it was. Returns its schema version."""
    newest = latest_schema()
    refused = f"{archive} is not restored, nothing was changed:"
    try:
        found = archived_database(database)
    except UnreadableDatabase as exc:  # not SQLite at all, or a page SQLite cannot read
        raise BackupError(
            f"{refused} its {DB_NAME} is not a database SQLite can read ({exc})"
        ) from None
    if found.problem != "ok":
        raise BackupError(f"{refused} its database is damaged ({found.problem})")
    missing = sorted({"schema_version", "audit_events"} - found.tables)
    if missing:
        raise BackupError(
            f"{refused} its {DB_NAME} is not a Steward database (no table {', '.join(missing)})"
        )
    schema = found.schema
    if schema > newest:
        raise BackupError(
            f"{refused} its database has schema {schema}, and this Steward knows up to "
            f"{newest}: made by a newer Steward? Upgrade Steward first"
        )
    return schema


def _recorded_owner(database: Path) -> list[str]:
    """The owner's identities as the last start before the backup recorded STEWARD_OWNER in it
    (`bot.commands.access.apply_owner_settings`); none from a Steward that recorded none."""
    try:
        recorded = json.loads(archived_state(database, OWNER_STATE) or "[]")
    except (UnreadableDatabase, ValueError):
        return []
    return [str(i) for i in recorded] if isinstance(recorded, list) else []


def _check_owner(database: Path, archive: Path, settings: Settings) -> None:
    """R207: refuse a backup of another owner before anything is moved. The next start takes
    a recorded identity STEWARD_OWNER no longer lists for an edit of the settings: it gives
    the person's memories, goals and history to the identities listed now, unlinks the old
    one and cancels its reminders. The console identity is every Steward's, so it tells
    nothing about whose the backup is."""
    console = str(CONSOLE_IDENTITY)
    theirs = [i for i in _recorded_owner(database) if i != console]
    ours = [str(i) for i in settings.owner]
    if not theirs or set(theirs) & set(ours):
        return
    listed = ", ".join(ours) if ours else "not set"
    both = ",".join([*theirs, *ours])
    raise BackupError(
        f"{archive} is not restored, nothing was changed: this backup belongs to "
        f"{', '.join(theirs)}, and STEWARD_OWNER is {listed}. If both are you, list both "
        f"(STEWARD_OWNER={both}) and restore again; to give its memories and goals to "
        f"STEWARD_OWNER anyway (its reminders are then cancelled), add --other-owner"
    )


def _aside_dir(data: Path) -> Path:
    """A new folder for the data a restore replaces: `<data dir>.before-restore-<time>` beside
    it when that is a folder of the same filesystem we may write, else
    `<data dir>/.before-restore-<time>`. A container's data directory is a volume mounted on
    `/data`: its parent is the image's root, not writable by the container's user, and not
    kept when the container is removed; inside the volume the move is a rename, and the old
    data stays with the data (backups leave these folders out)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    beside = data.parent / f"{data.name}.before-restore-{stamp}"
    inside = data / f"{_ASIDE}{stamp}"
    candidates = [inside] if os.path.ismount(data) else [beside, inside]
    problem: OSError | None = None
    for aside in candidates:
        try:
            aside.mkdir(mode=0o700)
            return aside
        except (PermissionError, FileExistsError) as exc:
            problem = exc
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise BackupError(f"cannot move the current data aside: {exc}") from None
            problem = exc
    raise BackupError(f"cannot move the current data aside: {problem}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _put_back(
    settings: Settings,
    staging: Path,
    existing: list[Path],
    aside: Path | None,
    manifest: dict[str, Any],
    before: int | None,
) -> None:
    """Move `existing` to `aside`, then the staged files into the data directory."""
    data = settings.data_dir.absolute()
    if aside is not None:
        for path in existing:
            shutil.move(path, aside / path.name)
    for path in (staging / "data").iterdir():
        path.rename(data / path.name)
    reset_head(
        data / DB_NAME,
        archive_created_at=manifest.get("created_at", "?"),
        log_ended_at=before,
        moved_aside=str(aside) if aside else None,
    )
    extra = staging / "extra" / "mcp.json"
    if extra.is_file():
        target = mcp_config_path(settings)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.replace(target.with_name(target.name + ".before-restore"))
        shutil.copy2(extra, target)


def restore_backup(
    settings: Settings, archive: Path, *, force: bool = False, other_owner: bool = False
) -> RestoreReport:
    """Put the backup's files in the data directory (see the module docstring). `force`
    replaces data already there; `other_owner` takes over a backup whose owner is not in
    STEWARD_OWNER (two meanings, two flags: restoring over data always needs the first)."""
    data = settings.data_dir.absolute()
    if not archive.is_file():
        raise BackupError(f"no backup at {archive}")
    try:
        is_tar = tarfile.is_tarfile(archive)  # before anything is made (an empty data directory)
    except (EOFError, zlib.error) as exc:  # a gzip stream cut short (R116: a traceback's words)
        raise _damaged(archive, exc) from None
    if not is_tar:
        if damage := _stream_damage(archive):  # a gzip file whose first tar header is hurt
            raise _damaged(archive, damage) from None
        raise BackupError(f"{archive} is not a Steward backup (not a tar archive)")
    data.mkdir(parents=True, exist_ok=True)
    with DataDirLock(data, "restore"):  # DataDirBusy while `steward run` holds it
        # a restore killed outright left its staging folder; the lock says none runs now
        for left in data.iterdir():
            if left.name.startswith(_STAGING) and left.is_dir() and not left.is_symlink():
                shutil.rmtree(left, ignore_errors=True)
        existing = [
            p
            for p in data.iterdir()
            if p.name != LOCK_FILE and not p.name.startswith((_STAGING, _ASIDE))
        ]
        if (data / DB_NAME).exists() and not force:
            raise BackupError(
                f"{data} already holds a Steward database; `steward restore --force` replaces "
                "it (moving the current data aside first)"
            )
        staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=data))
        try:
            manifest = _unpack(archive, staging)
            schema = _check_database(staging / "data" / DB_NAME, archive)
            if not other_owner:
                _check_owner(staging / "data" / DB_NAME, archive, settings)
            # what it holds pending was asked before it: marked before it is put in place, so
            # a restore killed at any point leaves no database without the mark (R147: killed
            # just after the move, an approval already run could be approved and run again)
            owe_withdrawal(staging / "data" / DB_NAME, str(manifest.get("created_at", "")))
            aside: Path | None = None
            before = log_end(data / DB_NAME)
            if existing:
                aside = _aside_dir(data)
            try:
                _put_back(settings, staging, existing, aside, manifest, before)
            except BaseException as exc:  # Ctrl-C, SIGTERM too: say where the data is
                if aside is None:
                    raise
                raise BackupError(
                    f"the restore into {data} failed after the data there was moved aside: "
                    f"{_one_line(exc)}; the previous data is in {aside}"
                ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return RestoreReport(
        data_dir=data,
        schema=schema,
        files=len(manifest["files"]),
        moved_aside=aside,
        created_at=str(manifest.get("created_at", "?")),
    )
