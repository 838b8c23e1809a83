"""R253: a deep or long workspace tree failed every `steward backup` (Python 3.11's `os.walk`
recursed, and a path past PATH_MAX could not be looked at), and a sparse workspace file was
archived, then restored, at its full apparent size. Now the part of a tree too deep or too long
to restore is named once as not included, the rest is backed up, and a large sparse file is
listed as not included."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import make_settings

from bot.backup import restore_backup
from memory.clock import SystemClock
from memory.stores import Stores

STEWARD = [sys.executable, "-m", "bot.cli"]


async def _database(data: Path) -> None:
    stores = await Stores.open(make_settings(data, None).database_path, SystemClock())
    await stores.audit.record("test.first", actor="test")
    await stores.close()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A data directory with a database and `workspace/top.txt`, the environment of the
    `steward` commands on it; removed with `rm -r` after (shutil.rmtree recurses too)."""
    data = tmp_path / "data"
    asyncio.run(_database(data))
    (data / "workspace").mkdir(exist_ok=True)
    (data / "workspace" / "top.txt").write_text("top\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    env |= {"STEWARD_HOME": str(tmp_path), "STEWARD_DATA_DIR": str(data)}
    yield env | {"STEWARD_EMBEDDER": "none"}, data
    subprocess.run(["rm", "-rf", str(data)], check=False)


def _nest(workspace: Path, name: str, levels: int, files: dict[int, str]) -> None:
    """`levels` folders named `name`, each in the one before, made through folder descriptors
    (their paths pass PATH_MAX); a file `files[level]` in the folder at that level."""
    fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, levels + 1):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            if level in files:
                out = os.open(files[level], os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(out, f"{files[level]}\n".encode())
                os.close(out)
    finally:
        os.close(fd)


def _backup(env: dict[str, str], target: Path) -> list[str]:
    """`steward backup` succeeds; its "not included" lines."""
    done = subprocess.run(
        [*STEWARD, "backup", str(target)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[:2000]
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("backup written to"), lines[0][:500]
    return [line.removeprefix("  not included: ") for line in lines[1:]]


def _members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def test_a_tree_deeper_than_a_restore_can_make_is_named_once_and_the_rest_backed_up(
    home: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """1,200 nested folders: `steward: error: RecursionError`, exit 1, nothing written."""
    env, data = home
    _nest(data / "workspace", "d", 1200, {10: "near.txt", 1200: "bottom.txt"})
    target = tmp_path / "b.tar.gz"

    left_out = _backup(env, target)

    assert len(left_out) == 1, left_out
    assert left_out[0].startswith("workspace/d/ (folders nested more than 256 deep"), left_out
    names = _members(target)
    assert "data/workspace/top.txt" in names
    assert "data/workspace/" + "d/" * 10 + "near.txt" in names
    assert not [n for n in names if n.endswith("bottom.txt")]
    fresh = tmp_path / "fresh"
    restore_backup(make_settings(fresh, None), target)
    assert (fresh / "workspace" / "top.txt").read_text() == "top\n"
    assert (fresh / "workspace" / Path(*["d"] * 10) / "near.txt").read_text() == "near.txt\n"
    subprocess.run(["rm", "-rf", str(fresh)], check=False)


def test_paths_too_long_to_restore_are_named_once_and_the_rest_backed_up(
    home: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """100 nested folders of 60-character names: exit 1 with a 4,169-character error line."""
    env, data = home
    name = "n" * 60
    _nest(data / "workspace", name, 100, {10: "mid.txt", 100: "bottom.txt"})
    target = tmp_path / "b.tar.gz"

    left_out = _backup(env, target)

    assert len(left_out) == 1, left_out
    assert left_out[0].startswith(f"workspace/{name}/ (paths longer than 3,072 bytes")
    assert len(left_out[0]) < 200
    names = _members(target)
    assert "data/workspace/top.txt" in names
    assert "data/workspace/" + f"{name}/" * 10 + "mid.txt" in names
    assert not [n for n in names if n.endswith("bottom.txt")]
    fresh = tmp_path / "fresh"
    restore_backup(make_settings(fresh, None), target)  # every member fits under PATH_MAX
    assert (fresh / "workspace" / Path(*[name] * 10) / "mid.txt").read_text() == "mid.txt\n"
    subprocess.run(["rm", "-rf", str(fresh)], check=False)


def test_a_large_sparse_file_is_listed_as_not_included(
    home: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """`truncate -s 4G` in the sandbox used no disk; the backup read 4 GiB of zeros and the
    restore wrote 4 GiB of disk, for each such file."""
    env, data = home
    sparse = data / "workspace" / "disk.img"
    with sparse.open("wb") as handle:
        handle.truncate(256 << 20)
    if sparse.stat().st_blocks * 512 >= 1 << 20:
        pytest.skip(f"{tmp_path} makes no sparse files (256 MiB truncated took disk blocks)")
    target = tmp_path / "b.tar.gz"

    left_out = _backup(env, target)

    assert left_out == ["workspace/disk.img (sparse: 256 MiB apparent, 0 MiB on disk)"]
    assert "data/workspace/disk.img" not in _members(target)
    assert "data/workspace/top.txt" in _members(target)
    assert target.stat().st_size < 100_000, target.stat().st_size  # 256 MiB of zeros: ~250 KB
