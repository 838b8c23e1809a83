"""A database that cannot be written (the disk full): the sender is told, nothing is left half
done, and Steward answers again once there is room. The disk is "full" through SQLite's own
limit on the file (`PRAGMA max_page_count`), which fails writes with SQLITE_FULL as a full disk
does."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from harness import Harness, running_steward

from agent.tools import Risk, ToolContext, tool
from bot.router import UNFINISHED, UNSTORED
from memory.errors import StorageFailed


async def test_a_message_that_cannot_be_stored_is_answered_so_and_nothing_sticks(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The message was taken from Telegram and lost without a word (R55), and a failed COMMIT
    could leave the one connection inside a transaction every later write failed on."""
    fake_model.reply_text("Hello!")
    fake_model.reply_text("Noted.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert await h.say("hi") == "Hello!"
        db = h.steward.stores.db
        pages = await db.scalar("PRAGMA page_count")
        await db.execute(f"PRAGMA max_page_count = {pages}")
        messages = h.steward.stores.messages
        [first] = await messages.all(direction="in")
        for size in (4000, 400, 40, 1):  # every free page and every page's room used up
            with pytest.raises(StorageFailed):
                for n in range(10_000):
                    await messages.record_incoming(
                        chat_id=first.chat_id,
                        user_id=None,
                        text="x" * size,
                        platform_message_id=f"filler-{size}-{n}",
                        in_history=False,
                    )
        assert await h.say("remember the gate code is 4417") == UNSTORED
        assert len(fake_model.requests) == 1  # no turn ran on what was not kept
        await db.execute("PRAGMA max_page_count = 1073741823")  # room again
        assert await h.say("and the alarm code is 9911") == "Noted."
        stored = [m.text for m in await messages.all(direction="in") if set(m.text) != {"x"}]
    assert stored == ["hi", "and the alarm code is 9911"]


async def _fill(h: Harness, chat_id: int) -> None:
    """Use up every page the database may have (a disk filling up)."""
    db = h.steward.stores.db
    await db.execute(f"PRAGMA max_page_count = {await db.scalar('PRAGMA page_count')}")
    for size in (4000, 400, 40, 1):
        with contextlib.suppress(StorageFailed):
            for n in range(10_000):
                await h.steward.stores.messages.record_incoming(
                    chat_id=chat_id,
                    user_id=None,
                    text="x" * size,
                    platform_message_id=f"filler-{size}-{n}",
                    in_history=False,
                )


async def test_a_disk_filling_during_the_turn_does_not_say_nothing_was_done(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R60: the disk filled while the turn ran (its tool had acted), the reply could not be
    stored, and the sender was told "Nothing of it was done; please send it again"."""
    acted: list[str] = []

    @tool(risk=Risk.READ)
    async def archive_logs(ctx: ToolContext) -> str:
        """Archive the logs (and, here, fill the disk)."""
        acted.append("archived")
        [chat] = {m.chat_id for m in await ctx.stores.messages.all(direction="in")}
        await _fill(h, chat)
        return "archived"

    fake_model.reply_tool_use("archive_logs", {})
    fake_model.reply_text("Archived them.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        h.steward.tools.register(archive_logs)
        said = await h.say("archive the logs")
    assert acted == ["archived"]
    assert said == UNFINISHED
