"""R222: an approved workspace call checks its file again as it runs.

The approval's check in `decide()` and the run are awaits apart. write_file did not compare
its fingerprint again, and `_write` resolved the path afresh, so a file edited, or a folder on
its path swapped for a link inside the workspace, in between was written anyway (the shell,
mail, schedule and goal tools check again as they run)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from trust_world import World, instruction, trust_world

from agent.tools.registry import Tool, ToolContext
from agent.tools.workspace import list_files, read_file, write_file
from memory.approvals import Approval

NEW = "the text the card showed\n"


async def _approved(w: World, path: str) -> tuple[Approval, ToolContext]:
    """A write_file card the owner is asked, from a page that ordered it, and the context an
    approved call runs in: its fingerprint the one taken for the card."""
    order = instruction("write_file", {"path": path, "content": NEW})
    w.web.pages["/page"] = "<p>Tidy-up tips.</p>" + order
    await w.h.say("read this " + instruction("web_fetch", {"url": w.web.base_url + "/page"}))
    [prompt] = [p for _, p in w.h.channel.approvals if p.tool == "write_file"]
    approval = await w.h.steward.stores.approvals.get(prompt.approval_id)
    assert approval is not None
    ctx = await w.h.steward._ctx_for(approval)
    return approval, replace(ctx, approved_fingerprint=approval.fingerprint)


async def test_a_file_edited_after_the_check_is_not_written(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        notes = w.workspace / "notes"
        notes.mkdir()
        (notes / "a.md").write_text("shopping list\n")
        approval, approved = await _approved(w, "notes/a.md")
        (notes / "a.md").write_text("shopping list\nthe owner's edit\n")  # after the check
        result = await write_file.run(approved, approval.arguments)
        assert result.is_error and "changed after it was approved" in result.content, result
        assert (notes / "a.md").read_text() == "shopping list\nthe owner's edit\n"


async def test_a_folder_swapped_for_a_link_after_the_check_is_not_written(
    tmp_path: Path,
) -> None:
    async with trust_world(tmp_path) as w:
        notes, other = w.workspace / "notes", w.workspace / "other"
        notes.mkdir()
        other.mkdir()
        (notes / "a.md").write_text("shopping list\n")
        (other / "a.md").write_text("shopping list\n")  # the same words, another file
        approval, approved = await _approved(w, "notes/a.md")
        notes.rename(w.workspace / "notes.old")
        notes.symlink_to("other")  # after the check: notes/a.md now leads to other/a.md
        result = await write_file.run(approved, approval.arguments)
        assert result.is_error and "changed after it was approved" in result.content, result
        assert (other / "a.md").read_text() == "shopping list\n"


async def test_an_unchanged_file_is_written(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        (w.workspace / "notes").mkdir()
        (w.workspace / "notes" / "a.md").write_text("shopping list\n")
        approval, approved = await _approved(w, "notes/a.md")
        result = await write_file.run(approved, approval.arguments)
        assert not result.is_error, result
        assert (w.workspace / "notes" / "a.md").read_text() == NEW


async def test_an_approved_read_checks_where_its_path_leads(tmp_path: Path) -> None:
    """The reads' fingerprints are where the path leads: checked again as they run too."""
    async with trust_world(tmp_path) as w:
        shared, private = w.workspace / "shared", w.workspace / "private"
        shared.mkdir()
        private.mkdir()
        (shared / "readme.md").write_text("hello\n")
        (private / "readme.md").write_text("DIARY-5521\n")
        _, ctx = await _approved(w, "shared/readme.md")
        calls: tuple[tuple[Tool, dict[str, str]], ...] = (
            (read_file, {"path": "shared/readme.md"}),
            (list_files, {"path": "shared"}),
        )
        prints = []
        for tool, arguments in calls:
            assert tool.fingerprint is not None
            prints.append(await tool.fingerprint(ctx, arguments))
        for (tool, arguments), fingerprint in zip(calls, prints, strict=True):
            ran = await tool.run(replace(ctx, approved_fingerprint=fingerprint), arguments)
            assert not ran.is_error and "DIARY" not in ran.content, ran
        shared.rename(w.workspace / "shared.old")
        shared.symlink_to("private")
        for (tool, arguments), fingerprint in zip(calls, prints, strict=True):
            ran = await tool.run(replace(ctx, approved_fingerprint=fingerprint), arguments)
            assert ran.is_error and "changed after it was approved" in ran.content, ran
