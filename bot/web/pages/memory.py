"""/memory: search (the same hybrid search as `/memory search` and the agent), each memory's
provenance, trust label and what it replaced; forget, correct (a new memory, said by the
owner, that supersedes the old one), and import / export as JSON lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from agent.cards import describe_sources
from agent.forgetting import made_there_said
from agent.memory_corrections import correct_memory, correction_said
from agent.memory_portability import records_of
from agent.memory_view import literal_words
from bot.commands.ids import as_id
from bot.web.views import Page, Routes
from memory.longterm import Kind, Memory, NewMemory, Source, Trust
from memory.longterm.types import MAX_TEXT_CHARS

__all__ = ["MemoryView", "routes"]

routes = Routes()

RESULTS = 20
MAX_RESULTS = 200  # a search shows at most this many, 20 more at a time
MAX_IMPORT_BYTES = 900_000  # under the server's 1 MB body limit


@dataclass(frozen=True)
class MemoryView:
    memory: Memory
    where: str
    label: str
    replaces: list[Memory]
    replaced_by: Memory | None


async def _view(page: Page, memory: Memory) -> MemoryView:
    service = page.deps.core.memory
    assert service is not None
    stores = page.deps.core.stores
    where = [f"source {memory.source.value.replace('_', ' ')}"]
    if memory.chat_id is not None:
        chat = await stores.people.chat_by_id(memory.chat_id)
        if chat is not None:
            where.append(f"chat {chat.channel}:{chat.platform_chat_id}")
    if memory.turn_id is not None:
        where.append(f"turn {memory.turn_id}")
    if memory.source_ref:
        where.append(memory.source_ref)
    records = service.store.records
    newer = None
    if memory.superseded_by is not None:
        newer = await records.get(memory.user_id, memory.superseded_by)
    return MemoryView(
        memory=memory,
        where=", ".join(where),
        label=describe_sources(memory.label.sources) if memory.label.tainted else "trusted",
        replaces=await records.replaced_by(memory.user_id, memory.id),
        replaced_by=newer,
    )


@routes.get("/memory")
async def memory_page(page: Page) -> web.StreamResponse:
    service = page.deps.core.memory
    if service is None:
        return page.render("missing.html", status=404, what="long-term memory (not enabled)")
    query = page.query("q")
    mode = ""
    after: int | None = None  # the page lists the memories after this one (older)
    unknown = ""  # a `before` that names no memory of the owner's: the first page instead
    older = ""  # the next page's query, when there is one
    if query:
        # more of the ranking on request (R110: a common word among thousands showed 20, no more)
        wanted = min(MAX_RESULTS, max(RESULTS, as_id(page.query("n") or "") or RESULTS))
        result = await service.search(page.user.id, query, wanted, timezone=page.zone)
        found = [hit.memory for hit in result.hits]
        mode = str(result.mode)
        if len(found) >= wanted and wanted < MAX_RESULTS:
            older = urlencode({"q": query, "n": wanted + RESULTS})
        if literal_words(query):  # words past what search reads of a long message (review 36)
            shown = {m.id for m in found}
            deeper = await service.store.long_messages_saying(page.user.id, query.strip())
            found += [row for row, _ in deeper if row.id not in shown]
    else:
        raw = page.query("before")
        before = as_id(raw) if raw else None
        listed = None
        if before is not None:
            # the page goes on from #before though it was forgotten since (R265)
            listed = await service.store.records.recent_before(
                page.user.id, before, RESULTS + 1, placed=True
            )
        if listed is None:
            unknown = raw[:40]
            listed = await service.store.recent(page.user.id, RESULTS + 1)
        else:
            after = before
        found = listed[:RESULTS]
        if len(listed) > RESULTS:
            older = urlencode({"before": found[-1].id})
    views = [await _view(page, m) for m in found]
    return page.render(
        "memory.html",
        query=query,
        mode=mode,
        items=views,
        after=after,
        unknown=unknown,
        older=older,
        max_chars=MAX_TEXT_CHARS,
        memory_status=await service.status_line(page.user.id),
    )


@routes.get("/memory/{memory_id}")
async def memory_detail(page: Page) -> web.StreamResponse:
    service = page.deps.core.memory
    raw = page.params["memory_id"]
    found = None
    number = as_id(raw)
    if service is not None and number is not None:
        found = await service.store.get(page.user.id, number)
    if found is None or service is None:
        return page.render("missing.html", status=404, what=f"memory #{raw}")
    return page.render("memory_one.html", item=await _view(page, found), max_chars=MAX_TEXT_CHARS)


@routes.post("/memory/{memory_id}/forget")
async def forget(page: Page) -> web.StreamResponse:
    service = page.deps.core.memory
    raw = page.params["memory_id"]
    number = as_id(raw)
    if service is None or number is None:
        return page.redirect("/memory", "There is no such memory.")
    forgotten = await service.forget(page.user.id, number)
    if forgotten is None:
        return page.redirect("/memory", f"You have no memory #{raw}.")
    if forgotten.underway is not None:
        return page.redirect(
            f"/memory/{raw}",
            f"#{raw} came from an exchange still going on: forget it once that is over.",
        )
    await page.audit("memory.forgotten", subject=f"memory:{raw}", via="web")
    back = page.field("back")
    target = back if back.startswith("/memory?") or back == "/memory" else "/memory"
    also = f" (and {forgotten.messages} message(s) it came from)" if forgotten.messages else ""
    if forgotten.summaries:
        numbers = ", ".join(f"#{n}" for n in forgotten.summaries)
        also += f". It was drawn from a summary ({numbers}) that may say it too: forget it too"
    said = f"Forgotten #{raw}: {forgotten.memory.text}{also}"
    if made := made_there_said(forgotten, ZoneInfo(page.zone)):
        said += ("" if said.endswith((".", "!", "?", "…")) else ".") + made
    return page.redirect(target, said)


@routes.post("/memory/{memory_id}/correct")
async def correct(page: Page) -> web.StreamResponse:
    service = page.deps.core.memory
    raw = page.params["memory_id"]
    text = page.field("text")
    number = as_id(raw)
    if service is None or number is None:
        return page.redirect("/memory", "There is no such memory.")
    if not text:
        return page.redirect(f"/memory/{raw}", "Write the corrected text.")
    try:
        done = await correct_memory(service, page.user, number, text, via="web console")
    except ValueError as exc:  # the form again, with what was typed (R110: it was lost)
        found = await service.store.get(page.user.id, number)
        if found is None:
            return _gone(page, raw, text)
        item = await _view(page, found)
        return page.render(
            "memory_one.html",
            status=422,
            item=item,
            typed=text,
            problem=str(exc),
            max_chars=MAX_TEXT_CHARS,
        )
    # a page opened before the memory changed in chat: what was typed stays (R265: it was lost)
    if done is None:
        return _gone(page, raw, text)
    if done.replaced_already_by is not None:  # correct what holds now, the text in its form
        newer = done.replaced_already_by
        _keep(page, f"/memory/{newer}/correct", text)
        return page.redirect(
            f"/memory/{newer}", f"#{number} was already replaced by #{newer}; correct that one."
        )
    if done.known_as is not None:  # the text was remembered already, as another memory
        return page.redirect(
            f"/memory/{number}",
            f"That is already memory #{done.known_as}; #{number} is unchanged (forget it "
            "if it is wrong).",
        )
    await page.audit(
        "web.memory_corrected", subject=f"memory:{number}", new=f"memory:{done.new_id}"
    )
    return page.redirect(f"/memory/{done.new_id}", correction_said(done))


def _keep(page: Page, action: str, text: str) -> None:
    """What was typed, for the form posting to `action` on the next page shown (as a refused
    form's words come back, R138)."""
    page.typed[page.session.id] = (action, {"text": text})


def _gone(page: Page, raw: str, text: str) -> web.Response:
    """A correction of a memory forgotten since its page was opened: /memory, with what was
    typed in a form to remember it as a new memory (or copy it)."""
    _keep(page, "/memory-remember", text)
    return page.redirect(
        "/memory", f"You have no memory #{raw}: what you typed is below, to remember it anew."
    )


@routes.post("/memory-remember")
async def remember(page: Page) -> web.StreamResponse:
    """Save what was typed as a new memory the owner said (as `/remember` in chat does)."""
    service = page.deps.core.memory
    text = page.field("text")
    if service is None:
        return page.redirect("/memory", "Long-term memory is not enabled.")
    if not text:
        return page.redirect("/memory", "Write what to remember.")
    try:
        saved = await service.remember(
            NewMemory(
                user_id=page.user.id,
                text=text,
                kind=Kind.NOTE,
                source=Source.OWNER_SAID,
                trust=Trust.TRUSTED,
                importance=0.6,
                source_ref="web console",
            )
        )
    except ValueError as exc:
        return page.refused("/memory", str(exc))
    new = saved.memory.id
    if saved.duplicate:
        return page.redirect(f"/memory/{new}", f"I already remember that (#{new}).")
    await page.audit("web.memory_remembered", subject=f"memory:{new}")
    replaced = "; ".join(f"#{m.id}" for m in saved.superseded)
    return page.redirect(
        f"/memory/{new}", f"Remembered #{new}." + (f" It replaces {replaced}." if replaced else "")
    )


@routes.get("/memory-export")
async def export(page: Page) -> web.StreamResponse:
    service = page.deps.core.memory
    if service is None:
        return page.render("missing.html", status=404, what="long-term memory (not enabled)")
    records = await service.export_records()
    await page.audit("web.memory_exported", count=len(records))
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return web.Response(
        text=body,
        content_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="steward-memory.jsonl"'},
    )


@routes.post("/memory-import")
async def import_file(page: Page) -> web.StreamResponse:
    service = page.deps.core.memory
    upload = page.form.get("file") if page.form is not None else None
    if service is None or upload is None or isinstance(upload, str):
        return page.redirect("/memory", "Choose a JSONL file from a memory export.")
    raw = upload.file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        return page.redirect(
            "/memory", "That file is too large for the console; use `steward memory import`."
        )
    try:
        # strict: accents mangled into U+FFFD were imported as if they were the text (R110);
        # a byte-order mark (Notepad's "UTF-8 with BOM") is not part of the first line
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return page.redirect(
            "/memory", "That file is not UTF-8 text (an export is); nothing was imported."
        )
    try:
        records = records_of(text.split("\n"))
    except ValueError as exc:
        said = str(exc)
        return page.redirect("/memory", f"{said[:1].upper()}{said[1:]}; nothing was imported.")
    # the file's name labels what it holds that names none of the owner's identities
    report = await service.portability.import_records(records, origin=upload.filename or "")
    await page.audit(
        "memory.imported",
        via="web",
        imported=report.imported,
        duplicates=report.skipped_duplicates,
        unknown_user=report.skipped_unknown_user,
        outside=report.outside,
    )
    note = (
        f"{report.imported} imported, {report.skipped_duplicates} already there, "
        f"{report.skipped_unknown_user} skipped (no such user)."
    )
    if report.outside:
        note += (
            f" {report.outside} named none of your identities here: kept as outside content, "
            "not as something you said."
        )
    if report.errors:
        note += " Problems: " + "; ".join(report.errors[:3])
    return page.redirect("/memory", note)
