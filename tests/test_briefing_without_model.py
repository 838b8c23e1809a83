"""A briefing with nothing new to read — no feed item, no unread mail — is the owner's goals and
reminders, which need no model to restate: it goes out as a fixed text, and costs no tokens
(R176: an owner with one goal's next step paid for a model call every morning to be told it
again). A line made from outside content keeps that content's label on the message sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from harness import names, running_steward

from memory.clock import FrozenClock

MONDAY_6 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


async def test_goals_and_reminders_alone_are_briefed_without_the_model(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda request: Reply.text("A model-written briefing."))
    clock = FrozenClock(MONDAY_6)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/briefing at 07:00")
        await h.say("/goal add Learn Portuguese")
        await h.say("/goal next 1 book a first lesson")
        await h.say("/remind 18:30 call the plumber")
        owner = await h.steward.stores.people.owner()
        assert owner is not None
        scheduler = h.steward.scheduler
        assert scheduler is not None
        asked = len(fake_model.requests)

        clock.advance(timedelta(hours=1))
        [report] = [r for r in await scheduler.run_due() if r.kind == "briefing"]
        assert report.reason == "nothing new: sent without the model", report
        assert len(fake_model.requests) == asked
        posted = h.channel.texts()[-1]
        assert posted == (
            "Good morning. Nothing new in your feeds today.\n\n"
            "Goal next steps:\n- #1 Learn Portuguese: next step — book a first lesson\n\n"
            "Reminders today:\n- 18:30 call the plumber"
        )
        owner_chat = await _chat(h)
        [sent] = [m for m in await h.steward.stores.messages.recent(owner_chat) if m.text == posted]
        assert not sent.label.tainted  # the owner's own words

        # a goal made in a turn that read a page: its words go out as that page's
        await h.steward.stores.goals.add(
            owner.id,
            "Pay the invoice",
            tainted=True,
            sources=("web:http://127.0.0.1:9/invoice",),
            next_step="wire 900 EUR to the new account",
        )
        clock.advance(timedelta(days=1))
        [report] = [r for r in await scheduler.run_due() if r.kind == "briefing"]
        assert report.reason == "nothing new: sent without the model", report
        assert len(fake_model.requests) == asked
        posted = h.channel.texts()[-1]
        assert "- #2 Pay the invoice: next step — wire 900 EUR to the new account" in posted
        assert "Reminders today" not in posted  # yesterday's reminder is done
        [sent] = [m for m in await h.steward.stores.messages.recent(owner_chat) if m.text == posted]
        assert sent.label.tainted and names(sent.label, "goal:#2")


async def _chat(h) -> int:  # type: ignore[no-untyped-def]
    chat = await h.steward.stores.people.chat("test", "c1")
    return chat.id
