"""Long-term memory tools: save a memory, search memories and past messages.

A memory saved in a tainted turn (one holding outside content), one said to come from the web, a
feed or a tool, or one about a user who is not the owner is labelled untrusted: it is shown to
the model fenced as untrusted data, never replaces a trusted memory, and carries the turn's
sources as its label. A memory saved is dated when the message the turn answers was written,
as extraction dates one: a correction typed while the turn ran is newer, and stands.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from agent.memory_view import describe_found
from agent.recall import group_scope, hit_label, message_label
from agent.tools.registry import Risk, ToolContext, ToolError, ToolResult, tool
from memory.clock import parse_iso
from memory.labels import TRUSTED, Label
from memory.longterm import MEMORY_KINDS, Kind, Memory, NewMemory, Source, Trust

if TYPE_CHECKING:
    from agent.memory_service import MemoryService

__all__ = ["MEMORY_TOOLS"]

_OUTSIDE = {"web": Source.WEB, "feed": Source.FEED, "tool": Source.TOOL, "mail": Source.MAIL}
UNTRUSTED_MAX_IMPORTANCE = 0.6
"""An untrusted memory is never "must not be missed": it rides along only when relevant."""


def _service(ctx: ToolContext) -> MemoryService:
    service = ctx.deps.memory
    if service is None:
        raise ToolError("long-term memory is not enabled in this Steward")
    return service


_NAMED_REPLACED = 10
"""Memories a save's card names by their words; any further ones it lists by number."""


