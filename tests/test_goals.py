"""Goals that persist: the /goal lifecycle, goals in every turn's context, the goal tools, and
check-ins that are decided in code and reach the model only when something is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import Harness, echo_reply, running_steward

from agent.scheduler import SchedulerService
from memory.clock import FrozenClock

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)  # a Tuesday


def scheduler(h: Harness) -> SchedulerService:
    assert h.steward.scheduler is not None
    return h.steward.scheduler


async def test_goal_lifecycle(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        assert await h.say("/goal") == "No goals yet. Start one with /goal add <text>."
        assert (await h.say("/goal add Run a half marathon")).startswith(
            "Goal #1 added: Run a half marathon."
        )
        assert await h.say("/goal next 1 buy running shoes") == (
            "Next step for #1: buy running shoes"
        )
        clock.advance(timedelta(days=1))
        assert await h.say("/goal note 1 ran 5 km") == "Noted on #1 (2026-03-11): ran 5 km"
        assert await h.say("/goal due 1 2026-05-01") == "#1 is due Fri 2026-05-01."
        # "today" was "in the past"; a dotted date was due at 00:00, a dashed one at 09:00
        assert await h.say("/goal due 1 today") == "#1 is due Wed 2026-03-11."
        assert await h.say("/goal due 1 tomorrow") == "#1 is due Thu 2026-03-12."
        assert await h.say("/goal due 1 in 1 week") == "#1 is due Wed 2026-03-18."
        assert "in the past" in await h.say("/goal due 1 yesterday")
        assert await h.say("/goal due 1 1.5.2026") == "#1 is due Fri 2026-05-01."
        goal = await h.steward.stores.goals.get(1, 1)
        assert goal is not None and goal.due_at is not None
        assert "T23:59:00" in goal.due_at  # the day's end (this user: UTC)
        await h.say("/goal due 1 2026-05-01")
        assert await h.say("/goal every 1 weekly") == (
            "I'll check in on #1 every Wednesday at 09:00, and only message you when "
            "something is due."
        )
        assert await h.say("/goal list") == (
            "#1 Run a half marathon — next: buy running shoes (due 2026-05-01)"
            " (last progress 2026-03-11)"
        )
        assert await h.say("/goal show 1") == "\n".join(
            [
                "#1 Run a half marathon",
                "Status: active",
                "Next step: buy running shoes",
                "Due: Fri 2026-05-01",
                "Check-ins: every Wednesday at 09:00",
                "Started: 2026-03-10",
                "Progress:",
                "  2026-03-11 ran 5 km",
            ]
        )
        await h.say("/goal add Learn Go")
        assert await h.say("/goal done 1") == (
            "Goal #1 Run a half marathon is done. Check-ins stopped."
        )
        assert await scheduler(h).store.for_user(1, ("checkin",)) == []
        assert await h.say("/goal drop 2") == "Goal #2 Learn Go is dropped. Check-ins stopped."
        # a closed goal refuses, and says so: it read like a success before
        refused = await h.say("/goal note 1 more")
        assert refused.startswith("Goal #1 is already done, so nothing was changed")
        assert "already done" in await h.say("/goal drop 1")
        assert "closed: /goal list all)" in await h.say("/goal list")
        assert await h.say("/goal list all") == (
            "#1 Run a half marathon [done] — next: buy running shoes (due 2026-05-01)"
            " (last progress 2026-03-11)\n#2 Learn Go [dropped]"
        )
        assert await h.say("/goal show 9") == "There is no goal #9."
        for bad in ("/goal note x ran", "/goal every 2", "/goal every 1 sometimes", "/goal fly"):
            assert "Usage: /goal add <text>" in await h.say(bad), bad
        events = [e.kind for e in await h.steward.stores.audit.recent(50) if e.kind[:5] == "goal."]
        assert events == [
            "goal.added",
            "goal.next_step",
            "goal.progress",
            "goal.added",
            "goal.done",
            "goal.dropped",
        ]


async def test_active_goals_are_in_every_turn_and_the_agent_can_update_them(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Run a half marathon")
        await h.say("/goal next 1 buy running shoes")
        await h.say("/goal note 1 ran 5 km")
        fake_model.reply_tool_uses(
            [
                ("goal_progress", {"goal_id": 1, "note": "bought shoes"}),
                ("goal_next_step", {"goal_id": 1, "next_step": "run 8 km on Saturday"}),
                ("goal_add", {"title": "Read 12 books", "cadence": "every monday 9:00"}),
            ]
        )
        fake_model.reply_text("Logged it.")
        assert await h.say("I bought the shoes today!") == "Logged it."
        context = fake_model.requests[0].last_user_text
        assert (
            "- #1 Run a half marathon — next step: buy running shoes"
            " — last progress 2026-03-10: ran 5 km"
        ) in context
        results = [r["content"] for r in fake_model.requests[1].tool_results]
        assert results == [
            "Noted on goal #1.",
            "Next step for goal #1: run 8 km on Saturday",
            "Goal #2 added: Read 12 books (check-ins every Monday at 09:00)",
        ]
        fake_model.on_request(echo_reply)
        await h.say("what next?")
        context = fake_model.requests[-1].last_user_text
        assert "#1 Run a half marathon — next step: run 8 km on Saturday" in context
        assert "last progress 2026-03-10: bought shoes" in context
        assert "- #2 Read 12 books" in context
        [checkin] = await scheduler(h).store.for_user(1, ("checkin",))
        assert checkin.payload == {"goal_id": 2}


async def test_many_goals_and_long_titles_do_not_swell_every_turn(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R57: 150 goals were a 31,000-character context on "hello" (~7,800 tokens a turn), and a
    20,000-character title was taken; the daily budget went in a few dozen turns."""
    clock = FrozenClock(NOW)
    fake_model.on_request(echo_reply)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        refused = await h.say("/goal add " + "details " * 2500)
        for n in range(1, 31):
            await h.say(f"/goal add Goal number {n} with a sensible title")
        await h.say("/goal due 30 2026-04-01")  # due soonest: shown though it is the newest
        await h.say("hello")
        context = fake_model.requests[-1].last_user_text
    assert "at most 200 characters" in refused
    shown = [line for line in context.splitlines() if line.startswith("- #")]
    assert len(shown) == 20 and "- #30 Goal number 30" in context
    assert "(and 10 more: goal_list shows them all)" in context


