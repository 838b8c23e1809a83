"""/memory and /remember: the owner sees and corrects what Steward believes.

Every user sees only their own memories; in a group (or a channel), where everyone reads the
answer, only what was said or kept in that chat (`agent.recall.group_scope`). The command line's
`steward memory export|import` is `bot.commands.memory_cli`.

(Some 450 lines: seven subcommands sharing one parser, its usage and its id handling.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from agent.cards import describe_sources
from agent.delivery import Unrecorded
from agent.memory_corrections import correct_memory, correction_said
from agent.memory_view import describe_deeper, describe_found, literal_words, source_words
from agent.recall import group_scope
from bot.commands.ids import GivenIds, as_id, digits_of_id, ids_and_skipped
from bot.commands.privacy import IN_PRIVATE, in_group
from bot.commands.registry import CommandGroup, UsageError
from memory.longterm import Kind, Memory, NewMemory, Source, Trust
from memory.people import Chat, Identity, User
from memory.stores import Stores

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.forgetting import Forgotten
    from agent.forgotten_files import FilesForgotten
    from agent.memory_service import MemoryService

__all__ = ["group"]

group = CommandGroup()

RECENT = 10
GUEST_MEMORIES = 1_000
"""Memories another person may keep with /remember (the owner: no limit)."""
MOST = 100  # the longest list one answer gives; `before <id>` reaches the rest
QUOTED = 80
"""The most of a search's words a "nothing matches" answer quotes back."""
_NO_ID = "The id is not a memory id (a number such as 12)."
_FORGET_WHICH = "Which memory should I forget? Give its id from /memory: /memory forget 12"
_SHOW_WHICH = "Which memory? Give its id from /memory: /memory show 12"
MEMORY_IN_PRIVATE = IN_PRIVATE + " (/memory search <words> here searches this chat's.)"


def _zone(user: User, settings: Settings) -> ZoneInfo:
    """The owner's timezone (/timezone), as every list and date shows it."""
    return ZoneInfo(user.timezone or settings.timezone)


memory_command = group.command(
    "memory",
    summary="what I remember about you: recent, search, show, correct, forget",
    usage="/memory [recent [<count>] [before <id>]] | /memory search <words> | "
    "/memory show <id> | /memory correct <id> <text> | /memory forget <id> [<id>...]",
    example="/memory search sister's birthday",
)
remember_command = group.command(
    "remember",
    summary="save something for me to remember",
    usage="/remember <text>",
    example="/remember My sister Priya's birthday is 3 March",
    missing="What should I remember?",
)


def _memory_id(text: str) -> int:
    problem = f"{text.strip()[:40] or 'The id'!s} is not a memory id (a number such as 12)."
    return int(digits_of_id(text, problem))


@memory_command.sub("")
async def recent(user: User, chat: Chat, memory: MemoryService, settings: Settings) -> str:
    return await _recent(user, chat, memory, settings, RECENT)


# before "recent [count]", whose `problem` answers any other words after "recent"
@memory_command.sub(
    "recent <count> before <before>", count=lambda t: _count(t), before=lambda t: _before(t)
)
@memory_command.sub(
    "list <count> before <before>", count=lambda t: _count(t), before=lambda t: _before(t)
)
async def recent_before(
    count: int, before: int, user: User, chat: Chat, memory: MemoryService, settings: Settings
) -> str:
    """The next page: `/memory recent 100 before 21` lists the 100 after #21 (older)."""
    return await _recent(user, chat, memory, settings, count, before)


@memory_command.sub("recent before <before>", before=lambda t: _before(t))
@memory_command.sub("list before <before>", before=lambda t: _before(t))
async def recent_before_default(
    before: int, user: User, chat: Chat, memory: MemoryService, settings: Settings
) -> str:
    return await _recent(user, chat, memory, settings, RECENT, before)


_RECENT_HOW = (
    "/memory recent 30 lists the 30 most recent memories (up to 100); "
    "/memory recent 30 before 12 the 30 after #12."
)


@memory_command.sub("recent [count]", problem=_RECENT_HOW, count=lambda text: _count(text))
@memory_command.sub("list [count]", problem=_RECENT_HOW, count=lambda text: _count(text))
async def recent_count(
    count: int | None, user: User, chat: Chat, memory: MemoryService, settings: Settings
) -> str:
    return await _recent(user, chat, memory, settings, count or RECENT)


