"""A check-in or briefing whose turn stops to ask the owner's approval has posted nothing yet:
it is no "sent" run, and no empty check-in or briefing is kept as a memory (R135)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import running_steward
from test_briefing import OVERRIDES, FeedServer, feeds  # noqa: F401 (a fixture)

from memory.clock import FrozenClock

DAY1 = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)


def asks_first(request: RecordedRequest) -> Reply:
    """The job's turn wants a goal changed (in a turn holding feed text: it asks), then writes."""
    said = request.last_user_text.rsplit("</context>", 1)[-1]
    if ("Morning briefing" in said or "check-in" in said.lower()) and not request.tool_results:
        return Reply.tool_use("goal_next_step", {"goal_id": 1, "next_step": "read the notes"})
    return Reply.text("Good morning! [1] Python 3.15 released")


async def test_a_briefing_waiting_for_approval_is_not_sent_nor_remembered_empty(
    tmp_path: Path,
    fake_model: FakeAnthropic,
    feeds: FeedServer,  # noqa: F811
) -> None:
    fake_model.on_request(asks_first)
    clock = FrozenClock(DAY1)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock, **OVERRIDES) as h:
        assert "added" in await h.say(f"/briefing feeds add {feeds.url('rss.xml')}")
        await h.say("/briefing at 07:00")
        await h.say("/goal add Learn Python")
        clock.advance(timedelta(hours=1))
        assert h.steward.scheduler is not None
        [run] = [r for r in await h.steward.scheduler.run_due() if r.kind == "briefing"]
        assert run.status == "waiting", run
        assert [p.tool for _, p in h.channel.approvals] == ["goal_next_step"]
        assert not [m for m in await h.memories() if m.text.startswith("Briefing of")]
        [event] = await h.steward.stores.audit.recent(5, kind="schedule.run")
        assert event.detail["outcome"] == "waiting"


async def test_a_briefing_approved_after_waiting_is_not_repeated_the_next_day(
    tmp_path: Path,
    fake_model: FakeAnthropic,
    feeds: FeedServer,  # noqa: F811
) -> None:
    """Its items were marked briefed only for a "sent" run: approved and posted, the next
    day's briefing asked the model about the same items again (R136)."""
    asked: list[str] = []

    def model(request: RecordedRequest) -> Reply:
        said = request.last_user_text.rsplit("</context>", 1)[-1]
        if "Morning briefing" in said and not request.tool_results:
            asked.append(said)
        return asks_first(request)

    fake_model.on_request(model)
    clock = FrozenClock(DAY1)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock, **OVERRIDES) as h:
        await h.say(f"/briefing feeds add {feeds.url('rss.xml')}")
        await h.say("/briefing at 07:00")
        await h.say("/goal add Learn Python")
        clock.advance(timedelta(hours=1))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        [(_, card)] = h.channel.approvals
        await h.say(f"/approve {card.approval_id}")
        assert any("Good morning" in t for t in h.channel.texts())
        clock.advance(timedelta(days=1))
        await h.steward.scheduler.run_due()
        assert "Python 3.15 released" in asked[0]
        assert all("Python 3.15 released" not in later for later in asked[1:]), asked[1:]
