"""One timezone everywhere after /timezone: /goal list, /memory, /memory show and /audit show
the owner's dates and times, never UTC's; and small wording: "1 turn", /memory forget alone."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import RecordingChannel, running_steward

from memory.clock import FrozenClock

# 12:30 UTC on 1 March is 02:30 on 2 March in Kiritimati (UTC+14): the date differs.
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


async def test_every_list_uses_the_owners_timezone(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None, clock=FrozenClock(NOW)) as h:
        assert "Pacific/Kiritimati" in await h.say("/timezone Pacific/Kiritimati")
        await h.say("/goal add Learn the cello")
        await h.say("/goal note 1 practised scales for an hour")
        goals = await h.say("/goal list")
        assert "2026-03-02" in goals and "2026-03-01" not in goals, goals
        memories = await h.say("/memory")
        assert "practised scales" in memories
        for line in memories.splitlines():
            if line.startswith("#"):
                assert "(2026-03-02," in line, memories
        memory_id = re.search(r"#(\d+) \(2026-03-02, goal", memories)
        assert memory_id, memories
        shown = await h.say(f"/memory show {memory_id.group(1)}")
        assert "Saved: 2026-03-02 02:30 (Pacific/Kiritimati)" in shown, shown
        assert "UTC" not in shown
        audit = await h.say("/audit 5")
        assert "Times in Pacific/Kiritimati." in audit
        assert "2026-03-02 02:30:00" in audit and "2026-03-01 12:30" not in audit, audit


async def test_usage_says_one_turn_and_forget_without_id_shows_usage(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text("hello")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("hi")
        usage = await h.say("/usage")
        assert re.search(r"chat: 1 turn,", usage), usage
        assert "1 turns" not in usage
        forget = await h.say("/memory forget")
        assert "is not a memory id" not in forget
        assert "/memory forget 12" in forget and "Usage:" in forget, forget


async def test_the_approval_list_shows_expiry_in_the_owners_timezone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_tool_use(
        "send_message", {"channel": "slack", "chat": "C0STATUS", "text": "All green"}
    )
    fake_model.reply_text("I asked for your approval.")
    async with running_steward(tmp_path, fake_model.base_url, clock=FrozenClock(NOW)) as h:
        h.steward.switchboard.register("slack", RecordingChannel(name="slack"))
        await h.say("/timezone Pacific/Kiritimati")
        await h.say("tell #status all is green")
        listed = await h.say("/approve")
    assert "(expires 02:45 Pacific/Kiritimati)" in listed, listed  # 12:45 UTC + 14 h
