"""A workspace under a /tmp folder whose name holds a space is confined like any other.

R259: with the data directory at `/tmp/my steward/data`, the private /tmp's parent folder was
bind-mounted under its own name and then met, in /proc/self/mountinfo, spelled `my\\040steward`:
the setup refused such names and every confined command came back as exit 97, no output, while
/status said "shell: confined"."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sandbox import Sandbox, os_sandbox_available

pytestmark = pytest.mark.trust

needs_namespaces = pytest.mark.skipif(
    not os_sandbox_available() and os.environ.get("STEWARD_CI_STRICT") != "1",
    reason="no user namespaces on this machine (util-linux unshare with --user)",
)


@pytest.fixture(params=["my steward", "tab\there", "back\\slash"])
def spaced_workspace(request: pytest.FixtureRequest) -> Iterator[Path]:
    top = Path(tempfile.mkdtemp(prefix=f"{request.param} r259 ", dir="/tmp"))
    workspace = top / "data" / "workspace"
    workspace.mkdir(parents=True)
    try:
        yield workspace
    finally:
        shutil.rmtree(top, ignore_errors=True)


@needs_namespaces
def test_a_command_runs_confined_under_a_tmp_folder_with_a_space(spaced_workspace: Path) -> None:
    sandbox = Sandbox(spaced_workspace)
    assert sandbox.confined
    argv = sandbox.command(
        ["/bin/sh", "-c", "echo hi > made.txt; cat made.txt; touch /tmp/x; touch ../up || true"],
        confined=True,
    )
    done = subprocess.run(
        argv, env=sandbox.env(confined=True), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert done.stdout.strip() == "hi"
    assert (spaced_workspace / "made.txt").read_text() == "hi\n"
    # the workspace's parents stay read-only inside, as for any other data directory
    assert not (spaced_workspace.parent / "up").exists()
    assert "Read-only file system" in done.stderr