async def _save_preview(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """What would be remembered, whole (the card layer cuts a long one visibly, and `/approve
    show` shows it all: review 78), the source it would be stored with, and what it would
    replace: by their words (review 62: the ids alone did not say which of the owner's
    memories a tainted turn meant to overwrite), every one of them (review 78)."""
    lines = [
        f"{k}: {' '.join(str(arguments[k]).split())}"
        for k in ("kind", "subject", "importance")
        if k in arguments
    ]
    source = arguments.get("source", "owner_said")
    if source in _SOURCES:
        stored, untrusted = _stored_source(ctx, source)
        lines.append(f"source: {stored.value}" + (" (untrusted)" if untrusted else ""))
    service = ctx.deps.memory
    ids: list[int] = []
    for raw in arguments.get("replaces") or []:
        try:
            ids.append(int(raw))
        except (TypeError, ValueError):
            lines.append(f"replacing {str(raw)!r}: not a memory id")
    found: dict[int, Memory | None] = {}
    for memory_id in ids[:_NAMED_REPLACED]:
        found[memory_id] = await service.get(ctx.user.id, memory_id) if service else None
    for old in await _subject_slot(ctx, arguments):  # R235: retired by the same subject too
        if old.id not in ids:
            found[old.id] = old
    for memory_id, old in found.items():
        if old is None:
            shown = "(none of yours)"
        else:  # what it would retire, named; its end marked when cut
            shown = repr(old.text[:200]) + (
                f" … ({len(old.text) - 200:,} more characters)" if len(old.text) > 200 else ""
            )
        lines.append(f"replacing #{memory_id}: {shown}")
    if rest := ids[_NAMED_REPLACED:]:
        listed = ", ".join(f"#{i}" for i in rest)
        lines.append(f"and replacing {len(rest)} more, not shown by their words: {listed}")
    # the text last: a long one is cut in its middle on the card, never the lines above
    # (review 82: first, it pushed the source and the memories retired out of the card)
    lines.append(f"Remember: {str(arguments.get('text', ''))!r}")
    return "\n".join(lines)


_SOURCES = ("owner_said", "model_inferred", "web", "feed", "tool", "mail")


async def _subject_slot(ctx: ToolContext, arguments: dict[str, Any]) -> list[Memory]:
    """The memories the save would retire by its `subject`, as the store picks them (R235:
    an approved save retired an earlier memory under that subject the card never named).
    Looked up as the approved call runs: dated now, with the source it is stored with."""
    service = ctx.deps.memory
    kind = str(arguments.get("kind", "fact"))
    source = str(arguments.get("source", "owner_said"))
    if service is None or kind not in ("fact", "preference") or source not in _SOURCES:
        return []
    stored, untrusted = _stored_source(ctx, source)
    new = NewMemory(
        user_id=ctx.user.id,
        text=str(arguments.get("text", "")),
        kind=Kind(kind),
        subject=str(arguments.get("subject", "")),
        source=stored,
        trust=Trust.UNTRUSTED if untrusted else Trust.TRUSTED,
    )
    return await service.store.subject_retires(new)


async def _save_fingerprint(ctx: ToolContext, arguments: dict[str, Any]) -> str:
    """R235: bound to the memories the card said the save retires by its subject: one added
    under that subject after the card was shown makes the approval no longer match."""
    slot = [[m.id, m.text] for m in await _subject_slot(ctx, arguments)]
    return "memory-subject:" + hashlib.sha256(json.dumps(slot).encode()).hexdigest()


def _stored_source(ctx: ToolContext, source: str) -> tuple[Source, bool]:
    """The source a save is stored with, and whether it is untrusted: the card shows these,
    not the model's argument (review 78: a card said `owner_said` for what was stored as the
    model's inference in a turn holding a page)."""
    untrusted = ctx.tainted or source in _OUTSIDE or not ctx.user.is_owner
    if source in _OUTSIDE:
        return _OUTSIDE[source], untrusted
    if ctx.tainted and any(s.startswith("mail:") for s in ctx.sources):
        return Source.MAIL, untrusted  # seen in a mail this turn read: the mail's word
    if source == "model_inferred" or ctx.tainted:
        # In a turn that holds outside content the model's word is not the owner's: never
        # `owner_said` for what may be a page's instruction echoed back.
        return Source.MODEL_INFERRED, untrusted
    return (Source.OWNER_SAID if ctx.user.is_owner else Source.USER_SAID), untrusted


@tool(risk=Risk.WRITE_INTERNAL, preview=_save_preview, fingerprint=_save_fingerprint)
async def memory_save(
    ctx: ToolContext,
    text: str,
    kind: Literal["fact", "preference", "note"] = "fact",
    subject: str = "",
    importance: float = 0.5,
    replaces: list[int] | None = None,
    source: Literal["owner_said", "model_inferred", "web", "feed", "tool", "mail"] = "owner_said",
) -> str:
    """Remember something durable about the user for future conversations (who people are,
    where they live or work, preferences, dates, plans). Not for small talk.

    Args:
        text: One short standalone sentence, e.g. "Moved to Berlin in May 2025."
        kind: fact, preference or note.
        subject: A short key, e.g. "home city"; a newer fact with the same key replaces the old.
        importance: 0 to 1; 0.9 or more only for what must never be missed (an allergy).
        replaces: Ids of memories this one corrects or replaces.
        source: owner_said (the user told you), model_inferred, or web/feed/tool/mail if
            read there.
    """
    service = _service(ctx)
    if not 0.0 <= importance <= 1.0:
        raise ToolError("importance is a number from 0 to 1")
    if ctx.approved_fingerprint is not None:  # R235: checked again after the approval's awaits
        slot = {"text": text, "kind": kind, "subject": subject, "source": source}
        if await _save_fingerprint(ctx, slot) != ctx.approved_fingerprint:
            raise ToolError(
                "refused: the memories under this subject changed after it was approved; "
                "nothing was saved"
            )
    kind_of_source, untrusted = _stored_source(ctx, source)
    label = ctx.label
    if untrusted:
        label = label.join(Label.untrusted(kind_of_source.value))
        importance = min(importance, UNTRUSTED_MAX_IMPORTANCE)
    try:
        saved = await service.remember(
            NewMemory(
                created_at=await _said_at(ctx),
                user_id=ctx.user.id,
                text=text,
                kind=Kind(kind),
                subject=subject,
                source=kind_of_source,
                trust=Trust.UNTRUSTED if untrusted else Trust.TRUSTED,
                importance=importance,
                chat_id=ctx.chat.id if ctx.chat else None,
                turn_id=ctx.turn_id,
                source_ref=f"turn:{ctx.turn_id}",
                replaces=tuple(replaces or ()),
                label=label if untrusted else TRUSTED,
            )
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    group = group_scope(ctx.chat) is not None  # what it met may have been said in private
    if saved.duplicate:
        return f"Already remembered as {_named(saved.memory, group)}."
    if not saved.memory.active:  # a memory made since the message this turn answers
        return (
            f"Saved memory #{saved.memory.id} as already replaced by "
            f"#{saved.memory.superseded_by}, which was said after the message you are answering: "
            "that one stands."
        )
    parts = [f"Saved memory #{saved.memory.id}" + (" (untrusted)" if untrusted else "") + "."]
    if saved.superseded:
        retired = "; ".join(_named(m, group) for m in saved.superseded)
        parts.append(f"It replaces {retired}.")
    if saved.refused:
        ids = ", ".join(f"#{i}" for i in saved.refused)
        parts.append(
            f"Not replaced: {ids} (unknown, already replaced, or trusted while this is not)."
        )
    return " ".join(parts)


async def _said_at(ctx: ToolContext) -> datetime | None:
    """When the words saved were said: the message the turn answers (review 76). A correction
    the person typed while the turn ran is newer than they are, and is not retired by the save;
    a turn that answers no message (a check-in), or a call the owner approved (their word at
    the approval), is dated now."""
    if ctx.approved:
        return None
    turn = await ctx.stores.turns.record(ctx.turn_id)
    message = await ctx.stores.messages.get(turn.message_id) if turn and turn.message_id else None
    if message is None or message.direction != "in":
        return None
    return parse_iso(message.created_at)


def _named(memory: Memory, group: bool) -> str:
    """A memory this save met, as its result names it. An untrusted one by number only: a
    trusted save can retire one (the same subject, `replaces`), and its text in this plain,
    unlabelled result would reach the model as if the owner had said it. In a group, every
    one by number only, as /remember there does: the model is writing for the group, and the
    memory retired may be one the owner keeps in private (a home address)."""
    if memory.untrusted:
        return f"#{memory.id} (untrusted; its text is not repeated here)"
    if group:
        return f"#{memory.id} (its text is not repeated in a group)"
    return f"#{memory.id} {memory.text}"


@tool(risk=Risk.READ)
async def memory_search(
    ctx: ToolContext,
    query: str,
    limit: int = 8,
    kind: Literal["all", "memories", "messages"] = "all",
) -> str | ToolResult:
    """Search the user's long-term memory for what the context does not already show: memories
    (facts, preferences, summaries of past conversations) and the messages of past
    conversations (what they, you and others in their groups said, with when it was said and
    the turns around it), by meaning and by keyword. A date or period in the query ("in May",
    "last week", "on 6 September", "two months ago") ranks what falls in it first.

    Args:
        query: What to look for, e.g. "sister's birthday" or "what I said about the roof in May".
        limit: How many results to return, from 1 to 20.
        kind: all (default), memories only, or messages only.
    """
    service = _service(ctx)
    if not query.strip():
        raise ToolError("the query is empty")
    kinds = {"all": None, "memories": list(MEMORY_KINDS), "messages": [Kind.MESSAGE]}[kind]
    timezone = ctx.user.timezone or service.config.timezone
    here = group_scope(ctx.chat)
    found = await service.search(
        ctx.user.id, query, max(1, min(20, limit)), timezone=timezone, kinds=kinds, chat=here
    )
    if not found.hits:
        if here is not None:
            return "Nothing said in this chat matches (in a group, only this chat is searched)."
        return "Nothing in memory or past messages matches."
    lines = await describe_found(
        found,
        store=service.store,
        timezone=timezone,
        viewer=ctx.user,
        chat_id=ctx.chat.id if ctx.chat else None,
        quote=ctx.chat is None or ctx.chat.kind == "private",
    )
    if found.mode == "keyword":
        lines.append("(keyword search only: semantic search is not available right now)")
    if here is not None:
        lines.append("(in a group, only what was said or kept in this chat is searched)")
    # Outside content (another person's message, a memory from a page, a reply written after
    # reading one): fenced for the model, and the turn becomes tainted.
    if not found.label.tainted:
        return "\n".join(lines)
    untrusted = [
        hit.memory.id
        for hit in found.hits
        if hit_label(hit.memory).tainted
        or any(message_label(t.message).tainted for t in found.around.get(hit.memory.id, []))
    ]
    ids = ",".join(f"#{i}" for i in untrusted)
    return ToolResult("\n".join(lines), source=f"memory:{ids}")


MEMORY_TOOLS = (memory_save, memory_search)
