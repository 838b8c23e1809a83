"""Backups and restores where the disk is not a plain home directory: a container's volume
(the data directory a mount point, its parent the image's root, read-only to the container's
user), a full disk, a small TMPDIR. Each case runs `steward` in a mount namespace of its own
(`unshare`), with real mounts: read-only bind mounts and small tmpfs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from harness import make_settings

from bot.backup import create_backup, restore_backup
from memory.clock import SystemClock
from memory.stores import Stores

ROOT = Path(__file__).resolve().parents[1]
UNSHARE = ["unshare", "--mount"] + ([] if os.geteuid() == 0 else ["--map-root-user"])


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"
    done = subprocess.run([*UNSHARE, "sh", "-c", probe], capture_output=True)
    return done.returncode == 0


pytestmark = pytest.mark.skipif(
    not _namespaces_work(), reason="no mount namespace here (unshare --mount)"
)


def _in_namespace(script: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `script` (sh) in a mount namespace; `$STEWARD` is the CLI."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    base |= {"STEWARD_HOME": str(home), "STEWARD_EMBEDDER": "none"}
    base |= {"STEWARD": f"{sys.executable} -m bot.cli"} | env
    return subprocess.run(
        [*UNSHARE, "sh", "-c", f"set -e\n{script}"],
        env=base,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _data(data: Path) -> None:
    stores = await Stores.open(make_settings(data, None).database_path, SystemClock())
    await stores.audit.record("test.first", actor="test")
    await stores.close()
    (data / "workspace").mkdir()
    (data / "workspace" / "noise.bin").write_bytes(os.urandom(1 << 20))  # incompressible


async def test_a_restore_on_a_volume_under_a_read_only_root_keeps_the_old_data_in_the_volume(
    tmp_path: Path,
) -> None:
    """The container: /data is a volume, `/` is not writable by uid 10001. `restore --force`
    moved the old data to `/data.before-restore-…` and failed: "Read-only file system"."""
    volume, root = tmp_path / "volume", tmp_path / "root"
    await _data(volume)
    archive = create_backup(make_settings(volume, None), tmp_path / "b.tar.gz").path
    (volume / "workspace" / "after-the-backup.txt").write_text("kept\n")
    (root / "data").mkdir(parents=True)
    done = _in_namespace(
        f"""mount --bind {root} {root}
        mount -o remount,bind,ro {root}
        mount --bind {volume} {root}/data
        ! touch {root}/probe 2>/dev/null
        $STEWARD restore --force {archive}""",
        tmp_path / "home",
        STEWARD_DATA_DIR=str(root / "data"),
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    [aside] = volume.glob(".before-restore-*")
    assert f"the previous data is in {root}/data/{aside.name}" in done.stderr
    assert (aside / "workspace" / "after-the-backup.txt").read_text() == "kept\n"
    assert (aside / "steward.db").is_file() and (volume / "steward.db").is_file()
    assert not (volume / "workspace" / "after-the-backup.txt").exists()
    assert [p.name for p in root.iterdir()] == ["data"]

    # the folder stays where it is: the next backup leaves it out, the next restore too
    settings = make_settings(volume, None)
    second = create_backup(settings, tmp_path / "c.tar.gz")
    with tarfile.open(second.path) as tar:
        assert not [n for n in tar.getnames() if ".before-restore-" in n]
    again = restore_backup(settings, second.path, force=True)
    assert again.moved_aside is not None and again.moved_aside.parent == tmp_path  # beside
    assert aside.is_dir() and (aside / "steward.db").is_file()


async def test_a_restore_into_a_mounted_volume_keeps_the_old_data_on_the_volume(
    tmp_path: Path,
) -> None:
    """A container run as root: `/` is writable, but it is the container's layer, discarded
    with it; the old data belongs on the volume (a rename, not a copy)."""
    volume, root = tmp_path / "volume", tmp_path / "root"
    await _data(volume)
    archive = create_backup(make_settings(volume, None), tmp_path / "b.tar.gz").path
    (root / "data").mkdir(parents=True)
    done = _in_namespace(
        f"""mount -t tmpfs -o size=16m tmpfs {root}/data
        cp -a {volume}/. {root}/data/
        $STEWARD restore --force {archive}
        ls -A {root} {root}/data""",
        tmp_path / "home",
        STEWARD_DATA_DIR=str(root / "data"),
    )
    assert done.returncode == 0, done.stderr
    assert f"the previous data is in {root}/data/.before-restore-" in done.stderr
    assert "data.before-restore" not in done.stdout, done.stdout


async def test_a_full_disk_fails_the_backup_in_one_line_naming_the_folder(
    tmp_path: Path,
) -> None:
    """The archive's folder fills up: the error named no folder ("No space left on device"),
    and a file that could not be written was counted as skipped while the archive went on."""
    await _data(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    done = _in_namespace(
        f"""mount -t tmpfs -o size=256k tmpfs {out}
        rc=0; $STEWARD backup {out}/b.tar.gz || rc=$?
        echo "rc=$rc"; ls -A {out}""",
        tmp_path / "home",
        STEWARD_DATA_DIR=str(tmp_path / "data"),
    )
    assert done.stdout.strip() == "rc=1", done.stdout + done.stderr  # and nothing left in it
    assert done.stderr.startswith(f"steward: no space left in {out} for the backup")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


async def test_the_snapshot_is_staged_beside_the_archive_not_in_tmpdir(tmp_path: Path) -> None:
    """A small /tmp (a tmpfs) failed a backup to a roomy disk: the database snapshot was made
    in TMPDIR."""
    await _data(tmp_path / "data")
    small = tmp_path / "small"
    small.mkdir()
    done = _in_namespace(
        f"""mount -t tmpfs -o size=64k tmpfs {small}
        $STEWARD backup {tmp_path}/b.tar.gz
        ls -A {small}""",
        tmp_path / "home",
        STEWARD_DATA_DIR=str(tmp_path / "data"),
        TMPDIR=str(small),
    )
    assert done.returncode == 0, done.stderr
    assert f"backup written to {tmp_path}/b.tar.gz" in done.stderr
    assert done.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["b.tar.gz", "data", "small"]
