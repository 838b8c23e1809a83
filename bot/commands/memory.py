"""/memory and /remember: the owner sees and corrects what Steward believes.

Every user sees only their own memories. Also the `steward memory export|import` command line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agent.tools.memory import describe
from bot.commands.registry import CommandContext, CommandGroup, UsageError
from memory.longterm import Kind, LongTermMemory, Memory, NewMemory, Source, Trust

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.memory_service import MemoryService

__all__ = ["group", "memory_cli"]

group = CommandGroup()

RECENT = 10


def _service(ctx: CommandContext) -> MemoryService:
    service = ctx.steward.memory
    if service is None:
        raise UsageError("Long-term memory is not enabled.")
    return service


def _memory_id(text: str) -> int:
    value = text.strip().lstrip("#")
    if not value.isdigit():
        raise UsageError(f"{text.strip() or 'The id'!s} is not a memory id (a number such as 12).")
    return int(value)


@group.command(
    "memory",
    summary="what I remember about you: recent, search, show, forget",
    usage="/memory | /memory search <words> | /memory show <id> | /memory forget <id>",
    example="/memory search sister's birthday",
)
async def memory_command(ctx: CommandContext) -> str:
    service = _service(ctx)
    action, _, rest = ctx.call.args.partition(" ")
    action, rest = action.lower(), rest.strip()
    if not action:
        return await _recent(ctx, service)
    if action == "search":
        if not rest:
            raise UsageError("What should I search for?")
        result = await service.search(ctx.user.id, rest, 10)
        if not result.hits:
            return f"No memories match “{rest}”."
        lines = [describe(hit.memory) for hit in result.hits]
        if result.mode == "keyword":
            lines.append("(keyword search only)")
        return "\n".join(lines)
    if action == "show":
        return await _show(ctx, service, _memory_id(rest))
    if action == "forget":
        memory_id = _memory_id(rest)
        forgotten = await service.forget(ctx.user.id, memory_id)
        if forgotten is None:
            return f"You have no memory #{memory_id}."
        await ctx.steward.stores.audit.record(
            "memory.forgotten", actor=str(ctx.message.sender), subject=f"memory:{memory_id}"
        )
        return f"Forgotten #{memory_id}: {forgotten.text}"
    raise UsageError(f"I don't know /memory {action}.")


async def _recent(ctx: CommandContext, service: MemoryService) -> str:
    memories = await service.store.recent(ctx.user.id, RECENT)
    status = await service.status_line()
    if not memories:
        return f"I don't remember anything about you yet. Tell me, or use /remember.\n{status}"
    total = await service.store.records.count(ctx.user.id)
    lines = [f"The {len(memories)} most recent of {total} memories:"]
    lines += [describe(m) for m in memories]
    lines.append("/memory show <id> for where one came from; /memory forget <id> to remove it.")
    lines.append(status)
    return "\n".join(lines)


async def _show(ctx: CommandContext, service: MemoryService, memory_id: int) -> str:
    memory = await service.store.get(ctx.user.id, memory_id)
    if memory is None:
        return f"You have no memory #{memory_id}."
    records = service.store.records
    lines = [
        f"#{memory.id} {memory.text}",
        f"Kind: {memory.kind.value}" + (f", subject “{memory.subject}”" if memory.subject else ""),
        f"Source: {_source(memory)}",
        f"Trust: {memory.trust.value}",
        f"Importance: {memory.importance:.2f}",
        f"Saved: {memory.created_at:%Y-%m-%d %H:%M} UTC",
    ]
    where = []
    if memory.chat_id is not None:
        chat = await ctx.steward.stores.people.chat_by_id(memory.chat_id)
        if chat is not None:
            where.append(f"chat {chat.channel}:{chat.platform_chat_id}")
    if memory.turn_id is not None:
        where.append(f"turn {memory.turn_id}")
    if memory.source_ref:
        where.append(memory.source_ref)
    if where:
        lines.append("From: " + ", ".join(where))
    if memory.superseded_at is not None:
        newer = (
            await records.get(ctx.user.id, memory.superseded_by)
            if memory.superseded_by is not None
            else None
        )
        replaced = f"#{newer.id} {newer.text}" if newer else "a memory since forgotten"
        lines.append(
            f"Superseded on {memory.superseded_at:%Y-%m-%d} by {replaced}; "
            "kept here, but no longer recalled."
        )
    older = await records.replaced_by(ctx.user.id, memory.id)
    if older:
        lines.append("Replaces: " + "; ".join(f"#{m.id} {m.text}" for m in older))
    return "\n".join(lines)


def _source(memory: Memory) -> str:
    return {
        Source.OWNER_SAID: "you said it",
        Source.USER_SAID: "the user said it",
        Source.MODEL_INFERRED: "inferred by the model",
        Source.WEB: "a web page",
        Source.FEED: "a feed",
        Source.TOOL: "a tool's output",
    }[memory.source]


@group.command(
    "remember",
    summary="save something for me to remember",
    usage="/remember <text>",
    example="/remember My sister Priya's birthday is 3 March",
)
async def remember_command(ctx: CommandContext) -> str:
    service = _service(ctx)
    text = ctx.call.args.strip()
    if not text:
        raise UsageError("What should I remember?")
    owner = ctx.user.is_owner
    try:
        saved = await service.remember(
            NewMemory(
                user_id=ctx.user.id,
                text=text,
                kind=Kind.NOTE,
                source=Source.OWNER_SAID if owner else Source.USER_SAID,
                trust=Trust.TRUSTED if owner else Trust.UNTRUSTED,
                importance=0.6,
                chat_id=ctx.chat.id,
                source_ref="/remember",
            )
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if saved.duplicate:
        return f"I already remember that (#{saved.memory.id})."
    reply = f"Remembered #{saved.memory.id}: {saved.memory.text}"
    if saved.superseded:
        reply += "\nIt replaces " + "; ".join(f"#{m.id} {m.text}" for m in saved.superseded)
    return reply


# -- command line: steward memory export | import ---------------------------------------------


async def memory_cli(
    settings: Settings, action: str, path: str | None, *, out: TextIO | None = None
) -> int:
    """`steward memory export [FILE]` writes every memory as JSONL (stdout without FILE);
    `steward memory import FILE` reads them back into this Steward's database."""
    from agent.memory_portability import MemoryPortability
    from memory.clock import SystemClock
    from memory.stores import Stores

    out = out or sys.stdout
    clock = SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stores = await Stores.open(settings.database_path, clock)
    try:
        # Export and import need no embedder: vectors are rebuilt when Steward next starts.
        portability = MemoryPortability(LongTermMemory.from_stores(stores, clock), stores.people)
        if action == "export":
            records = await portability.export_records()
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            if path and path != "-":
                await asyncio.to_thread(Path(path).write_text, lines, encoding="utf-8")
                print(f"{len(records)} memories written to {path}", file=sys.stderr)
            else:
                out.write(lines)
            return 0
        if not path:
            print(
                "steward memory import: which file? (JSONL from `memory export`)", file=sys.stderr
            )
            return 2
        from bot.channels.console import CONSOLE_IDENTITY

        await stores.people.ensure_owner([CONSOLE_IDENTITY, *settings.owner])  # as `run` does
        try:
            records_in = await asyncio.to_thread(_read_jsonl, path)
        except (OSError, ValueError) as exc:
            print(f"steward memory import: {exc}", file=sys.stderr)
            return 2
        report = await portability.import_records(records_in)
        await stores.audit.record(
            "memory.imported",
            actor="cli",
            imported=report.imported,
            duplicates=report.skipped_duplicates,
            unknown_user=report.skipped_unknown_user,
        )
        print(
            f"{report.imported} memories imported, {report.skipped_duplicates} already there, "
            f"{report.skipped_unknown_user} skipped (no such user here). Keyword search has them "
            "now; their vectors are built when Steward next starts.",
            file=sys.stderr,
        )
        for error in report.errors:
            print(f"  {error}", file=sys.stderr)
        return 1 if report.errors else 0
    finally:
        await stores.close()


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    """The records of a JSONL file ("-": standard input); ValueError names a bad line."""
    source = sys.stdin if path == "-" else Path(path).open(encoding="utf-8")  # noqa: SIM115
    try:
        records: list[dict[str, Any]] = []
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number} is not JSON: {exc}") from None
            if not isinstance(record, dict):
                raise ValueError(f"line {number} is not a JSON object")
            records.append(record)
        return records
    finally:
        if source is not sys.stdin:
            source.close()
