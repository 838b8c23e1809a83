"""A reminder, goal or memory made of zero-width or direction marks alone was taken, and came
out as a blank line (review 121): each is refused as if nothing were given."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from harness import running_steward

from memory.visible import visible


@pytest.mark.parametrize("marks", ["\u200b", "\u202e", "\u200b\u200d \u2060", "\u0301"])
async def test_invisible_text_is_refused_with_usage(
    tmp_path: Path, fake_model: FakeAnthropic, marks: str
) -> None:
    async with running_steward(tmp_path, fake_model.base_url) as h:
        assert "What should I remind you of?" in await h.say(f"/remind 10m {marks}")
        assert "What should I remind you of?" in await h.say(f"/remind every day 9:00 {marks}")
        said = await h.say(f"/goal add {marks}")
        assert "A goal needs a title." in said and "\nExample: /goal add" in said, said
        said = await h.say(f"/remember {marks}")
        assert "needs some text" in said and "/remember" in said, said
        assert h.steward.scheduler is not None
        assert await h.steward.scheduler.store.for_user(1, ("reminder",)) == []
        assert await h.steward.stores.goals.active(1) == []


def test_visible_text_is_seen_in_any_script() -> None:
    # an emoji newer than Python's Unicode data (U+1FAE8) is still something (R124)
    for text in ("a", "日本", "🙂", "١", "é", "x\u200b", "\U0001fae8"):
        assert visible(text), text
    for blank in ("\u200b\u202e\t ", "\u3164", "\uffa0", "\u115f", "\u2800"):
        assert not visible(blank), ascii(blank)


async def test_a_title_or_topics_too_long_get_usage(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A 201-character goal title was refused without the usage line, and 10,017 characters
    of briefing topics were stored whole, to ride in every briefing (review 121)."""
    async with running_steward(tmp_path, fake_model.base_url) as h:
        said = await h.say("/goal add " + "x" * 201)
        assert "at most 200 characters" in said and "\nExample: /goal add" in said, said
        said = await h.say("/briefing topics " + "rust " * 2000)
        assert "at most 500 characters" in said and "\nExample: /briefing" in said, said[:300]
        assert "rust" not in await h.say("/briefing")
