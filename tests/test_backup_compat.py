"""`steward restore` on every Python 3.11: tarfile's "data" filter is new in 3.11.4, and
Debian 12's python3 is 3.11.2. Without it the members are checked by hand, to the same rules."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import subprocess
import sysconfig
import tarfile
from pathlib import Path
from typing import Any

import pytest
from harness import make_settings

from bot.backup import BackupError, create_backup, restore_backup
from memory.clock import SystemClock
from memory.stores import Stores

ROOT = Path(__file__).resolve().parents[1]
OLD_PYTHON = Path("/usr/bin/python3.11")


@pytest.fixture
def tarfile_before_3_11_4(monkeypatch: pytest.MonkeyPatch) -> None:
    """tarfile as Python 3.11.0 to 3.11.3 has it: no data_filter, no `filter` argument."""
    real = tarfile.TarFile.extractall

    def extractall(
        self: tarfile.TarFile, path: Any = ".", members: Any = None, *, numeric_owner: bool = False
    ) -> None:
        real(self, path, members, numeric_owner=numeric_owner, filter="fully_trusted")

    monkeypatch.delattr(tarfile, "data_filter")
    monkeypatch.setattr(tarfile.TarFile, "extractall", extractall)


async def _backup(tmp_path: Path) -> Path:
    settings = make_settings(tmp_path / "data", None)
    stores = await Stores.open(settings.database_path, SystemClock())
    await stores.audit.record("test.first", actor="test")
    await stores.close()
    (tmp_path / "data" / "workspace").mkdir()
    (tmp_path / "data" / "workspace" / "run.sh").write_text("echo hi\n")
    os.chmod(tmp_path / "data" / "workspace" / "run.sh", 0o4777)
    return create_backup(settings, tmp_path / "b.tar.gz").path


async def test_a_restore_works_without_the_data_filter(
    tmp_path: Path, tarfile_before_3_11_4: None
) -> None:
    archive = await _backup(tmp_path)
    restore_backup(make_settings(tmp_path / "fresh", None), archive)
    script = tmp_path / "fresh" / "workspace" / "run.sh"
    assert script.read_text() == "echo hi\n"
    assert script.stat().st_mode & 0o7777 == 0o755  # no setuid, no group/other write
    assert (tmp_path / "fresh" / "steward.db").is_file()


def _crafted(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    files = {"data/steward.db": hashlib.sha256(b"db").hexdigest()}
    files[member.name] = hashlib.sha256(data).hexdigest()
    manifest = json.dumps({"format": 1, "schema": 1, "files": files}).encode()
    with tarfile.open(path, "w:gz") as tar:
        for name, body in (("manifest.json", manifest), ("data/steward.db", b"db")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        tar.addfile(member, io.BytesIO(data) if member.isreg() else None)
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


@pytest.mark.parametrize(
    "member",
    [
        _link("data/workspace/passwd", "/etc/passwd", tarfile.SYMTYPE),
        _link("data/workspace/key", "../audit.key", tarfile.SYMTYPE),
        _link("data/workspace/hard", "/etc/passwd", tarfile.LNKTYPE),
        _device("data/workspace/null"),
    ],
    ids=["symlink-out", "symlink-in", "hardlink", "device"],
)
@pytest.mark.parametrize("filtered", [True, False], ids=["3.11.4+", "3.11.2"])
def test_only_regular_files_are_restored(
    tmp_path: Path, request: pytest.FixtureRequest, member: tarfile.TarInfo, filtered: bool
) -> None:
    if not filtered:
        request.getfixturevalue("tarfile_before_3_11_4")
    archive = _crafted(tmp_path / "x.tar.gz", member)
    with pytest.raises(BackupError, match=r"not a Steward backup \(data/workspace/\w+ is not a"):
        restore_backup(make_settings(tmp_path / "data", None), archive)
    assert not (tmp_path / "data" / "steward.db").exists()


@pytest.mark.skipif(
    not OLD_PYTHON.exists()
    or subprocess.run(
        [OLD_PYTHON, "-c", "import sys; sys.exit(sys.version_info < (3, 11, 4))"]
    ).returncode
    == 0,
    reason="no Python 3.11 older than 3.11.4 at /usr/bin/python3.11",
)
async def test_steward_restore_runs_on_an_older_python_3_11(tmp_path: Path) -> None:
    """The real interpreter (Debian 12's 3.11.2 here), this checkout on its path."""
    archive = await _backup(tmp_path)
    site = sysconfig.get_paths()["purelib"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    env |= {"PYTHONPATH": f"{ROOT}{os.pathsep}{site}", "STEWARD_HOME": str(tmp_path / "home")}
    done = await asyncio.to_thread(
        subprocess.run,
        [OLD_PYTHON, "-m", "bot.cli", "restore", str(archive)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stderr
    assert (tmp_path / "home" / "data" / "workspace" / "run.sh").read_text() == "echo hi\n"