async def _recent(
    user: User,
    chat: Chat,
    memory: MemoryService,
    settings: Settings,
    count: int,
    before: int | None = None,
) -> str:
    """A page of the list, newest first: the first, or the one after #`before`; when more are
    left, the answer ends with the command that lists them."""
    if group_scope(chat) is not None:
        return MEMORY_IN_PRIVATE
    records = memory.store.records
    if before is None:
        page = await memory.store.recent(user.id, count + 1)
    else:
        found = await records.recent_before(user.id, before, count + 1)
        if found is None:
            return (
                f"You have no memory #{before} to list from: /memory recent {count} lists the "
                "most recent."
            )
        page = found
    status = await memory.status_line(user.id, detailed=user.is_owner)
    if not page:
        if before is not None:
            return f"No memories are listed after #{before}: that was the oldest.\n{status}"
        return f"I don't remember anything about you yet. Tell me, or use /remember.\n{status}"
    memories, more = page[:count], len(page) > count
    total = await records.count(user.id)
    if before is None:
        lines = [f"The {len(memories)} most recent of {total} memories:"]
    else:
        lines = [f"The {len(memories)} listed after #{before} (older), of {total} memories:"]
    lines += [m.describe(_zone(user, settings)) for m in memories]
    if more:
        lines.append(f"Older ones: /memory recent {count} before {memories[-1].id}")
    lines.append(
        "/memory show <id> for where one came from; /memory correct <id> <text> to put it "
        "right; /memory forget <id> to remove it."
    )
    lines.append(status)
    return "\n".join(lines)


def _count(text: str) -> int:
    """How many memories to list: `/memory recent 30` (1 to 100)."""
    number = as_id(text)
    if number is None or not 1 <= number <= MOST:
        raise UsageError(
            f"{text[:20]!r} is not a count: /memory recent 30 lists 30 (up to {MOST}); "
            "/memory recent 30 before 12 the 30 after #12."
        )
    return number


def _before(text: str) -> int:
    """The memory a page starts after: `before 12`, `before #12`."""
    number = as_id(text)
    if number is None:
        raise UsageError(
            f"{text[:20]!r} is not a memory id: /memory recent 30 before 12 lists the 30 after #12."
        )
    return number


@memory_command.sub("search <query...>", problem="What should I search for?")
async def search(
    query: str, user: User, chat: Chat, memory: MemoryService, settings: Settings
) -> str:
    """Memories and past messages, each saying which it is, when and its trust label; a
    message with the turns around it (a date in the query, "in May", ranks that period first)."""
    zone = _zone(user, settings).key
    found = await memory.search(user.id, query, 10, timezone=zone, chat=group_scope(chat))
    deeper = await _deeper(query, user, chat, memory, {hit.memory.id for hit in found.hits})
    if not found.hits and not deeper:  # R231: a 30,000-character search was quoted back whole
        quoted = query if len(query) <= QUOTED else query[: QUOTED - 1] + "…"
        return f"No memories or messages match “{quoted}”."
    lines = (
        await describe_found(
            found,
            store=memory.store,
            timezone=zone,
            viewer=user,
            chat_id=chat.id,
            quote=chat.kind == "private",
        )
        if found.hits
        else []
    )
    if found.hits and found.mode == "keyword":
        lines.append("(keyword search only)")
    lines += describe_deeper(deeper, query.strip(), viewer=user, timezone=zone)
    return "\n".join(lines)


async def _deeper(
    query: str, user: User, chat: Chat, memory: MemoryService, shown: set[int]
) -> list[tuple[Memory, str]]:
    """Long messages that say the words past what search reads of them (review 36: a secret
    at the end of a pasted log was "not found", so it could not be forgotten)."""
    if not literal_words(query):
        return []
    found = await memory.store.long_messages_saying(
        user.id, query.strip(), chat_id=group_scope(chat)
    )
    return [(row, whole) for row, whole in found if row.id not in shown]


def _outside(found: Memory) -> str:
    """Where outside content came from, as the console's page of it says (kinds and hosts,
    `describe_sources`; R249: the command said "untrusted" and not which site)."""
    return f" ({describe_sources(found.label.sources)})" if found.label.tainted else ""


@memory_command.sub("show <memory_id...>", problem=_SHOW_WHICH, memory_id=_memory_id)
async def show(
    memory_id: int,
    user: User,
    chat: Chat,
    stores: Stores,
    memory: MemoryService,
    settings: Settings,
) -> str:
    zone = _zone(user, settings)
    found = await memory.store.get(user.id, memory_id)
    if found is None:
        return f"You have no memory #{memory_id}."
    if (here := group_scope(chat)) is not None and found.chat_id != here:
        return MEMORY_IN_PRIVATE
    records = memory.store.records
    lines = [
        f"#{found.id} {found.text}",
        f"Kind: {found.kind.value}" + (f", subject “{found.subject}”" if found.subject else ""),
        f"Source: {source_words(found.source)}",
        f"Trust: {found.trust.value}" + _outside(found),
        f"Importance: {found.importance:.2f}",
        f"Saved: {found.created_at.astimezone(zone):%Y-%m-%d %H:%M} ({zone.key})",
    ]
    where = []
    if found.chat_id is not None:
        chat = await stores.people.chat_by_id(found.chat_id)
        if chat is not None:
            where.append(f"chat {chat.channel}:{chat.platform_chat_id}")
    if found.turn_id is not None:
        where.append(f"turn {found.turn_id}")
    # `message_id` is the message log's number, which no command takes: a memory that has one
    # is that message's own row (one per message and user), so its number is #id already
    if found.source_ref:
        where.append(found.source_ref)
    if where:
        lines.append("From: " + ", ".join(where))
    if found.superseded_at is not None:
        newer = (
            await records.get(user.id, found.superseded_by)
            if found.superseded_by is not None
            else None
        )
        replaced = _related(newer, here) if newer else "a memory since forgotten"
        lines.append(
            f"Superseded on {found.superseded_at.astimezone(zone):%Y-%m-%d} by {replaced}; "
            "kept here, but no longer recalled."
        )
    older = await records.replaced_by(user.id, found.id)
    if older:
        lines.append("Replaces: " + "; ".join(_related(m, here) for m in older))
    return "\n".join(lines)


