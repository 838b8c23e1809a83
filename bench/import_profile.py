"""What Steward imports on its way to the first reply, from `python -X importtime`.

    python bench/import_profile.py                  # a real start, to the first reply
    python bench/import_profile.py --module bot.app # only `import bot.app`
    python bench/import_profile.py --top 25

The real start is bench/startup.py's: `steward run` against the fake Telegram and fake model, a
message waiting, stopped when its reply arrives; imports still running then are not counted.
Printed: the top imports by cumulative time (the module, what imported it), then self time
summed per top-level package. Imports in worker threads (the channel module, the SDK, the
embedder) overlap those of the main thread, and CPython's importtime nesting is one counter for
all threads, so with threads the "imported by" column and the cumulative figures of modules
imported at the same moment are approximate; the per-package self times are not affected.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


@dataclass
class Imported:
    module: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: str = ""


def parse(text: str) -> list[Imported]:
    """importtime lines, in the order printed (children before their parent)."""
    rows: list[Imported] = []
    for line in text.splitlines():
        if found := LINE.match(line):
            self_us, cumulative_us, indent, module = found.groups()
            rows.append(Imported(module, int(self_us), int(cumulative_us), len(indent) // 2))
    # a module's parent is the next line printed one level up
    open_at: dict[int, list[Imported]] = {}
    for row in rows:
        for child in open_at.pop(row.depth + 1, []):
            child.parent = row.module
        open_at.setdefault(row.depth, []).append(row)
    return rows


def by_package(rows: list[Imported]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for row in rows:
        totals[row.module.split(".")[0]] += row.self_us
    return totals


def report(rows: list[Imported], top: int, skip: frozenset[str] = frozenset()) -> str:
    total = sum(r.self_us for r in rows)
    lines = [
        f"{len(rows)} modules imported, {total / 1e6:.2f} s of import time in all",
        "",
        f"top {top} by cumulative time:",
        f"{'cumul. ms':>10} {'self ms':>8}  module (imported by)",
    ]
    ranked = sorted((r for r in rows if r.module not in skip), key=lambda r: -r.cumulative_us)
    for row in ranked[:top]:
        by = f"  ({row.parent})" if row.parent else ""
        lines.append(
            f"{row.cumulative_us / 1000:10.1f} {row.self_us / 1000:8.1f}  {row.module}{by}"
        )
    lines += ["", f"top {top} packages by self time summed:", f"{'ms':>10}  package"]
    for package, us in by_package(rows).most_common(top):
        lines.append(f"{us / 1000:10.1f}  {package}")
    return "\n".join(lines)


def module_profile(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stderr


def start_profile() -> tuple[str, dict[str, object]]:
    """importtime of a real start to the first reply (bench/startup.py's start)."""
    import startup
    import steward_side

    command = list(steward_side.STEWARD)
    startup.STEWARD[:] = [command[0], "-X", "importtime", *command[1:]]
    with tempfile.TemporaryDirectory(prefix="steward-imports-") as tmp:
        work = Path(tmp)
        warm = work / "warm"  # writes the .pyc files first, as bench/startup.py does
        warm.mkdir()
        asyncio.run(startup.steward_start(warm, latency=0.02))
        work = work / "measured"
        work.mkdir()
        figures = asyncio.run(startup.steward_start(work, latency=0.02))
        return (work / "steward.log").read_text(errors="replace"), figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--module", help="profile `import MODULE` instead of a real start")
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--save", type=Path, help="also write the raw importtime lines here")
    args = p.parse_args(argv)
    if args.module:
        text = module_profile(args.module)
        if args.save:
            args.save.write_text(text)
        print(f"python -X importtime -c 'import {args.module}'")
        print(report(parse(text), args.top, frozenset({args.module})))
        return 0
    text, figures = start_profile()
    if args.save:
        args.save.write_text(text)
    if "error" in figures:
        print(f"the start failed: {figures['error']}", file=sys.stderr)
        return 1
    print(
        f"steward run, start to first reply (with -X importtime): "
        f"ready {figures['ready_s']:.2f} s, first reply {figures['first_reply_s']:.2f} s"
    )
    print(report(parse(text), args.top, frozenset({"bot.cli"})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
