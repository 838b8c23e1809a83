"""Memories in and out as JSON records (`steward memory export | import`, one per JSONL line).

A record carries who the memory belongs to by that user's identities (and whether they are the
owner) and where it was said by channel and platform chat id, not by this database's ids, so a
file read into another Steward lands on the same people. Importing the same file twice adds
nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from memory.clock import parse_iso
from memory.longterm import LongTermMemory
from memory.people import UNKNOWN_KIND, Identity, People

__all__ = ["ImportReport", "MemoryPortability", "records_of"]


def records_of(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The records of an export's lines (JSONL: one object a line, blank lines skipped); a
    ValueError names the first line that is not one. Lines are split on "\n" by the caller:
    a name or subject may hold U+2028, which `str.splitlines` also splits on."""
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested past Python's limit
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is not a JSON object")
        records.append(record)
    return records


@dataclass
class ImportReport:
    imported: int = 0
    skipped_duplicates: int = 0
    skipped_unknown_user: int = 0
    errors: list[str] = field(default_factory=list)


class MemoryPortability:
    """Export and import of long-term memory; needs no embedder (vectors follow at start-up)."""

    def __init__(self, store: LongTermMemory, people: People) -> None:
        self._store = store
        self._people = people

    async def export_records(self) -> list[dict[str, Any]]:
        """Every memory (superseded ones too) with who and where it belongs, for JSONL."""
        people = self._people
        users: dict[int, dict[str, Any]] = {}
        chats: dict[int, dict[str, Any] | None] = {}
        out: list[dict[str, Any]] = []
        for memory in await self._store.records.all():
            if memory.user_id not in users:
                user = await people.get(memory.user_id)
                identities = await people.identities_of(memory.user_id)
                users[memory.user_id] = {
                    "id": memory.user_id,
                    "name": user.display_name if user else "",
                    "owner": bool(user and user.is_owner),
                    "identities": [str(i) for i in identities],
                }
            if memory.chat_id is not None and memory.chat_id not in chats:
                chat = await people.chat_by_id(memory.chat_id)
                chats[memory.chat_id] = (
                    {"channel": chat.channel, "platform_chat_id": chat.platform_chat_id}
                    if chat
                    else None
                )
            record = memory.as_record()
            record["user"] = users[memory.user_id]
            record["chat"] = chats.get(memory.chat_id) if memory.chat_id is not None else None
            out.append(record)
        return out

    async def import_records(self, records: Iterable[dict[str, Any]]) -> ImportReport:
        """Read exported memories back: each goes to the user with one of its identities (or
        the owner, for the owner's); a memory already there (same user, text and time) is
        skipped; supersession links are kept. Vectors follow at the next start-up."""
        people = self._people
        memories = self._store.records
        report = ImportReport()
        id_map: dict[int, int] = {}
        links: list[tuple[int, int]] = []
        owner = await people.owner()
        for number, record in enumerate(records, 1):
            try:
                if not (
                    isinstance(record.get("text"), str)
                    and isinstance(record.get("created_at"), str)
                    and "id" in record
                ):
                    raise ValueError("not an exported memory (it needs text, created_at and id)")
                about = record.get("user") or {}
                user = None
                for text in about.get("identities", []):
                    user = await people.resolve(Identity.parse(text))
                    if user is not None:
                        break
                if user is None and about.get("owner") and owner is not None:
                    user = owner
                if user is None:
                    report.skipped_unknown_user += 1
                    continue
                exists = await memories.existing_id(
                    user.id, str(record["text"]), parse_iso(record["created_at"])
                )
                if exists is not None:
                    id_map[int(record["id"])] = exists
                    report.skipped_duplicates += 1
                    continue
                chat_id = None
                if record.get("chat"):
                    # Whether a chat is private or a group is the platform's to say, not a
                    # file's: a chat first met here waits, of unknown kind (counted as not
                    # private), until a channel reports it.
                    chat = await people.chat(
                        record["chat"]["channel"], record["chat"]["platform_chat_id"], UNKNOWN_KIND
                    )
                    chat_id = chat.id
                new_id = await memories.restore(record, user_id=user.id, chat_id=chat_id)
                id_map[int(record["id"])] = new_id
                if record.get("superseded_by"):
                    links.append((new_id, int(record["superseded_by"])))
                report.imported += 1
            except Exception as exc:  # whatever a hand-edited file holds (a string for a
                # user, Infinity for an id): the record is named and skipped, the rest go in
                # and the import is audited
                report.errors.append(f"record {number}: {exc}")
        for new_id, old_target in links:
            await memories.link_superseded(new_id, id_map.get(old_target))
        return report
