"""`make soak` in miniature: bench/soak.py runs Steward (bench/soak_child.py, a clock thousands of
times as fast) for a simulated day with 50 turns and 10 scheduled runs, and reports every reply
and a curve of RSS, open files, threads and asyncio tasks. Figures are `make soak`'s business;
this checks that the soak runs and measures what it says (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_simulated_day_answers_every_turn_runs_the_scheduler_and_prints_a_curve(
    tmp_path: Path,
) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "soak.py"),
            *("--turns", "50", "--runs", "10", "--days", "1", "--every", "10"),
            *("--week-seconds", "15", "--lead", "15", "--warmup-days", "0.25"),
            *("--json", str(out), "--keep", str(tmp_path / "work")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.exists(), done.stdout + done.stderr
    figures = json.loads(out.read_text())
    assert figures["turns"] == 50
    assert figures["missing_replies"] == 0
    # the scheduler ran on the fast clock: a day of 10 daily schedules is about 10 runs
    assert figures["schedules"] == {"reminder": 6, "task": 2, "checkin": 1, "briefing": 1}
    assert figures["runs"]["total"] >= 5, figures["runs"]
    assert any(k.startswith("reminder sent") for k in figures["runs"]["by_kind"])
    curve = figures["curve"]
    assert len(curve) >= 6  # the start, every 10 turns, the end
    assert [r["turns"] for r in curve[1:6]] == [10, 20, 30, 40, 50]
    last = curve[-1]
    assert last["rss_mib"] > 50 and last["fds"] > 0 and last["threads"] > 0
    assert last["tasks"] > 0  # read from Steward's /healthz
    assert last["vectors"] > 0  # transcript messages are embedded and indexed
    for key in ("rss_growth_beyond_index_mib", "index_allowance_mib", "growth", "no_growth"):
        assert key in figures
    assert "RSS MiB" in done.stdout and "rss_mib" in done.stdout  # the table and sparklines
