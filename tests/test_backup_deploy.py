"""The deployment files' own instructions for backups, and what a service manager does with a
bad setting: each documented command must work as written."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

import yaml

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "steward.service"
COMPOSE = ROOT / "compose.yaml"


def _comment_commands(path: Path) -> list[list[str]]:
    """The shell commands in a file's leading comment (indented `#   ` lines, `\\` joined)."""
    lines, current = [], ""
    for line in path.read_text().splitlines():
        if not line.startswith("#   "):
            continue
        text = line[4:].strip()
        current += text.removesuffix("\\") + " "
        if not text.endswith("\\"):
            with contextlib.suppress(ValueError):  # prose, not a command (an apostrophe)
                lines.append(shlex.split(current.split("  #")[0]))
            current = ""
    return lines


def _steward_args(command: list[str], verb: str) -> list[str]:
    """The arguments after `steward <verb>` in `command` (the steward binary may be a path)."""
    for i, word in enumerate(command[:-1]):
        if PurePosixPath(word).name == "steward" and command[i + 1] == verb:
            return command[i + 2 :]
    return []


def test_a_bad_setting_exits_2_and_the_unit_does_not_restart_it(tmp_path: Path) -> None:
    """`Restart=on-failure` restarted a Steward with a typo in steward.env every 5 s, forever."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    env |= {"STEWARD_HOME": str(tmp_path), "STEWARD_LOG_LEVEL": "LOUD"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "configuration error" in done.stderr, done.stderr
    service = UNIT.read_text().split("[Service]", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^Restart=on-failure$", service, re.M)
    assert re.search(r"^RestartPreventExitStatus=2$", service, re.M)


def test_the_units_backup_command_reads_the_services_settings() -> None:
    """`sudo -u steward … steward backup` could not read /etc/steward/steward.env (root's
    alone), so a data directory set there was not the one backed up."""
    [env_file] = re.findall(r"^EnvironmentFile=(\S+)$", UNIT.read_text(), re.M)
    home = re.findall(r"^Environment=STEWARD_HOME=(\S+)$", UNIT.read_text(), re.M)
    backups = [c for c in _comment_commands(UNIT) if _steward_args(c, "backup")]
    assert backups, "the unit documents no backup command"
    for command in backups:
        assert command[0] == "systemd-run", command
        assert f"EnvironmentFile={env_file}" in command and "--uid=steward" in command
        assert f"STEWARD_HOME={home[0]}" in command
        archive = _steward_args(command, "backup")[0]
        assert not PurePosixPath(archive).is_relative_to(PurePosixPath(home[0]) / "data")


def test_the_compose_backup_writes_outside_the_volume_and_copies_that_file_out() -> None:
    """compose.yaml said `steward backup /data/backups/now.tar.gz`: refused (inside the data
    directory), and /data/backups does not exist."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["steward"]
    data = PurePosixPath(service["environment"]["STEWARD_DATA_DIR"])
    commands = _comment_commands(COMPOSE)
    [written] = [_steward_args(c, "backup") for c in commands if _steward_args(c, "backup")]
    archive = PurePosixPath(written[0])
    assert archive != data and not archive.is_relative_to(data)
    assert archive.parent == PurePosixPath("/tmp")  # always there, writable by any user
    copies = [c for c in commands if c[:3] == ["docker", "compose", "cp"]]
    assert [c[3] for c in copies] == [f"steward:{archive}"]
    restores = [c for c in commands if "restore --force" in " ".join(c)]
    assert restores and all("--rm" in c for c in restores)
