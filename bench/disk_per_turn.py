"""What one turn writes to disk: `steward run` against the loopback fakes (as `make bench` starts
it), N turns in one chat, then the bytes each table and index grew by (SQLite's dbstat), the WAL,
and Chroma's files.

    .venv/bin/python bench/disk_per_turn.py              # 300 turns
    .venv/bin/python bench/disk_per_turn.py --turns 100 --keep
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import dir_mib, drive_turns
from steward_side import OWNER_TG, steward


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes of pages per table and index (committed state, WAL included)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    out = {str(name): int(size) for name, size in rows}
    out["(freelist)"] = int(free) * int(page)
    return out


def row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%'"
            )
        ]
        counts = {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}
    conn.close()
    return counts


def files(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    return {str(f.relative_to(path)): f.stat().st_size for f in path.rglob("*") if f.is_file()}


def wal_resets(data: Path) -> int:
    """The WAL header's checkpoint sequence: how many times the WAL was started over."""
    try:
        with (data / "steward.db-wal").open("rb") as wal:
            head = wal.read(16)
    except FileNotFoundError:
        return 0
    return int.from_bytes(head[12:16], "big") if len(head) == 16 else 0


def sizes(data: Path) -> dict[str, float]:
    return {
        "wal_resets": wal_resets(data),
        "db": dir_mib(data / "steward.db"),
        "wal": dir_mib(data / "steward.db-wal"),
        "chroma": dir_mib(data / "chroma"),
        "other": dir_mib(data)
        - dir_mib(data / "steward.db")
        - dir_mib(data / "steward.db-wal")
        - dir_mib(data / "chroma"),
    }


async def measure(work: Path, turns: int, settle: float) -> dict[str, Any]:
    data = work / "data"
    async with steward(data, 0.0, work / "steward.log") as run:
        await drive_turns(run.tg, run.fa, 1, chat=OWNER_TG, start_seq=10**6)
        await asyncio.sleep(settle)
        before = (sizes(data), table_bytes(data / "steward.db"), row_counts(data / "steward.db"))
        chroma0 = files(data / "chroma")
        await drive_turns(run.tg, run.fa, turns, chat=OWNER_TG)
        await asyncio.sleep(settle)  # background upkeep (embedding, indexing) catches up
        after = (sizes(data), table_bytes(data / "steward.db"), row_counts(data / "steward.db"))
        chroma1 = files(data / "chroma")
    stopped = sizes(data)
    return {
        "before": before,
        "after": after,
        "stopped": stopped,
        "chroma": (chroma0, chroma1),
        "turns": turns,
    }


def report(m: dict[str, Any]) -> None:
    turns = m["turns"]
    (s0, t0, r0), (s1, t1, r1) = m["before"], m["after"]
    print(f"\n{turns} turns in one chat; growth per turn (bytes), per 1,000 turns (MiB)")
    print(f"{'table / index':40} {'B/turn':>9} {'MiB/1000':>9}")
    total = 0
    for name in sorted(set(t0) | set(t1), key=lambda n: -(t1.get(n, 0) - t0.get(n, 0))):
        grew = t1.get(name, 0) - t0.get(name, 0)
        total += grew
        if grew:
            print(f"{name:40} {grew / turns:9.0f} {grew / turns * 1000 / 2**20:9.2f}")
    print(f"{'(all pages)':40} {total / turns:9.0f} {total / turns * 1000 / 2**20:9.2f}")
    print("\nrows added per turn:")
    for name in sorted(r1):
        grew = r1[name] - r0.get(name, 0)
        if grew:
            print(f"  {name:38} {grew / turns:6.2f}")
    print("\nfiles, MiB per 1,000 turns (while running):")
    for key in ("db", "wal", "chroma", "other"):
        print(f"  {key:10} {(s1[key] - s0[key]) / turns * 1000:8.2f}   (now {s1[key]:.2f} MiB)")
    resets = s1["wal_resets"] - s0["wal_resets"]
    print(f"  WAL started over {resets} times ({resets / turns:.3f} a turn)")
    both = sum(s1[k] - s0[k] for k in ("db", "wal", "chroma"))
    print(f"  {'total':10} {both / turns * 1000:8.2f}")
    st = m["stopped"]
    print(f"after stop: db {st['db']:.2f} wal {st['wal']:.2f} chroma {st['chroma']:.2f} MiB")
    c0, c1 = m["chroma"]
    print("\nchroma files (bytes grown per turn):")
    for name in sorted(c1):
        grew = c1[name] - c0.get(name, 0)
        if grew:
            print(f"  {name:60} {grew / turns:8.0f}  (size {c1[name]:,})")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=300)
    p.add_argument("--settle", type=float, default=3.0, help="s for background work to finish")
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="steward-disk-"))
    try:
        report(asyncio.run(measure(work, args.turns, args.settle)))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
