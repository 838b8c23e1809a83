"""`steward memory export [FILE]` and `steward memory import FILE`: every memory as JSONL, and
back into this Steward's database (no embedder needed: vectors are rebuilt at the next start).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agent.memory_portability import records_of
from memory.longterm import LongTermMemory
from memory.stores import Stores

if TYPE_CHECKING:
    from agent.config import Settings

__all__ = ["memory_cli"]


async def memory_cli(
    settings: Settings, action: str, path: str | None, *, out: TextIO | None = None
) -> int:
    """`steward memory export [FILE]` writes every memory as JSONL (stdout without FILE);
    `steward memory import FILE` reads them back into this Steward's database."""
    from agent.memory_portability import MemoryPortability
    from bot.admin import write_output
    from memory.clock import SystemClock

    out = out or sys.stdout
    clock = SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stores = await Stores.open(settings.database_path, clock, upgrade=False)
    try:
        # Export and import need no embedder: vectors are rebuilt when Steward next starts.
        portability = MemoryPortability(LongTermMemory.from_stores(stores, clock), stores.people)
        if action == "export":
            records = await portability.export_records()
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            if path and path != "-":  # the owner's alone, an existing file too (R183)
                await asyncio.to_thread(write_output, path, lines, kind="memory")
                noun = "memory" if len(records) == 1 else "memories"
                print(f"{len(records)} {noun} written to {path}", file=sys.stderr)
            else:
                out.write(lines)
            return 0
        if not path:
            print(
                "steward memory import: which file? (JSONL from `memory export`)", file=sys.stderr
            )
            return 2
        from bot.owner import CONSOLE_IDENTITY

        await stores.people.ensure_owner([CONSOLE_IDENTITY, *settings.owner])  # as `run` does
        try:
            records_in = await asyncio.to_thread(_read_jsonl, path)
        except OSError as exc:
            print(f"steward memory import: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"steward memory import: {exc}", file=sys.stderr)
            return 2
        origin = "stdin" if path == "-" else path
        report = await portability.import_records(records_in, origin=origin)
        await stores.audit.record(
            "memory.imported",
            actor="cli",
            imported=report.imported,
            duplicates=report.skipped_duplicates,
            unknown_user=report.skipped_unknown_user,
            outside=report.outside,
        )
        print(
            f"{report.imported} memories imported, {report.skipped_duplicates} already there, "
            f"{report.skipped_unknown_user} skipped (no such user here). Keyword search has them "
            "now; their vectors are built when Steward next starts.",
            file=sys.stderr,
        )
        if report.outside:
            print(f"  {_outside_said(report.outside)}", file=sys.stderr)
        for error in report.errors:
            print(f"  {error}", file=sys.stderr)
        return 1 if report.errors else 0
    finally:
        await stores.close()


def _outside_said(count: int) -> str:
    """The import's records that named none of the owner's identities here."""
    return (
        f"{count} of them named none of your identities here: kept as outside content "
        "(untrusted, labelled with the file), not as something you said."
    )


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    """The records of a JSONL file ("-": standard input); ValueError names a bad line."""
    source = sys.stdin if path == "-" else Path(path).open(encoding="utf-8-sig")  # noqa: SIM115
    try:
        return records_of(source)
    finally:
        if source is not sys.stdin:
            source.close()