def _related(memory: Memory, group: int | None) -> str:
    """A memory that replaced or was replaced by the one shown. In a group, the text only of
    one saved in that group: a subject can join a group's memory to one the owner keeps in
    private (R184: "Replaces: #2 Home address is 12 Elm Street" was posted to the group)."""
    if group is not None and memory.chat_id != group:
        return f"#{memory.id} (saved elsewhere; its text is not repeated in a group)"
    return f"#{memory.id} {memory.text}"


@memory_command.sub(
    "correct <memory_id> [text...]",
    problem="Which memory, and what is true? /memory correct 12 I live in Berlin now",
    memory_id=_memory_id,
)
async def correct(
    memory_id: int,
    text: str,
    user: User,
    chat: Chat,
    sender: Identity,
    stores: Stores,
    memory: MemoryService,
) -> str:
    """The chat's way to correct a belief (the console's Correct form does the same)."""
    if group_scope(chat) is not None:
        return MEMORY_IN_PRIVATE
    if not text:
        raise UsageError(f"What is true instead? /memory correct {memory_id} <the right text>")
    try:
        done = await correct_memory(memory, user, memory_id, text, via="chat")
    except ValueError as exc:
        return str(exc)
    if done is None:
        return f"You have no memory #{memory_id}."
    if done.replaced_already_by is not None:
        return (
            f"#{memory_id} was already replaced by #{done.replaced_already_by}: correct that one."
        )
    if done.known_as is not None:
        return (
            f"That is already memory #{done.known_as}; #{memory_id} is unchanged "
            f"(/memory forget {memory_id} if it is wrong)."
        )
    await stores.audit.record(
        "memory.corrected",
        actor=str(sender),
        subject=f"memory:{memory_id}",
        new=f"memory:{done.new_id}",
    )
    return correction_said(done)


def _memory_ids(text: str) -> GivenIds:
    return ids_and_skipped(text, _FORGET_WHICH)  # "/memory forget 5 2", "5, 2", as /goal done


@memory_command.sub("forget <memory_ids...>", problem=_FORGET_WHICH, memory_ids=_memory_ids)
async def forget(
    memory_ids: GivenIds,
    user: User,
    chat: Chat,
    sender: Identity,
    stores: Stores,
    memory: MemoryService,
    settings: Settings,
) -> str:
    """Each memory given, each answered on its own line; with words that are not ids ("forget
    3 please"), the first id only, and the answer names the other ids it left."""
    said = [
        await _forget_one(memory_id, user, chat, sender, stores, memory, settings)
        for memory_id in dict.fromkeys(memory_ids.ids)
    ]
    await memory.purge_forgotten()  # once for them all
    if memory_ids.skipped:
        said.append((note := _not_forgotten(memory_ids.skipped), note))
    shown, stored = "\n".join(s for s, _ in said), "\n".join(s for _, s in said)
    return shown if shown == stored else Unrecorded(shown, stored)


