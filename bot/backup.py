"""`steward backup FILE` and `steward restore FILE`: the data directory in one archive.

A backup is a gzipped tar made while Steward runs:

- `data/steward.db`: a consistent snapshot through SQLite's online backup API (memory/backup.py);
- every other file of the data directory as it is (`audit.key`, `policy.toml`, `mcp.json`, the
  workspace, …), except what is rebuilt or belongs to the running process: the live database
  files (`steward.db-wal`, `-shm`), the Chroma directory (memory vectors are rebuilt from SQLite
  when Steward next starts), the lock and the log;
- the MCP config (`STEWARD_MCP_CONFIG`) when it lives outside the data directory, as
  `extra/mcp.json`;
- `manifest.json`: format, Steward version, schema version, and the sha256 of every file.

The archive holds the audit key, so it is written with mode 0600.

`restore` checks every hash first, refuses a backup from a newer schema, and refuses while a
Steward runs on the data directory (it takes the same lock as `steward run`, and holds it while
it works). A data directory that already holds a database is replaced only with `--force`, and
its old content is moved aside (`<data dir>.before-restore-<time>`), never deleted. The next
`steward run` migrates an older schema and re-embeds the memory vectors.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from agent.config import Settings
from agent.paths import LOCK_FILE, LOG_FILE, DataDirLock
from memory.audit_head import HEAD_FILE, log_end, reset_head
from memory.backup import NoDatabase, latest_schema, snapshot_database

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


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why, in one line."""


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


