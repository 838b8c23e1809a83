"""Where Steward's resident memory goes: its pieces loaded one by one, in start order, in a
fresh child process, with the growth of RSS (VmRSS) after each.

    python bench/rss_breakdown.py [--chroma DIR --user ID] [--embedder minilm]

`breakdown()` runs the child and returns one row per piece; `rows()` formats them for the
bench's table. Each figure is what that piece added on top of the ones before it (a library
shared by two pieces counts once, with the first), so the rows add up to the total. Nothing is
started (no event loop task, no channel connection): this is the price of what is loaded.

With `chroma` (a data directory's Chroma folder, e.g. one `make bench` filled with 100,000
memories) and `user`, the Chroma rows open that index and run one query for that user, which
loads the user's HNSW index: the state after the first turn that recalls.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

__all__ = ["PIECES", "breakdown", "rows"]

PIECES = (
    "python + stdlib",
    "aiohttp + aiosqlite",
    "anthropic SDK",
    "Steward core modules",
    "state DB open",
    "onnxruntime + embedder session",
    "chromadb + client",
    "Chroma collection (+ first query)",
    "channel (telegram)",
    "web console",
)


def breakdown(
    *,
    chroma: Path | None = None,
    user: int | None = None,
    embedder: str = "minilm",
    timeout: float = 180.0,
) -> list[dict[str, Any]]:
    """Run the child; [{"piece", "mib", "total_mib"}, ...] in start order."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--embedder", embedder]
    if chroma is not None:
        command += ["--chroma", str(chroma)]
    if user is not None:
        command += ["--user", str(user)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"rss breakdown failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(results: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, figure) pairs for the bench table: MiB added by each piece, then the total."""
    out = [(f"RSS: {r['piece']}", f"+{r['mib']:.1f} MiB") for r in results]
    if results:
        out.append(("RSS: all pieces loaded", f"{results[-1]['total_mib']:.1f} MiB"))
    return out


# -- the child --------------------------------------------------------------------------------


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _child(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    last = 0.0

    def mark(piece: str) -> None:
        nonlocal last
        now = _rss_mib()
        out.append({"piece": piece, "mib": round(now - last, 1), "total_mib": round(now, 1)})
        last = now

    import logging
    import sqlite3  # noqa: F401
    import ssl  # noqa: F401

    logging.disable(logging.WARNING)
    mark(PIECES[0])
    import aiohttp  # noqa: F401
    import aiosqlite  # noqa: F401

    mark(PIECES[1])
    import anthropic  # noqa: F401

    mark(PIECES[2])
    sys.path.insert(0, str(ROOT))
    import bot.app

    mark(PIECES[3])
    from memory.clock import SystemClock
    from memory.stores import Stores

    scratch = Path(tempfile.mkdtemp(prefix="steward-rss-"))
    loop = asyncio.new_event_loop()
    stores = loop.run_until_complete(Stores.open(scratch / "steward.db", SystemClock()))
    mark(PIECES[4])
    from memory.embedder import load_embedder

    embedder = load_embedder(args.embedder, idle_release=None)
    query = embedder.embed(["what did I say about my sister's birthday?"])[0]
    mark(PIECES[5])
    from memory.longterm import VectorIndex

    index = VectorIndex.open(
        path=args.chroma or scratch / "chroma", embedder=embedder.name, dim=embedder.dim
    )
    mark(PIECES[6])
    if args.user is not None:
        index.query(args.user, query, 8)
    else:
        index.upsert(1, [1], query.reshape(1, -1))  # an empty collection, as on a first start
        index.query(1, query, 8)
    mark(PIECES[7])
    import bot.channels.telegram

    mark(PIECES[8])
    import bot.web.console  # noqa: F401

    mark(PIECES[9])
    loop.run_until_complete(stores.close())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--chroma", type=Path, help="an existing Chroma folder to open")
    p.add_argument("--user", type=int, help="the user whose collection is queried")
    p.add_argument("--embedder", default="minilm", help="STEWARD_EMBEDDER value")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args)))
        return 0
    results = breakdown(chroma=args.chroma, user=args.user, embedder=args.embedder)
    for label, figure in rows(results):
        print(f"{label:<48} {figure:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
