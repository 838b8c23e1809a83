"""Nothing Steward runs talks to anyone it was not asked to (review 73): onnxruntime's wheels
send usage events to Microsoft from threads of their own, idle or not, unless
ORT_DISABLE_TELEMETRY is set before the library loads (Steward sets it in `memory`). The
embedder is loaded and used in a child process traced by strace, which records every connect();
the first event went out ~9 s after the library loaded, so the child stays up for 15 s."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

STRICT = os.environ.get("STEWARD_CI_STRICT") == "1"
CHILD = """
import time
import memory  # what Steward imports first: it turns the runtime's telemetry off
from memory.onnx_minilm import OnnxMiniLMEmbedder
embedder = OnnxMiniLMEmbedder.load()
embedder.embed(["hello there"])
time.sleep(15)
"""


@pytest.mark.skipif(
    shutil.which("strace") is None and not STRICT,
    reason="strace is not installed (make system-deps installs it where it runs as root)",
)
def test_the_embedder_connects_to_nothing(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    done = subprocess.run(
        ["strace", "-f", "-e", "trace=connect", "-o", str(trace), sys.executable, "-c", CHILD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    connects = [
        line
        for line in trace.read_text().splitlines()
        if "connect(" in line and ("AF_INET" in line or "AF_INET6" in line)
    ]
    assert connects == [], connects
