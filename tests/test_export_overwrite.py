"""`memory export -o` and `audit export -o` replace only an earlier export of their own kind (R196:
either replaced a backup archive or any other file with exit 0, though the README said they may
not; restoring that "backup" then failed)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STEWARD = [sys.executable, "-m", "bot.cli"]


def steward(*args: str, home: Path, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    env |= {"STEWARD_HOME": str(home), "STEWARD_EMBEDDER": "none", "STEWARD_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [*STEWARD, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=90
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose data holds a memory and a few audit events."""
    home = tmp_path_factory.mktemp("home")
    result = steward("run", home=home, cwd=home, stdin="/remember my sister is called Alma\n")
    assert result.returncode == 0 and "Remembered #1" in result.stdout, result.stderr
    return home


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


@pytest.mark.parametrize("what", ["memory", "audit"])
def test_an_export_does_not_replace_a_backup(home: Path, tmp_path: Path, what: str) -> None:
    backup = tmp_path / "precious.tgz"
    made = steward("backup", str(backup), home=home, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    before = _digest(backup)
    line = _refusal(steward(what, "export", "-o", str(backup), home=home, cwd=tmp_path))
    assert f"{backup} exists and is not an earlier {what} export" in line, line
    assert "name a new file" in line and "delete it first" in line, line
    assert _digest(backup) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.tgz"]  # no part left
    restored = tmp_path / "restored"
    restored.mkdir()
    back = steward("restore", str(backup), home=restored, cwd=tmp_path)
    assert back.returncode == 0, back.stderr


@pytest.mark.parametrize("what", ["memory", "audit"])
def test_an_export_does_not_replace_another_file(home: Path, tmp_path: Path, what: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("keep these words\n")
    _refusal(steward(what, "export", "-o", str(notes), home=home, cwd=tmp_path))
    assert notes.read_text() == "keep these words\n"
    other_tool = tmp_path / "other.jsonl"  # JSON lines, but not Steward's
    other_tool.write_text('{"id": 1, "name": "x"}\n')
    _refusal(steward(what, "export", "-o", str(other_tool), home=home, cwd=tmp_path))
    assert other_tool.read_text() == '{"id": 1, "name": "x"}\n'


def test_an_export_of_the_other_kind_is_kept(home: Path, tmp_path: Path) -> None:
    audit, memories = tmp_path / "audit.jsonl", tmp_path / "memories.jsonl"
    assert steward("audit", "export", "-o", str(audit), home=home, cwd=tmp_path).returncode == 0
    assert steward("memory", "export", "-o", str(memories), home=home, cwd=tmp_path).returncode == 0
    before = (_digest(audit), _digest(memories))
    line = _refusal(steward("memory", "export", "-o", str(audit), home=home, cwd=tmp_path))
    assert "is not an earlier memory export" in line, line
    line = _refusal(steward("audit", "export", "-o", str(memories), home=home, cwd=tmp_path))
    assert "is not an earlier audit export" in line, line
    assert (_digest(audit), _digest(memories)) == before


@pytest.mark.parametrize("what", ["memory", "audit"])
def test_an_earlier_export_of_the_same_kind_or_an_empty_file_is_replaced(
    home: Path, tmp_path: Path, what: str
) -> None:
    target = tmp_path / "export.jsonl"
    target.touch()  # nothing to lose
    first = steward(what, "export", "-o", str(target), home=home, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    exported = target.read_text()
    target.write_text(exported.splitlines()[0] + "\n")  # an older, shorter export
    again = steward(what, "export", "-o", str(target), home=home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert target.read_text() == exported and all(json.loads(x) for x in exported.splitlines())