async def _forget_one(
    memory_id: int,
    user: User,
    chat: Chat,
    sender: Identity,
    stores: Stores,
    memory: MemoryService,
    settings: Settings,
) -> tuple[str, str]:
    """What to answer, and what the message log may keep of it (the number, not the text)."""
    forgotten = await memory.forget(user.id, memory_id, purge=False)
    if forgotten is None:
        said = f"You have no memory #{memory_id}."
        return said, said
    if forgotten.underway is not None:
        said = (
            f"#{memory_id} came from an exchange still going on (it is running, or waits for "
            "an approval): forget it once that is over."
        )
        return said, said
    await stores.audit.record("memory.forgotten", actor=str(sender), subject=f"memory:{memory_id}")
    if forgotten.drawn:  # from a summary: the messages that say it in its words, named
        also = _drawn_said(forgotten, None if in_group(chat) else _zone(user, settings))
    elif forgotten.messages:
        also = (
            " With it, what was said in the exchange it came from "
            f"({_messages(forgotten.messages)})."
        )
    else:
        also = ""
    also += _files_said(forgotten.files, named=not in_group(chat))
    from agent.forgetting import made_there_said  # as the service does: on first use

    also += made_there_said(forgotten, _zone(user, settings))
    if forgotten.memory.kind is not Kind.MESSAGE and not in_group(chat):  # a "yes please"
        also += (
            " If it was said in other words too, /memory search finds them."
            if forgotten.drawn
            else " If it was said in other messages too, /memory search finds them."
        )
    if forgotten.summaries:
        numbers = ", ".join(f"#{n}" for n in forgotten.summaries)
        also += (
            f" It was drawn from a summary of earlier conversation ({numbers}), which may say "
            f"it too: /memory forget {forgotten.summaries[0]} takes that as well."
        )
    if in_group(chat):  # a group hears the number, not what was kept in private
        said = f"Forgotten #{memory_id}.{also}"
        return said, said
    # the log keeps the number only: the answer must not keep what was just forgotten
    kept = forgotten.memory.text
    stop = "" if kept.rstrip().endswith((".", "!", "?", "…")) else "."  # before what follows
    return f"Forgotten #{memory_id}: {kept}{stop}{also}", f"Forgotten #{memory_id}.{also}"


def _files_said(files: FilesForgotten, *, named: bool) -> str:
    """The forgotten messages' files: their words deleted, the rest named to delete or keep
    (in a group only counted: R175, a private file's name was posted to the group)."""

    def told(paths: tuple[str, ...]) -> str:
        return ", ".join(paths) if named else f"{len(paths)} file{'s' * (len(paths) != 1)}"

    said = ""
    if files.deleted:
        said += f" Deleted from the workspace too: {told(files.deleted)}."
    if files.kept:
        said += (
            f" The files they came with are still in inbox/ ({told(files.kept)}): delete them "
            "there if they should go too."
        )
    return said


def _not_forgotten(skipped: list[int]) -> str:
    """What an answer says of ids it left: "/memory forget 1 2 please" forgets #1 only (a
    number in a remark may be no id: "forget 12, it was 2 days ago")."""
    numbers = [f"#{n}" for n in skipped]
    named = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
    verb, them = ("was", "it") if len(numbers) == 1 else ("were", "them")
    again = " ".join(str(n) for n in skipped)
    return (
        f"{named} {verb} not forgotten: with words that are not ids, I take the first id only "
        f"(if you meant {them} too: /memory forget {again})."
    )


def _messages(count: int) -> str:
    return "1 message" if count == 1 else f"{count} messages"


def _drawn_said(forgotten: Forgotten, zone: ZoneInfo | None) -> str:
    """Which messages a fact drawn from a summary took with it: those of the summarised
    conversation that say it in its words, by when they were written (in a group, how many)."""
    if not forgotten.messages:
        return " No message of the conversation it was drawn from says it in these words."
    if zone is None:
        return f" With it, the {_messages(forgotten.messages)} that said it."
    local = [t.astimezone(zone) for t in forgotten.said_at]
    times = [f"{t:%a} {t.day} {t:%b %Y %H:%M}" for t in local]  # "Mon 2 Mar 2026 09:00"
    which = times[0] if len(times) == 1 else ", ".join(times[:-1]) + " and " + times[-1]
    noun = "message" if len(times) == 1 else "messages"
    return f" With it, the {noun} of {which} that said it."


@remember_command.sub("<text...>")
async def remember(text: str, user: User, chat: Chat, memory: MemoryService) -> str:
    owner = user.is_owner
    if not owner and (held := await memory.store.records.count(user.id)) >= GUEST_MEMORIES:
        # R177: commands cost no tokens, so no allowance bounded a guest's /remember flood
        return (
            f"You have {held:,} memories, the most I keep for anyone but my owner: "
            "/memory forget some first."
        )
    try:
        saved = await memory.remember(
            NewMemory(
                user_id=user.id,
                text=text,
                kind=Kind.NOTE,
                source=Source.OWNER_SAID if owner else Source.USER_SAID,
                trust=Trust.TRUSTED if owner else Trust.UNTRUSTED,
                importance=0.6,
                chat_id=chat.id,
                source_ref="/remember",
            )
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if saved.duplicate:
        return f"I already remember that (#{saved.memory.id})."
    reply = f"Remembered #{saved.memory.id}: {saved.memory.text}"
    if saved.superseded:
        group = in_group(chat)  # what it replaces may have been said in private
        reply += "\nIt replaces " + "; ".join(
            f"#{m.id}" if group else f"#{m.id} {m.text}" for m in saved.superseded
        )
    return reply