def checkin_reply(request: RecordedRequest) -> Reply:
    if "Goal check-in" in request.last_user_text:
        return Reply.text("How about a 5 km run today? Next step: buy running shoes.")
    return echo_reply(request)


async def test_check_ins_call_the_model_only_when_something_is_due(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(checkin_reply)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Run a half marathon")
        await h.say("/goal next 1 buy running shoes")
        await h.say("/goal every 1 daily 9:00")

        # Day 1, 09:00: nothing logged yet, so it is due: one model call, one nudge.
        clock.advance(timedelta(hours=1))
        [report] = await scheduler(h).run_due()
        assert (report.status, report.reason) == (
            "sent",
            "no progress noted since the last check-in; posted",
        )
        [request] = fake_model.requests
        prompt = request.last_user_text
        assert "Goal check-in for goal #1: “Run a half marathon”" in prompt
        assert "Next step: buy running shoes" in prompt
        assert "reply exactly SKIP and nothing is sent" in prompt
        assert h.channel.texts("c1")[-1].startswith("How about a 5 km run today?")

        # Progress logged since: on day 2 nothing is due, decided without the model.
        clock.advance(timedelta(hours=3))
        await h.say("/goal note 1 ran 5 km")
        clock.advance(timedelta(hours=21))
        [report] = await scheduler(h).run_due()
        assert report.status == "skipped"
        assert report.reason == (
            "progress noted since the last check-in (1 notes) (decided without the model)"
        )
        assert len(fake_model.requests) == 1

        # Day 3: no progress since day 2's look, so it is due again; the model may stay quiet.
        fake_model.reply_text("SKIP")
        clock.advance(timedelta(days=1))
        sent = len(h.channel.sent)
        [report] = await scheduler(h).run_due()
        assert report.status == "silent"
        assert len(h.channel.sent) == sent and len(fake_model.requests) == 2

        rows = await h.turns()
        assert [r.kind for r in rows] == ["checkin", "checkin"]
        assert all(r.cost_usd > 0 for r in rows)  # the cost of each check-in is on record
        runs = await h.steward.stores.audit.recent(10, kind="schedule.run")
        assert [e.detail["outcome"] for e in runs] == ["sent", "skipped", "silent"]
        assert runs[0].detail["cost_usd"] > 0 and "cost_usd" not in runs[1].detail
        assert "checkin: 2 turns" in await h.say("/usage")


async def test_progress_check_ins_and_closings_are_remembered_for_later_turns(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(checkin_reply)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Run a half marathon")
        await h.say("/goal every 1 daily 9:00")
        clock.advance(timedelta(hours=1))
        [report] = await scheduler(h).run_due()
        assert report.status == "sent"
        await h.say("/goal note 1 ran 5 km along the canal")
        await h.say("/goal done 1")
        assert h.steward.memory is not None
        saved = await h.steward.memory.store.records.recent(1, 10)
        by_text = {m.text: m for m in saved}
        checkin = by_text[
            "Check-in on goal “Run a half marathon” (2026-03-10): "
            "How about a 5 km run today? Next step: buy running shoes."
        ]
        assert (checkin.kind.value, checkin.source.value) == ("goal_note", "model_inferred")
        progress = by_text[
            "Progress on goal “Run a half marathon” (2026-03-10): ran 5 km along the canal"
        ]
        assert (progress.kind.value, progress.source.value, progress.trust.value) == (
            "goal_note",
            "owner_said",
            "trusted",
        )
        assert "Goal “Run a half marathon” was marked done on 2026-03-10." in by_text
        # Months later, with the goal closed, a turn about it still finds what happened.
        clock.advance(timedelta(days=120))
        await h.say("how did the canal runs for the half marathon go?")
        context = fake_model.requests[-1].last_user_text
        assert "ran 5 km along the canal" in context, context


async def test_a_check_in_for_a_closed_goal_stops_itself(tmp_path: Path) -> None:
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/goal add Learn Go")
        await h.say("/goal every 1 daily 9:00")
        await h.steward.stores.goals.set_status(1, "done")  # type: ignore[arg-type]
        clock.advance(timedelta(hours=1))
        [report] = await scheduler(h).run_due()
        assert (report.status, report.reason) == ("skipped", "the goal is done")
        assert await scheduler(h).store.for_user(1, ("checkin",)) == []


async def test_a_goal_due_soon_is_due_for_a_check_in_despite_progress(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(checkin_reply)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add File taxes")
        await h.say("/goal due 1 2026-03-12 12:00")
        await h.say("/goal every 1 daily 9:00")
        await h.say("/goal note 1 gathered receipts")
        clock.advance(timedelta(hours=1))
        [report] = await scheduler(h).run_due()
        assert report.status == "sent"
        assert report.reason.startswith("the goal is due within 3 days")
        assert "Due: Thu 2026-03-12." in fake_model.requests[0].last_user_text


async def test_a_goal_long_overdue_is_quiet_while_progress_is_noted(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R107: a goal past its due date was checked in on at every run, whatever progress was
    noted (a daily model call and message, a month on). Within three days after its date it
    still is; after that, progress noted since the last check-in means nothing is due."""
    fake_model.on_request(checkin_reply)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add File taxes")
        await h.say("/goal due 1 2026-03-12 12:00")
        await h.say("/goal every 1 daily 9:00")
        clock.advance(timedelta(days=3, hours=1))  # Friday 09:00: the day after its date
        await h.say("/goal note 1 gathered receipts")
        [report] = await scheduler(h).run_due()
        assert report.status == "sent"
        assert report.reason.startswith("the goal is past its due date;")
        clock.advance(timedelta(days=30))
        await h.say("/goal note 1 wrote to the accountant")
        [report] = await scheduler(h).run_due()
        assert report.status == "skipped" and report.reason.startswith("progress noted")
        clock.advance(timedelta(days=1))  # a day without progress: due again
        [report] = await scheduler(h).run_due()
        assert report.status == "sent" and "past its due date, and no progress" in report.reason


async def test_a_due_date_alone_is_followed_up_the_day_before(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A goal with a due date and no check-in cadence was never checked in on: six days of the
    scheduler past the date did nothing (review 31)."""
    fake_model.on_request(checkin_reply)
    clock = FrozenClock(NOW)  # Tuesday 08:00 UTC
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add File taxes")
        await h.say("/goal due 1 2026-03-13")
        [checkin] = await scheduler(h).store.for_user(1, ("checkin",))
        assert checkin.next_run_at == datetime(2026, 3, 12, 9, 0, tzinfo=UTC)
        clock.advance(timedelta(days=2, hours=1))  # Thursday 09:00
        [report] = await scheduler(h).run_due()
        assert report.status == "sent" and "due within 3 days" in report.reason
        assert h.channel.texts("c1")[-1].startswith("How about")
        clock.advance(timedelta(days=6))
        assert await scheduler(h).run_due() == []  # once: no nagging every day after
        # a new date replaces the follow-up; no date, or a cadence, takes it away
        await h.say("/goal due 1 2026-03-30")
        [again] = await scheduler(h).store.for_user(1, ("checkin",))
        assert again.next_run_at == datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
        await h.say("/goal due 1 off")
        assert await scheduler(h).store.for_user(1, ("checkin",)) == []
        assert "check in" in await h.say("/goal every 1 every monday 9:00")
        await h.say("/goal due 1 2026-04-30")
        [weekly] = await scheduler(h).store.for_user(1, ("checkin",))
        assert weekly.trigger["type"] == "every"
        await h.say("/goal every 1 off")  # the due date's own check-in comes back (review 36)
        [back] = await scheduler(h).store.for_user(1, ("checkin",))
        assert back.next_run_at == datetime(2026, 4, 29, 9, 0, tzinfo=UTC)


async def test_a_due_day_and_its_check_in_follow_a_new_timezone(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A due date is a day: after /timezone it is the same day's end there, and its check-in
    is the day before at 9:00 there (it stayed at the old zone's: 02:00, or the next day)."""
    async with running_steward(tmp_path, fake_model.base_url, clock=FrozenClock(NOW)) as h:
        await h.say("/goal add file taxes")
        assert "due Tue 2027-06-01" in await h.say("/goal due 1 2027-06-01")
        assert "Check-ins: Mon 2027-05-31 09:00" in await h.say("/goal show 1")
        said = await h.say("/timezone America/Los_Angeles")
        assert "1 goal due date(s) stay on their day there" in said
        shown = await h.say("/goal show 1")
        assert "Due: Tue 2027-06-01\n" in shown
        assert "Check-ins: Mon 2027-05-31 09:00" in shown
        [checkin] = await scheduler(h).store.for_user(1, ("checkin",))
        assert checkin.next_run_at == datetime(2027, 5, 31, 16, 0, tzinfo=UTC)  # 09:00 PDT
        await h.say("/timezone Asia/Tokyo")
        assert "Due: Tue 2027-06-01\n" in await h.say("/goal show 1")
        assert "(due 2027-06-01)" in await h.say("/goal list")


async def test_a_goal_closed_by_mistake_is_reopened_with_its_check_ins_and_renamed(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """`/goal done 1` typed for `/goal note 1 …` was final: notes, cadence and even drop were
    refused, and a title's typo stayed."""
    async with running_steward(tmp_path, fake_model.base_url, clock=FrozenClock(NOW)) as h:
        await h.say("/goal add Run a half marathn")
        await h.say("/goal every 1 every monday 9:00")
        await h.say("/goal due 1 2026-05-01")
        await h.say("/goal done 1")
        assert "already" in (await h.say("/goal note 1 ran 5k")).lower()
        assert await scheduler(h).store.for_user(1, ("checkin",)) == []
        said = await h.say("/goal reopen 1")
        assert "is active again" in said and "every Monday at 09:00" in said
        [checkin] = await scheduler(h).store.for_user(1, ("checkin",))
        assert checkin.trigger["type"] == "every"
        assert "Noted on #1" in await h.say("/goal note 1 ran 5k")
        assert "is not closed" in await h.say("/goal reopen 1")
        assert "now: Run a half marathon" in await h.say("/goal rename 1 Run a half marathon")
        shown = await h.say("/goal show 1")
        assert shown.startswith("#1 Run a half marathon\nStatus: active") and "ran 5k" in shown
        assert "What should it be called?" in await h.say("/goal rename 1")
        kinds = [e.kind for e in await h.steward.stores.audit.recent(50)]
        assert "goal.reopened" in kinds and "goal.renamed" in kinds


async def test_a_reopened_goal_gets_the_very_check_ins_it_had(tmp_path: Path) -> None:
    """R107: reopening read the cadence back from its description: "every weekend day at
    10:00" did not parse, so the check-ins were lost, and a fortnightly one moved to the
    reopening's weekday. The schedule it had is set going again; one turned off before the
    close stays off."""
    clock = FrozenClock(datetime(2026, 3, 11, 10, 15, tzinfo=UTC))  # a Wednesday
    async with running_steward(tmp_path, None, clock=clock) as h:
        await h.say("/goal add Learn piano")
        assert "every weekend day at 10:00" in await h.say("/goal every 1 every weekend 10:00")
        await h.say("/goal done 1")
        said = await h.say("/goal reopen 1")
        assert "Check-ins: every weekend day at 10:00" in said, said
        await h.say("/goal add Run")
        await h.say("/goal every 2 every 2 weeks 9:00")  # from this Wednesday, fortnightly
        [before] = [
            s
            for s in await scheduler(h).store.for_user(1, ("checkin",))
            if s.payload["goal_id"] == 2
        ]
        await h.say("/goal done 2")
        clock.advance(timedelta(days=1))  # reopened on a Thursday
        await h.say("/goal reopen 2")
        [after] = [
            s
            for s in await scheduler(h).store.for_user(1, ("checkin",))
            if s.payload["goal_id"] == 2
        ]
        assert after.next_run_at == before.next_run_at  # Wed 2026-03-25, on its weeks
        await h.say("/goal add Read")
        await h.say("/goal every 3 daily 8:00")
        await h.say("/goal every 3 off")
        await h.say("/goal done 3")
        assert "Check-ins" not in await h.say("/goal reopen 3")
        assert [
            s.payload["goal_id"] for s in await scheduler(h).store.for_user(1, ("checkin",))
        ] == [1, 2]


async def test_several_goals_close_at_once_and_a_remark_is_still_a_remark(tmp_path: Path) -> None:
    """`/goal done 1 2` closed #1 and said nothing of #2 (review 28)."""
    async with running_steward(tmp_path, None) as h:
        for title in ("File taxes", "Learn Go", "Call the bank"):
            await h.say(f"/goal add {title}")
        both = await h.say("/goal done 1 2")
        assert "#1 File taxes is done" in both and "#2 Learn Go is done" in both
        assert "#3 Call the bank is done" in await h.say("/goal done 3 finally!")
        assert "There is no goal #9" in await h.say("/goal drop 9 8")
        for title in ("d", "e", "f", "g"):
            await h.say(f"/goal add {title}")
        said = await h.say("/goal done 4 and 5")  # review 36: natural spellings
        assert "#4 d is done" in said and "#5 e is done" in said, said
        said = await h.say("/goal done 6, 7")
        assert "#6 f is done" in said and "#7 g is done" in said, said


async def test_goals_are_picked_up_without_being_told(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The model is told to track a goal the owner mentions in passing (and offered the tool
    to), and a goal it adds that way is tracked like any other (review 31)."""
    fake_model.reply_tool_use("goal_add", {"title": "Run a half marathon", "due": "2026-04-30"})
    fake_model.reply_text("I'll track that goal for you.")
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("I want to run a half marathon by the end of April.")
        first = fake_model.requests[0]
        system = " ".join(block.get("text", "") for block in first.body["system"])
        assert "picked up without being told" in system and "goal_add" in system
        assert "goal_add" in first.tool_names
        listed = await h.say("/goal list")
        assert "Run a half marathon" in listed and "due 2026-04-30" in listed, listed
        [checkin] = await scheduler(h).store.for_user(1, ("checkin",))  # followed up too
        assert checkin.next_run_at == datetime(2026, 4, 29, 9, 0, tzinfo=UTC)


async def test_a_reopened_goal_brings_back_only_the_check_ins_its_close_stopped(
    tmp_path: Path,
) -> None:
    """R111: reopening took any cancelled check-in of the goal: a guest revoked (their
    schedules stopped) and let back in got theirs back by closing and reopening the goal. (One
    the close stopped comes back: `test_a_reopened_goal_gets_the_very_check_ins_it_had`.)"""
    from memory.people import Identity

    ann = Identity("telegram", "3003")
    async with running_steward(tmp_path, None) as h:
        people, schedules = h.steward.stores.people, scheduler(h).store
        await people.admit(ann)
        await h.say("/goal add Learn Go", sender=ann, chat="3003")
        assert "check in" in await h.say("/goal every 1 daily 9:00", sender=ann, chat="3003")
        user = await people.resolve(ann)
        assert user is not None and len(await schedules.for_user(user.id, ("checkin",))) == 1
        await h.say(f"/revoke {ann}")
        await h.say(f"/allow {ann}")
        await h.say("/goal done 1", sender=ann, chat="3003")
        said = await h.say("/goal reopen 1", sender=ann, chat="3003")
        assert "Check-ins: every day" not in said
        assert await schedules.for_user(user.id, ("checkin",)) == []


async def test_a_check_in_is_not_brought_back_into_a_chat_unlinked_since_the_close(
    tmp_path: Path,
) -> None:
    """R111: the owner's goal checked in in the private chat of a second account; the goal was
    closed, then that account unlinked (someone else now): reopening set the owner's check-ins
    (the goal's notes) going again in that chat."""
    import re

    from agent.goals import Goals
    from agent.scheduler.recurrence import Recurrence
    from agent.types import Address
    from memory.people import Identity

    second = Identity("telegram", "2002")
    async with running_steward(tmp_path, None) as h:
        stores, people = h.steward.stores, h.steward.stores.people
        await people.admit(second)
        found = re.search(r"code: (\S+)", await h.say("/link"))
        assert found is not None
        assert (await h.say(f"/link {found[1]}", sender=second, chat="2002")).startswith("Linked")
        owner = await people.resolve(second)
        assert owner is not None and owner.is_owner
        chat = await people.chat("telegram", "2002")
        await stores.messages.record_incoming(
            chat_id=chat.id, user_id=owner.id, text="hi", platform_message_id="m1"
        )
        await h.say("/goal add Pay off the loan")
        st = h.steward
        goals = Goals(st.stores, st.scheduler, st.settings.timezone, st.memory, clock=st.clock)
        await goals.set_cadence(
            owner, 1, Recurrence(hour=9, minute=0), chat=chat, address=Address("telegram", "2002")
        )
        await h.say("/goal done 1")
        await h.say(f"/revoke {second}")  # unlinked: a person of its own again
        assert "Check-ins" not in await h.say("/goal reopen 1")
        assert await stores.schedules.for_user(owner.id, ("checkin",)) == []


def _nudging(request: RecordedRequest) -> Reply:
    if "Goal check-in for goal" in request.last_user_text:
        return Reply.text("How is the report going?")
    return echo_reply(request)


async def test_a_due_date_said_late_gets_no_nudge_minutes_later(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R176: a goal due tomorrow, set at 10:00, was checked in on at 10:05 (the day before at
    9:00 had passed): the due day's morning stands instead, and nothing under 3 hours away."""
    fake_model.on_request(_nudging)
    clock = FrozenClock(NOW.replace(hour=10))  # Tuesday 10:00 UTC
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Finish the report")
        await h.say("/goal due 1 2026-03-11")
        assert "Check-ins: Wed 2026-03-11 09:00" in await h.say("/goal show 1")
        await h.say("/goal add File the form")
        await h.say("/goal due 2 2026-03-10")  # today: nothing left to nudge before it
        assert await scheduler(h).store.for_user(1, ("checkin",)) != []
        clock.advance(timedelta(hours=3))
        await scheduler(h).run_due()
    assert "How is the report going?" not in h.channel.texts()


async def test_a_due_date_said_early_in_the_morning_is_nudged_on_its_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R178: "due tomorrow" said at 06:30, when the day before's 9:00 is under three hours
    away: no check-in was made at all; the due day's 9:00 stands instead."""
    clock = FrozenClock(NOW.replace(hour=6, minute=30))  # Tuesday 06:30 UTC
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Finish the report")
        await h.say("/goal due 1 2026-03-11")
        assert "Check-ins: Wed 2026-03-11 09:00" in await h.say("/goal show 1")


async def test_one_goal_is_checked_in_on_once_a_day_whatever_its_schedules(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R176: after a due date's check-in went out, `/timezone` (or the date said again, or
    `/goal every 1 off`) made a new check-in schedule, which sent a second nudge that day."""
    fake_model.on_request(_nudging)
    clock = FrozenClock(NOW)  # Tuesday 08:00 UTC
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/goal add Finish the report")
        await h.say("/goal due 1 2026-03-13")  # Friday: the check-in Thursday 09:00
        clock.advance(timedelta(days=2, hours=1, minutes=5))  # Thursday 09:05
        await scheduler(h).run_due()
        assert h.channel.texts().count("How is the report going?") == 1
        clock.advance(timedelta(hours=2))
        await h.say("/timezone America/New_York")  # Thursday 09:00 there is still to come
        for _ in range(8):
            clock.advance(timedelta(hours=1))
            await scheduler(h).run_due()
    assert h.channel.texts().count("How is the report going?") == 1


async def test_flying_west_after_todays_reminder_brings_no_second_one_today(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R176: "every day 8:00 pills" came at 8:00 in Lisbon and again at 8:00 in New York the
    day the owner flew there (a double dose); flying east, the next day's comes as ever."""
    clock = FrozenClock(datetime(2026, 6, 1, 6, 0, tzinfo=UTC))  # Monday 07:00 Lisbon
    async with running_steward(tmp_path, fake_model.base_url, clock=clock) as h:
        await h.say("/timezone Europe/Lisbon")
        await h.say("/remind every day 8:00 pills")
        clock.advance(timedelta(hours=1, minutes=1))  # 08:01 Lisbon
        await scheduler(h).run_due()
        assert h.channel.texts().count("Reminder: pills") == 1
        clock.advance(timedelta(hours=2))  # 10:01 Lisbon, 05:01 New York
        await h.say("/timezone America/New_York")
        for _ in range(12):
            clock.advance(timedelta(hours=1))
            await scheduler(h).run_due()
        assert h.channel.texts().count("Reminder: pills") == 1  # not again at 08:00 there
        [pills] = await scheduler(h).store.for_user(1, ("reminder",))
        assert pills.next_run_at == datetime(2026, 6, 2, 12, 0, tzinfo=UTC)  # Tue 08:00 EDT
        await h.say("/timezone Asia/Tokyo")  # on east: Tuesday 08:00 there is the next
        [pills] = await scheduler(h).store.for_user(1, ("reminder",))
        assert pills.next_run_at == datetime(2026, 6, 1, 23, 0, tzinfo=UTC)
