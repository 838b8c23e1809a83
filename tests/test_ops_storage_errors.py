"""The data where it cannot be used as usual: a restore's archive holding a database that is
not one Steward can take, the data directory mounted read-only (an investigator's copy), a
database write-locked by another program, a full disk. Each is one line naming the database
and the cause, and never a changed data directory, a hang or a traceback. Mounts are real, in
a mount namespace of the test's own (`unshare`), as in test_backup_volume.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from harness import make_settings

from bot.admin import audit_verify
from bot.backup import BackupError, create_backup, restore_backup
from memory.backup import latest_schema
from memory.clock import SystemClock
from memory.errors import SchemaBehind
from memory.stores import Stores

ROOT = Path(__file__).resolve().parents[1]
STEWARD = [sys.executable, "-m", "bot.cli"]
UNSHARE = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
LOCKED = "in use by another program (database is locked)"


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"
    return subprocess.run([*UNSHARE, "sh", "-c", probe], capture_output=True).returncode == 0


needs_namespace = pytest.mark.skipif(
    not _namespaces_work(), reason="no mount namespace here (unshare --mount)"
)


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return env | {
        "STEWARD_HOME": str(data.parent),
        "STEWARD_DATA_DIR": str(data),
        "STEWARD_EMBEDDER": "none",
        "STEWARD_LOG_LEVEL": "WARNING",
    }


def _steward(data: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*STEWARD, *args],
        cwd=ROOT,
        env=_env(data),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _in_namespace(script: str, data: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) in a mount namespace; `$STEWARD` is the CLI on `data`."""
    env = _env(data) | {"STEWARD": " ".join(STEWARD)}
    return subprocess.run(
        [*UNSHARE, "sh", "-c", f"set -e\n{script}"],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _make_data(data: Path) -> None:
    stores = await Stores.open(make_settings(data, None).database_path, SystemClock())
    for n in range(3):
        await stores.audit.record("test.event", actor="test", n=n)
    await stores.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with a database, its audit key and head, and three events."""
    import asyncio

    data = tmp_path_factory.mktemp("template") / "data"
    asyncio.run(_make_data(data))
    data.chmod(0o700)  # as Steward keeps it (a wider mode costs a warning line at start)
    return data


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(template, copy)
    return copy


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-3000:]
    assert lines[0].startswith("steward: ") and "Traceback" not in stderr, stderr[-3000:]
    assert "OperationalError" not in lines[0], lines[0]
    return lines[0]


# -- restore: the database is checked before anything is moved ----------------------------


def _archive(path: Path, database: bytes, key: bytes) -> Path:
    """A well-formed archive whose manifest vouches for `database` as this code's schema."""
    files = {"data/steward.db": database, "data/audit.key": key}
    manifest = {
        "format": 1,
        "steward": "0",
        "schema": latest_schema(),
        "created_at": "2026-01-01T00:00:00+00:00",
        "data_dir": "/elsewhere",
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in files.items()},
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, body in [*files.items(), ("manifest.json", json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(body), 0o600
            tar.addfile(info, io.BytesIO(body))
    return path


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock's (a restore takes it, as `steward run` does)."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "steward.lock"]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


@pytest.mark.parametrize("kind", ["not_sqlite", "foreign_sqlite", "newer_schema"])
def test_a_restore_refuses_a_database_it_cannot_take_and_moves_nothing(
    data: Path, tmp_path: Path, kind: str
) -> None:
    """The manifest's checks passed and the working data was moved aside before the database
    was looked at: random bytes (rc 1 after the move), another program's SQLite file (to which
    the next start added Steward's tables) and schema 99 under a manifest saying the current
    one ("restored", then every command refused) all replaced a working data directory."""
    if kind == "not_sqlite":
        database = os.urandom(8192)
    elif kind == "foreign_sqlite":
        with sqlite3.connect(tmp_path / "other.db") as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
        database = (tmp_path / "other.db").read_bytes()
    else:
        newer = tmp_path / "newer.db"
        shutil.copyfile(data / "steward.db", newer)
        conn = sqlite3.connect(newer)
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', 'x')")
        conn.commit()
        conn.close()
        database = newer.read_bytes()
    archive = _archive(tmp_path / "a.tar.gz", database, (data / "audit.key").read_bytes())
    before = _snapshot(data)
    with pytest.raises(BackupError) as refused:
        restore_backup(make_settings(data, None), archive, force=True)
    message = str(refused.value)
    assert "\n" not in message and "nothing was changed" in message, message
    expected = {
        "not_sqlite": "not a database SQLite can read",
        "foreign_sqlite": "not a Steward database",
        "newer_schema": "schema 99",
    }[kind]
    assert expected in message, message
    assert _snapshot(data) == before  # every file where it was, as it was
    assert not list(tmp_path.glob("*before-restore*")) and not list(data.glob(".*restore*"))


def test_a_restore_failing_after_the_move_says_where_the_old_data_is(
    data: Path, tmp_path: Path
) -> None:
    """After the move a failure (here the MCP config's place is under a file) was the bare
    error: where the working data had gone was for the user to find."""
    outside = tmp_path / "mcp.json"
    outside.write_text('{"servers": {}}\n')
    made = make_settings(data, None, STEWARD_MCP_CONFIG=str(outside))
    archive = create_backup(made, tmp_path / "b.tar.gz").path
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder\n")
    settings = make_settings(data, None, STEWARD_MCP_CONFIG=str(blocked / "mcp.json"))
    with pytest.raises(BackupError) as failed:
        restore_backup(settings, archive, force=True)
    [aside] = tmp_path.glob("data.before-restore-*")
    assert f"the previous data is in {aside}" in str(failed.value), failed.value
    assert (aside / "steward.db").is_file() and (aside / "audit.key").is_file()


# -- a read-only data directory: the commands that only read, read ---------------------------


@needs_namespace
def test_reading_commands_work_on_a_read_only_data_directory(data: Path, tmp_path: Path) -> None:
    """The investigator's first step: mount the data read-only, verify and export the log,
    take a backup. Each failed: "steward: error: OperationalError: unable to open database
    file", naming neither the database nor the cause."""
    done = _in_namespace(
        f"""mount --bind {data} {data}
        mount -o remount,bind,ro {data}
        ! touch {data}/probe 2>/dev/null
        $STEWARD audit verify
        $STEWARD audit export -o {tmp_path}/audit.jsonl
        $STEWARD memory export -o {tmp_path}/memory.jsonl
        $STEWARD backup {tmp_path}/b.tar.gz
        rc=0; $STEWARD memory import {tmp_path}/memory.jsonl 2>{tmp_path}/import.err || rc=$?
        echo "import rc=$rc" """,
        data,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "audit chain ok: 3 events" in done.stdout, done.stdout
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "memory.jsonl").is_file() and (tmp_path / "b.tar.gz").is_file()
    # a write is refused in one line naming the database and the read-only file system
    assert "import rc=1" in done.stdout, done.stdout
    line = _one_line((tmp_path / "import.err").read_text())
    assert str(data / "steward.db") in line and "read-only file system" in line, line
    # and the backup of the read-only copy restores
    restored = restore_backup(make_settings(tmp_path / "restored", None), tmp_path / "b.tar.gz")
    assert restored.files >= 2 and not list(data.glob("steward.db-*"))  # nothing made there


async def test_audit_verify_only_reads_what_it_verifies(tmp_path: Path) -> None:
    """It opened the database read-write and migrated a file without Steward's tables (another
    program's SQLite file put in its place): Steward's schema was written into it, and the
    answer was "audit chain ok: 0 events"."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    with sqlite3.connect(data / "steward.db") as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = (data / "steward.db").read_bytes()
    with pytest.raises(SchemaBehind, match="holds no Steward tables"):
        await audit_verify(make_settings(data, None))
    assert (data / "steward.db").read_bytes() == before
    assert sorted(p.name for p in data.iterdir()) == ["steward.db"]


def _leave_a_wal(data: Path) -> None:
    """A change left in the write-ahead log, as a Steward killed (or a copy taken while it
    ran) leaves it: committed, not yet in steward.db."""
    code = (
        "import os, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA wal_autocheckpoint=0')\n"
        'c.execute("CREATE TABLE scratch (x)")\n'
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(data / "steward.db")], check=True)
    assert (data / "steward.db-wal").stat().st_size > 0


@needs_namespace
def test_a_read_only_copy_with_a_write_ahead_log_is_read_whole_or_refused(
    data: Path, tmp_path: Path
) -> None:
    """SQLite reads a WAL database on a read-only mount through its -shm file; without one it
    must not read the main file alone (`immutable=1` would: stale data) but say so."""
    _leave_a_wal(data)
    whole = tmp_path / "whole"
    shutil.copytree(data, whole)  # the -wal and -shm both: read through them
    (data / "steward.db-shm").unlink()  # the -wal alone: refused
    done = _in_namespace(
        f"""for d in {data} {whole}; do mount --bind $d $d; mount -o remount,bind,ro $d; done
        STEWARD_DATA_DIR={whole} $STEWARD backup {tmp_path}/b.tar.gz
        rc=0; $STEWARD audit verify 2>{tmp_path}/verify.err || rc=$?
        echo "verify rc=$rc" """,
        data,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verify rc=1" in done.stdout, done.stdout
    line = _one_line((tmp_path / "verify.err").read_text())
    assert str(data / "steward.db") in line and "steward.db-wal" in line, line
    restored = tmp_path / "restored"
    restore_backup(make_settings(restored, None), tmp_path / "b.tar.gz")
    with sqlite3.connect(restored / "steward.db") as conn:  # the WAL's change is in it
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'scratch'").fetchone()


# -- another program holds the database's lock --------------------------------------------


def _hold(database: Path, exclusive: bool) -> subprocess.Popen[str]:
    """A `sqlite3` shell inside a transaction: BEGIN IMMEDIATE (writers wait, readers go on),
    or EXCLUSIVE locking mode (readers wait too)."""
    begin = (
        "c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute('BEGIN EXCLUSIVE')"
        if exclusive
        else "c.execute('BEGIN IMMEDIATE')"
    )
    code = (
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        f"{begin}\n"
        "c.execute('UPDATE schema_version SET name = name')\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(database)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def test_a_locked_database_is_one_line_naming_it(template: Path, tmp_path: Path) -> None:
    """`steward run` printed a 35-line traceback ("unexpected error"), `memory import` and the
    reading commands "steward: error: OperationalError: database is locked", and `backup`
    never ended (CPython's Connection.backup retries SQLITE_BUSY forever)."""
    immediate, exclusive = tmp_path / "immediate" / "data", tmp_path / "exclusive" / "data"
    for data in (immediate, exclusive):
        shutil.copytree(template, data)
    out = tmp_path / "out"
    out.mkdir()
    holders = [_hold(immediate / "steward.db", False), _hold(exclusive / "steward.db", True)]
    try:
        started = time.monotonic()
        runs = {  # all at once: each waits for the lock, the test waits once
            ("immediate", "run"): _steward(immediate, "run"),
            ("immediate", "memory import"): _steward(immediate, "memory", "import", os.devnull),
            ("exclusive", "audit verify"): _steward(exclusive, "audit", "verify"),
            ("exclusive", "audit export"): _steward(exclusive, "audit", "export"),
            ("exclusive", "memory export"): _steward(exclusive, "memory", "export"),
            ("exclusive", "backup"): _steward(exclusive, "backup", str(out / "b.tar.gz")),
        }
        results = {what: _finish(process) for what, process in runs.items()}
        took = time.monotonic() - started
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    for (mode, command), (code, _, err) in results.items():
        where = immediate if mode == "immediate" else exclusive
        assert code == 1, (mode, command, err[-2000:])
        assert _one_line(err) == f"steward: {where / 'steward.db'}: {LOCKED}", (mode, command)
    assert took < 45, took
    assert list(out.iterdir()) == []  # no archive, no staging folder


def test_a_backup_ended_while_it_waits_leaves_no_staging_folder(data: Path, tmp_path: Path) -> None:
    """`timeout steward backup` (SIGTERM) on a hung backup left `.b.tar.gz-…` beside FILE."""
    out = tmp_path / "out"
    out.mkdir()
    holder = _hold(data / "steward.db", True)
    try:
        backup = _steward(data, "backup", str(out / "b.tar.gz"))
        for _ in range(300):  # the staging folder is made before the database is read
            if list(out.iterdir()):
                break
            time.sleep(0.02)
        assert list(out.iterdir()), "no staging folder was made"
        time.sleep(0.5)  # inside the wait for the lock
        backup.send_signal(signal.SIGTERM)
        code, _, err = _finish(backup, timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert code == 128 + signal.SIGTERM, (code, err)
    assert list(out.iterdir()) == [], err


# -- the disk full ------------------------------------------------------------------------


@needs_namespace
def test_a_full_disk_is_named_as_such(data: Path, tmp_path: Path) -> None:
    """SQLite's "disk I/O error" (it could not make the -shm file) was the whole message:
    "steward: error: OperationalError: disk I/O error", naming neither disk nor database."""
    full = tmp_path / "full"
    full.mkdir()
    done = _in_namespace(
        f"""mount -t tmpfs -o size=2m tmpfs {full}
        cp -a {data} {full}/data
        dd if=/dev/zero of={full}/filler bs=4k 2>/dev/null || true
        for command in "audit verify" "memory export" run; do
          rc=0; $STEWARD $command 2>>{tmp_path}/err || rc=$?; echo "rc=$rc"
        done""",
        full / "data",
    )
    assert done.stdout.split() == ["rc=1"] * 3, done.stdout + done.stderr
    lines = (tmp_path / "err").read_text().splitlines()
    assert len(lines) == 3 and "Traceback" not in "".join(lines), lines
    database = full / "data" / "steward.db"
    assert lines[:2] == [f"steward: {database}: no space left on device (disk I/O error)"] * 2
    assert lines[2].startswith(f"steward: {full / 'data'}: ") and "No space left" in lines[2]
