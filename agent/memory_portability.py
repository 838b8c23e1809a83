"""Memories in and out as JSON records (`steward memory export | import`, one per JSONL line).

A record carries who the memory belongs to by that user's identities (and whether they are the
owner) and where it was said by channel and platform chat id, not by this database's ids, so a
file read into another Steward lands on the same people. Importing the same file twice adds
nothing the second time. The file is only text: `"owner": true` without one of the owner's
identities here makes a record outside content, never the owner's trusted word (review 57).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any

from agent.recall import CORE_IMPORTANCE
from memory.clock import parse_iso
from memory.longterm import Kind, LongTermMemory, Source, Trust
from memory.longterm.types import MAX_TEXT_CHARS, normalize_text
from memory.people import UNKNOWN_KIND, Identity, People, User
from memory.visible import visible

__all__ = ["OUTSIDE_MAX_IMPORTANCE", "ImportReport", "MemoryPortability", "records_of"]

OUTSIDE_MAX_IMPORTANCE = round(CORE_IMPORTANCE - 0.05, 2)
"""At most this important, a record imported as outside content (not the owner's by identity):
at CORE_IMPORTANCE a memory joins every turn's context."""


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
    outside: int = 0
    """Of those imported, how many went in as outside content (no identity of the owner's)."""
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

    async def import_records(
        self, records: Iterable[dict[str, Any]], *, origin: str = ""
    ) -> ImportReport:
        """Read exported memories back: each goes to the user with one of its identities; a
        memory already there (same user, text and time) is skipped, but retired when the file
        says it was corrected since; supersession links are kept (a cycle of them is broken).
        A record that claims to be the owner's without an identity of theirs is not their word:
        it is imported untrusted, labelled `import:<origin>` (the file's name), below the
        importance that puts a memory in every turn. Vectors follow at the next start-up."""
        records = list(records)
        report = ImportReport()
        ids: dict[int, int] = {}
        links: list[_Link] = []
        owner = await self._people.owner()
        source = f"import:{_origin_name(origin)}"
        fresh: list[tuple[int, int]] = []  # (user, memory) imported now, or found already in
        for number, record in enumerate(records, 1):
            try:
                link = await self._import_one(number, record, owner, source, ids, report, fresh)
            except Exception as exc:  # whatever a hand-edited file holds (a string for a
                # user, Infinity for an id): the record is named and skipped, the rest go in
                # and the import is audited
                report.errors.append(f"record {number}: {exc}")
                continue
            if link is not None:
                links.append(link)
        await self._link(links, ids, _on_cycles(_supersessions(records)), report)
        for user_id in {user for user, _ in fresh}:  # one current value a subject, as saved
            mine = [memory for user, memory in fresh if user == user_id]
            await self._store.settle_subjects(user_id, mine)
        return report

    async def _import_one(
        self,
        number: int,
        record: dict[str, Any],
        owner: User | None,
        source: str,
        ids: dict[int, int],
        report: ImportReport,
        fresh: list[tuple[int, int]],
    ) -> _Link | None:
        """One record in (or counted as skipped); the supersession it names, set afterwards."""
        memories = self._store.records
        if not (
            isinstance(record.get("text"), str)
            and isinstance(record.get("created_at"), str)
            and "id" in record
        ):
            raise ValueError("not an exported memory (it needs text, created_at and id)")
        user, theirs = await self._whose(record, owner)
        if user is None:
            report.skipped_unknown_user += 1
            return None
        if not theirs:
            record = _as_outside(record, source)
        if problem := _record_problem(record):
            raise ValueError(problem)
        file_id, target = int(record["id"]), _target(record)
        exists = await memories.existing_id(
            user.id, str(record["text"]), parse_iso(record["created_at"])
        )
        if exists is not None:
            ids[file_id] = exists
            report.skipped_duplicates += 1
            # an import killed part-way and run again: what it put in settles now (R116)
            fresh.append((user.id, exists))
            return await self._corrected_since(number, record, user.id, exists, theirs)
        chat_id = None
        where = record.get("chat")
        if where and not (
            isinstance(where, dict)
            and isinstance(where.get("channel"), str)
            and isinstance(where.get("platform_chat_id"), str)
        ):
            raise ValueError('its chat is not {"channel": …, "platform_chat_id": …}')
        if where:
            # Whether a chat is private or a group is the platform's to say, not a file's: a
            # chat first met here waits, of unknown kind (counted as not private), until a
            # channel reports it.
            chat = await self._people.chat(
                record["chat"]["channel"], record["chat"]["platform_chat_id"], UNKNOWN_KIND
            )
            chat_id = chat.id
        new_id = await memories.restore(record, user_id=user.id, chat_id=chat_id)
        ids[file_id] = new_id
        fresh.append((user.id, new_id))
        report.imported += 1
        report.outside += not theirs
        return _Link(number, file_id, new_id, user.id, target) if target is not None else None

    async def _whose(self, record: dict[str, Any], owner: User | None) -> tuple[User | None, bool]:
        """The user a record belongs to, and whether one of its identities says so. A file's
        `"owner": true` alone is anyone's claim: such a record goes to the owner, not as
        theirs."""
        about = record.get("user") or {}
        identities = about.get("identities", []) if isinstance(about, dict) else None
        if not isinstance(identities, list) or not all(isinstance(t, str) for t in identities):
            # R186: `"user": "joe"` said "'str' object has no attribute 'get'"
            raise ValueError(
                'its user is not {"identities": [...]}: e.g. "user": {"identities": '
                '["telegram:123456"]}'
            )
        for text in identities:
            user = await self._people.resolve(Identity.parse(text))
            if user is not None:
                return user, True
        if about.get("owner") and owner is not None:
            return owner, False
        return None, False

    async def _corrected_since(
        self, number: int, record: dict[str, Any], user_id: int, exists: int, theirs: bool
    ) -> _Link | None:
        """A memory already here that the file says was replaced (corrected on the machine it
        came from after an earlier export was imported here): retired as a correction would
        retire it, once the file's replacement is in. Only the user's own record can retire
        their memory."""
        if not (theirs and record.get("superseded_at")):
            return None
        existing = await self._store.records.get(user_id, exists)
        if existing is None:
            return None
        if existing.superseded_at is not None:
            # replaced here already: what happened here stands; only a link an import killed
            # before its end left out is set (R116: replaced by nothing)
            if existing.superseded_by is None and _target(record) is not None:
                return _Link(number, int(record["id"]), exists, user_id, _target(record))
            return None
        at = parse_iso(str(record["superseded_at"]))
        return _Link(number, int(record["id"]), exists, user_id, _target(record), retire_at=at)

    async def _link(
        self, links: list[_Link], ids: dict[int, int], cyclic: set[int], report: ImportReport
    ) -> None:
        """Supersession by the file's ids, now that every record has one here. A cycle (A
        replaced by B, B by A: both recalled, each naming the other as its correction) is
        left unlinked and named."""
        memories = self._store.records
        for link in links:
            target = None
            if link.target is not None and link.file_id in cyclic:
                report.errors.append(
                    f"record {link.number}: its superseded_by is part of a cycle; left unlinked"
                )
            elif link.target is not None:
                target = ids.get(link.target)
            if link.retire_at is not None:
                await memories.retire(link.user_id, link.memory_id, target, link.retire_at)
            else:
                await memories.link_superseded(link.memory_id, target)


@dataclass(frozen=True)
class _Link:
    """A supersession an imported record names, applied once every record is in."""

    number: int  # the record's place in the file, for errors
    file_id: int
    memory_id: int  # its id here
    user_id: int
    target: int | None  # the file's id of what replaced it
    retire_at: datetime | None = None  # a memory already here: retire it (when the file says)


def _target(record: dict[str, Any]) -> int | None:
    return int(record["superseded_by"]) if record.get("superseded_by") else None


def _supersessions(records: Iterable[dict[str, Any]]) -> dict[int, int]:
    """The file's supersession links (its id: the id of what replaced it), readable ones."""
    graph: dict[int, int] = {}
    for record in records:
        try:
            target = _target(record)
            if target is not None:
                graph[int(record["id"])] = target
        except (TypeError, ValueError, OverflowError, KeyError, AttributeError):
            continue  # the record itself is refused, and named, by the import
    return graph


def _on_cycles(graph: dict[int, int]) -> set[int]:
    """The ids on a cycle of `graph` (each id to the one that replaced it), in one pass."""
    done: set[int] = set()
    cyclic: set[int] = set()
    for start in graph:
        path: list[int] = []
        on_path: set[int] = set()
        node = start
        while node in graph and node not in done and node not in on_path:
            path.append(node)
            on_path.add(node)
            node = graph[node]
        if node in on_path:  # came back onto this walk: a cycle from `node` on
            cyclic.update(path[path.index(node) :])
        done.update(path)
    return cyclic


_DATE_EXAMPLE = "e.g. 2026-12-07T09:30:00+00:00"


def _record_problem(record: dict[str, Any]) -> str | None:
    """Why a record cannot be a memory, in the file's own terms (None: it can). R183: the
    import said the database's or Python's words ("CHECK constraint failed: length(text) > 0",
    "date value out of range", "not a memory to import: 'xxxx…'" for 100 KB of text)."""
    text = normalize_text(str(record["text"]))
    if not visible(text):  # blank, or marks alone, as a save refuses them (review 121)
        return "its text is empty"
    if text.startswith("\x00"):  # SQLite counts a text's length up to its first NUL: 0
        return "its text begins with a NUL character (\\0)"
    if len(text) > MAX_TEXT_CHARS:
        return f"its text is {len(text):,} characters long; a memory is at most {MAX_TEXT_CHARS:,}"
    for name in ("created_at", "superseded_at"):
        if name == "created_at" or record.get(name):
            try:
                parse_iso(str(record[name]))
            except OverflowError:  # a year past 9999 (or before 1) once in UTC
                return f"its {name} is out of range (years 1 to 9999): {_DATE_EXAMPLE}"
            except ValueError:
                return f"its {name} is not a date and time: {_DATE_EXAMPLE}"
    try:
        importance = float(record.get("importance", 0.5))
    except (TypeError, ValueError):
        importance = None
    if importance is None or not 0.0 <= importance <= 1.0:
        return "its importance is not a number from 0 to 1"
    for name, known in (("kind", list(Kind)), ("source", list(Source))):
        if record.get(name) not in known:  # a list: a JSON array or object is no hashable key
            named = ", ".join(value for value in known if value is not Kind.MESSAGE)
            return f"its {name} is not one of {named}"
    for name in ("id", "superseded_by"):
        if name == "id" or record.get(name):
            try:
                int(record[name])
            except (TypeError, ValueError, OverflowError):
                return f"its {name} is not a whole number"
    return None


def _as_outside(record: dict[str, Any], source: str) -> dict[str, Any]:
    """A record imported as outside content: untrusted, labelled with the file, and below
    CORE_IMPORTANCE so it never rides in every turn. A label that is not a list, or an
    importance out of range, stays for `restore` to refuse."""
    label = record.get("label") or []
    importance = record.get("importance", 0.5)
    try:  # "0.99" as well as 0.99: `restore` reads it with float()
        value = float(importance)
    except (TypeError, ValueError):
        value = None
    if value is not None and 0.0 <= value <= 1.0:
        importance = min(value, OUTSIDE_MAX_IMPORTANCE)
    return {
        **record,
        "trust": Trust.UNTRUSTED.value,
        "label": [*label, source] if isinstance(label, list) else label,
        "importance": importance,
    }


def _origin_name(origin: str) -> str:
    """The file's name as a label says it: no folders, one line, not too long."""
    name = " ".join(PurePath(origin.replace("\\", "/")).name.split())
    return (name[:60] + "…" if len(name) > 60 else name) or "file"
