"""A goal said again is the goal there is, not a second one with check-ins of its own (R135:
said again in a group, where goals are not listed, or twice in private, it was added twice)."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import running_steward


async def test_the_same_goal_twice_is_one_goal(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    fake_model.reply_text("ok")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert "#1" in await h.say("/goal add Run a half marathon")
        again = await h.say("/goal add run a  half marathon!")
        assert "That is goal #1 already" in again, again
        listed = await h.say("/goal list")
        assert listed.count("half marathon") == 1, listed
        assert "#2" in await h.say("/goal add Learn Spanish")
        await h.say("/goal done 1")
        assert "#3" in await h.say("/goal add Run a half marathon")  # a new one, once done
