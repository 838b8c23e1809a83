"""R248: goal check-ins of a tainted goal (a guest's, or the owner's shaped by outside content):
every goal tool in their turn asks the owner, so the prompt no longer asks to record a step,
and a check-in that waited on a card counts as sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, echo_reply, running_steward

from agent.goals import Goals
from memory.clock import FrozenClock
from memory.people import Identity

GUEST = Identity("test", "priya")


def _goal_of(text: str) -> int:
    return int(text.split("Goal check-in for goal #", 1)[1].split(":", 1)[0])


def obeys_the_prompt(request: RecordedRequest) -> Reply:
    """A model that does what the check-in prompt asks: records a next step with
    goal_next_step when told to, then writes the nudge."""
    text = request.last_user_text
    if "Goal check-in for goal" in text and not request.tool_results:
        if "record it with goal_next_step" in text and "Next step: none recorded" in text:
            return Reply.tool_use(
                "goal_next_step", {"goal_id": _goal_of(text), "next_step": "run 3 km Saturday"}
            )
        return Reply.text("NUDGE: run 3 km on Saturday!")
    if request.tool_results:
        return Reply.text("NUDGE: run 3 km on Saturday!")
    return echo_reply(request)


def updates_the_step(request: RecordedRequest) -> Reply:
    """A model that sets a fresh next step in every check-in (the prompt allows it)."""
    text = request.last_user_text
    if "Goal check-in for goal" in text and not request.tool_results:
        return Reply.tool_use(
            "goal_next_step", {"goal_id": _goal_of(text), "next_step": "run 3 km Saturday"}
        )
    if request.tool_results:
        return Reply.text("NUDGE: run 3 km on Saturday!")
    return echo_reply(request)


async def test_a_guests_check_in_does_not_wait_on_the_owner_every_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The prompt tells the model to record a next step with goal_next_step; a guest's goal is
    always tainted, so that call asks the owner: a card the guest cannot decide lands in the
    guest's chat each morning, the check-in waits 15 minutes, the step is never recorded."""
    fake_model.on_request(obeys_the_prompt)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.steward.stores.people.admit(GUEST, "Priya")
        await h.say("hi", sender=GUEST, chat="priya-dm")
        await h.say("/goal add Run a 10k", sender=GUEST, chat="priya-dm")
        await h.say("/goal every 1 daily 9:00", sender=GUEST, chat="priya-dm")
        clock.advance(timedelta(hours=1))
        [report] = await h.steward.scheduler.run_due()
    assert h.channel.approvals == [], [(a.chat_id, p.tool) for a, p in h.channel.approvals]
    assert report.status == "sent", report.reason


async def _days(h: Harness, clock: FrozenClock, days: int) -> list[str]:
    statuses = []
    for _ in range(days):
        statuses += [r.status for r in await h.steward.scheduler.run_due()]
        clock.advance(timedelta(minutes=16))
        await h.steward.expire_approvals()  # the turn goes on, and posts its nudge
        clock.advance(timedelta(hours=23, minutes=44))
    return statuses


async def test_check_ins_that_waited_on_an_approval_count_as_sent(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Three check-ins in a row unanswered: quiet until the owner writes. A check-in whose turn
    waited on a card (then posted its nudge) is run 'waiting' for good, and `_unanswered` (and
    the 20-hour guard, and the prompt's "Last check-in") count 'sent' runs only: the owner's
    goal made in a turn that read a mail was nudged every day, forever."""
    fake_model.on_request(updates_the_step)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("hello")  # the owner's private chat, c1
        st = h.steward
        owner = await st.stores.people.resolve(Identity("test", "owner"))
        assert owner is not None
        goals = Goals(st.stores, st.scheduler, st.settings.timezone, st.memory, clock=st.clock)
        # what an approved goal_add in a turn that read a mail stores (tainted=ctx.tainted)
        await goals.add(owner, "Finish the online course", tainted=True, sources=("mail:#7",))
        await h.say("/goal every 1 daily 9:00")
        clock.advance(timedelta(hours=1))
        sent_before = len(h.channel.texts("c1"))
        statuses = await _days(h, clock, 6)
        nudges = [t for t in h.channel.texts("c1")[sent_before:] if t.startswith("NUDGE")]
    assert len(nudges) == 3, (statuses, len(nudges))


async def test_a_goal_taken_up_again_is_offered_its_closed_self(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A changed mind: dropped in March, taken up again in May. goal_add started a blank #2
    with no word of #1 (its notes) or /goal reopen; the model, which sees only active goals
    and has no reopen tool, could not know."""
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Run a half marathon")
        await h.say("/goal note 1 ran 12 km")
        await h.say("/goal drop 1")
        clock.advance(timedelta(days=60))
        fake_model.reply_tool_use("goal_add", {"title": "Run a half marathon"})
        fake_model.reply_text("ok")
        await h.say("I'm back on the half marathon plan!")
        [result] = [r["content"] for q in fake_model.requests for r in q.tool_results]
        await h.say("/goal drop 2")
        said = await h.say("/goal add run a half marathon.")
        other = await h.say("/goal add Learn Italian")
    assert "closed goal #1 had this title: /goal reopen 1" in result, result
    assert "(closed goal #1, #2 had this title: /goal reopen 2 brings it back" in said, said
    assert "closed goal" not in other, other
