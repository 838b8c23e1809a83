"""With no writable folder for temporary files, Steward says so in one line (R259).

On a read-only root filesystem (/tmp and /var/tmp read-only), a new data directory failed its
migration as "the database ... cannot be written: disk I/O error" (SQLite had nowhere for its
temporary files) and, on an existing one, /status crashed. Run in a private mount namespace
with /tmp and /var/tmp bound read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.sandbox import os_sandbox_available

ROOT = Path(__file__).resolve().parent.parent

needs_namespaces = pytest.mark.skipif(
    not os_sandbox_available() and os.environ.get("STEWARD_CI_STRICT") != "1",
    reason="no user namespaces on this machine (util-linux unshare with --user)",
)

_READ_ONLY_TMP = (
    "mount --bind /tmp /tmp && mount -o remount,ro,bind /tmp"
    " && mount --bind /var/tmp /var/tmp && mount -o remount,ro,bind /var/tmp"
    ' && cd /tmp && exec "$@"'
)


def _steward_without_tmp(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    unshare = shutil.which("unshare")
    assert unshare is not None
    env = {"PATH": "/usr/bin:/bin", "STEWARD_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [
            *(unshare, "--user", "--map-root-user", "--mount"),
            *("/bin/sh", "-c", _READ_ONLY_TMP, "sh"),
            *(sys.executable, "-m", "bot.entry", *args),
        ],
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_namespaces
def test_no_writable_temporary_folder_is_one_line_naming_tmpdir(tmp_path: Path) -> None:
    home = Path("/dev/shm") / f"steward-r259-{os.getpid()}"  # outside the read-only /tmp
    try:
        done = _steward_without_tmp(home, "run")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("steward: no writable folder for temporary files")
    assert "TMPDIR" in lines[0]
    assert "Traceback" not in done.stderr