class _Hashing(io.RawIOBase):
    """Reads through a file and hashes what was read (tarfile reads exactly the member size)."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.digest.update(data)
        return data


def _skipped(relative: PurePosixPath) -> bool:
    top = relative.parts[0]
    return top in _SKIP_NAMES or top.startswith((LOG_FILE, _STAGING))


def _add_file(tar: tarfile.TarFile, path: Path, name: str, hashes: dict[str, str]) -> None:
    with path.open("rb") as handle:
        info = tar.gettarinfo(fileobj=handle, arcname=name)
        reader = _Hashing(handle)
        tar.addfile(info, reader)  # type: ignore[arg-type]
    hashes[name] = reader.digest.hexdigest()


def create_backup(settings: Settings, target: Path) -> BackupReport:
    """Write the archive to `target` (atomically: a partial file never has the final name)."""
    data = settings.data_dir.absolute()
    target = target.absolute()
    if target == data or data in target.parents:
        raise BackupError(f"write the backup outside the data directory {data}")
    if not target.parent.is_dir():
        raise BackupError(f"cannot write {target}: no directory {target.parent}")
    if target.is_dir():
        raise BackupError(
            f"{target} is a directory: name the archive, e.g. {target / 'steward.tar.gz'}"
        )
    hashes: dict[str, str] = {}
    skipped: list[str] = []
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    os.fchmod(fd, 0o600)
    try:
        with tempfile.TemporaryDirectory(prefix="steward-backup-") as scratch:
            snapshot = Path(scratch) / DB_NAME
            try:
                schema = snapshot_database(settings.database_path, snapshot)
            except NoDatabase as exc:
                raise BackupError(str(exc)) from None
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                _add_file(tar, snapshot, f"data/{DB_NAME}", hashes)
                for path in sorted(data.rglob("*")):
                    relative = PurePosixPath(path.relative_to(data).as_posix())
                    if relative == PurePosixPath(DB_NAME) or _skipped(relative):
                        continue
                    name = f"data/{relative}"
                    if path.is_symlink() or not path.is_file():
                        if path.is_dir() and not path.is_symlink():
                            continue
                        skipped.append(str(relative))  # links and special files stay out
                        continue
                    try:
                        _add_file(tar, path, name, hashes)
                    except OSError as exc:  # vanished or changed under us
                        skipped.append(f"{relative} ({exc.strerror or exc})")
                mcp = mcp_config_path(settings).absolute()
                if mcp.is_file() and data not in mcp.parents:
                    _add_file(tar, mcp, "extra/mcp.json", hashes)
                manifest = {
                    "format": FORMAT,
                    "steward": _version(),
                    "schema": schema,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "data_dir": str(data),
                    "vectors": "not included: rebuilt from SQLite when Steward next starts",
                    "files": hashes,
                }
                body = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode = len(body), 0o600
                info.mtime = int(datetime.now(UTC).timestamp())
                tar.addfile(info, io.BytesIO(body))
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return BackupReport(target, schema, len(hashes), target.stat().st_size, skipped)


def _read_manifest(tar: tarfile.TarFile, archive: Path) -> dict[str, Any]:
    try:
        member = tar.getmember(MANIFEST)
        handle = tar.extractfile(member)
        assert handle is not None
        manifest = json.loads(handle.read())
    except (KeyError, AssertionError, ValueError):
        raise BackupError(f"{archive} is not a Steward backup (no manifest)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: unknown backup format {manifest.get('format')!r}")
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(archive: Path, staging: Path) -> dict[str, Any]:
    """Extract and check every file into `staging`; returns the manifest."""
    try:
        tar = tarfile.open(archive, "r:gz")  # noqa: SIM115
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from None
    try:
        return _unpack_open(tar, archive, staging)
    except (EOFError, zlib.error, tarfile.ReadError) as exc:  # the archive ends too soon
        raise BackupError(f"{archive} is damaged (cut short?): {exc}") from None


def _unpack_open(tar: tarfile.TarFile, archive: Path, staging: Path) -> dict[str, Any]:
    with tar:
        manifest = _read_manifest(tar, archive)
        files: dict[str, str] = manifest.get("files") or {}
        if f"data/{DB_NAME}" not in files:
            raise BackupError(f"{archive} holds no database")
        newest = latest_schema()
        if int(manifest.get("schema", 0)) > newest:
            raise BackupError(
                f"{archive} was made by a newer Steward (schema {manifest['schema']}, this one "
                f"knows up to {newest}): upgrade Steward first"
            )
        members = [m for m in tar.getmembers() if m.name in files]
        try:
            tar.extractall(staging, members=members, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"cannot unpack {archive}: {exc}") from None
    for name, expected in files.items():
        path = staging / name
        if not path.is_file() or _sha256(path) != expected:
            raise BackupError(f"{archive} is damaged: {name} does not match its checksum")
    return manifest


def restore_backup(settings: Settings, archive: Path, *, force: bool = False) -> RestoreReport:
    """Put the backup's files in the data directory (see the module docstring)."""
    data = settings.data_dir.absolute()
    if not archive.is_file():
        raise BackupError(f"no backup at {archive}")
    if not tarfile.is_tarfile(archive):  # before anything is made (an empty data directory)
        raise BackupError(f"{archive} is not a Steward backup (not a tar archive)")
    data.mkdir(parents=True, exist_ok=True)
    with DataDirLock(data, "restore"):  # DataDirBusy while `steward run` holds it
        existing = [
            p for p in data.iterdir() if p.name != LOCK_FILE and not p.name.startswith(_STAGING)
        ]
        if (data / DB_NAME).exists() and not force:
            raise BackupError(
                f"{data} already holds a Steward database; `steward restore --force` replaces "
                "it (moving the current data aside first)"
            )
        staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=data))
        try:
            manifest = _unpack(archive, staging)
            aside: Path | None = None
            before = log_end(data / DB_NAME)
            if existing:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
                aside = data.parent / f"{data.name}.before-restore-{stamp}"
                try:
                    aside.mkdir(mode=0o700)
                except OSError as exc:
                    raise BackupError(f"cannot move the current data aside: {exc}") from None
                for path in existing:
                    shutil.move(path, aside / path.name)
            restored = staging / "data"
            for path in restored.iterdir():
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
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return RestoreReport(
        data_dir=data,
        schema=int(manifest["schema"]),
        files=len(manifest["files"]),
        moved_aside=aside,
        created_at=str(manifest.get("created_at", "?")),
    )
