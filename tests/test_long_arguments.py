"""A command typed with 30,000 characters after it (R186): the usage error quoted them all
back, many messages on Slack and the console. What is quoted is cut, the usage kept whole."""

from __future__ import annotations

from pathlib import Path

from harness import running_steward

from bot.commands.registry import PROBLEM_MAX

LONG = "x" * 30_000


async def test_a_usage_error_quotes_a_long_argument_cut(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        await h.say("/goal add Renew the passport")
        for command in (
            f"/remind {LONG}",
            f"/timezone {LONG}",
            f"/help {LONG}",
            f"/goal due 1 {LONG}",
            f"/briefing at {LONG}",
            f"/memory show {LONG}",
        ):
            said = await h.say(command)
            assert len(said) < PROBLEM_MAX + 1_000, (command[:20], len(said))
            assert "characters left out" in said or "Usage:" in said, said[:300]
        said = await h.say(f"/remind {LONG}")
        assert "Usage: /remind" in said and "Example: /remind" in said, said[-300:]
