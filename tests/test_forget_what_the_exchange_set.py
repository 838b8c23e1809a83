"""Forgetting an exchange reaches what it set up: its reminders, tasks and goals.

Review 36: "remind me in 2 hours to rotate the VPN password <secret>", then `/memory search`
and `/memory forget` of the message, as the README says for a secret pasted by mistake. The
reminder the model set in that exchange kept the secret in its text, was not named by the
answer, and two hours later sent it again, stored as a new message that search found. A task
would have sent it back to the model as its own instruction; a goal kept it as its title in
`/goal`, the turn's context and check-ins. Now each loses the words with the exchange: a
reminder or task still to come is cancelled (said with when it was due, to set again), a goal
keeps its notes and dates under a placeholder title (said, with `/goal rename`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from harness import OWNER, running_steward
from test_forget_copies import live_rows
from test_web_security import Web, web  # noqa: F401
from trust_world import instruction

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
from memory.clock import FrozenClock
from memory.goals import GoalStatus
from memory.schedules import RunStatus, ScheduleStatus
from memory.stores import Stores

SECRET = "hunter2-Xq9vLp"
NOW = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)


def model(request: RecordedRequest) -> Reply:
    if request.system_text == EXTRACTION_SYSTEM:
        return Reply.text('{"memories": []}')
    if request.system_text == COMPACTION_SYSTEM:
        return Reply.text(json.dumps({"summary": "chat", "facts": []}))
    if request.tool_results:
        return Reply.text("Done.")
    text = request.last_user_text
    if "water" in text:
        return Reply.tool_use("reminder_add", {"when": "in 3 hours", "text": "water the plants"})
    if "remind me" in text:
        return Reply.tool_use(
            "reminder_add", {"when": "in 2 hours", "text": f"rotate the VPN password {SECRET}"}
        )
    if "track" in text:
        return Reply.tool_uses(
            [
                ("goal_add", {"title": f"Rotate VPN password {SECRET}"}),
                ("task_add", {"when": "in 2 hours", "instruction": f"check VPN takes {SECRET}"}),
            ]
        )
    return Reply.text("Okay.")


async def _forget_the_secret(h) -> str:  # type: ignore[no-untyped-def]
    found = await h.say(f"/memory search {SECRET}")
    numbers = re.findall(r"message #(\d+): you wrote", found)
    assert len(numbers) == 1, found
    return await h.say(f"/memory forget {numbers[0]}")


async def test_a_reminder_set_in_a_forgotten_exchange_does_not_say_it_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(model)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say("remind me in 3 hours to water the plants")  # another exchange: it stays
        await h.say(f"remind me in 2 hours to rotate the VPN password {SECRET}")
        schedules = h.steward.stores.schedules
        owner = await h.steward.stores.people.resolve(OWNER)
        assert owner is not None
        both = await schedules.for_user(owner.id, ("reminder",), statuses=("active",))
        [water] = [s for s in both if s.payload["text"] == "water the plants"]
        [vpn] = [s for s in both if s.id != water.id]
        said = await _forget_the_secret(h)
        assert f"With it, reminder #{vpn.id} (Tue 10 Mar 15:00) is cancelled" in said
        assert f"#{water.id}" not in said
        assert live_rows(h.settings.database_path, SECRET) == []
        gone = await schedules.get(vpn.id)
        assert gone is not None and gone.status is ScheduleStatus.CANCELLED
        kept = await schedules.get(water.id)
        assert kept is not None and kept.status is ScheduleStatus.ACTIVE
        assert kept.payload["text"] == "water the plants"
        sent_before = len(h.channel.sent)
        clock.advance(timedelta(hours=4))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        sent = [text for _, text in h.channel.sent[sent_before:]]
        assert any("water the plants" in text for text in sent), sent
        assert not any(SECRET in text for text in sent), sent
        again = await h.say(f"/memory search {SECRET}")
        assert "No memories or messages match" in again, again


async def test_a_goal_and_a_task_started_in_a_forgotten_exchange_lose_its_words(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(model)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say(f"track rotating the VPN password {SECRET} and check it later")
        owner = await h.steward.stores.people.resolve(OWNER)
        assert owner is not None
        [goal] = await h.steward.stores.goals.active(owner.id)
        await h.say(f"/goal note {goal.id} asked IT for the new policy")
        [task] = await h.steward.stores.schedules.for_user(owner.id, ("task",))
        said = await _forget_the_secret(h)
        assert f"With it, task #{task.id} (Tue 10 Mar 15:00) is cancelled" in said
        assert f"It started goal #{goal.id}, which loses its title" in said
        assert f"/goal rename {goal.id} <title>" in said
        assert live_rows(h.settings.database_path, SECRET) == []
        [kept] = await h.steward.stores.goals.active(owner.id)
        assert kept.id == goal.id and kept.status is GoalStatus.ACTIVE  # notes and dates stay
        assert "asked IT for the new policy" in await h.say(f"/goal show {goal.id}")
        renamed = await h.say(f"/goal rename {goal.id} Rotate the VPN password")
        assert "Rotate the VPN password" in renamed, renamed


async def test_the_consoles_forget_says_what_it_cancelled(web: Web) -> None:  # noqa: F811
    order = instruction("reminder_add", {"when": "in 2 hours", "text": f"rotate {SECRET}"})
    await web.h.say(f"{order} please")
    found = await web.h.say(f"/memory search {SECRET}")
    [number] = re.findall(r"message #(\d+): you wrote", found)
    cookie = await web.login()
    token = await web.csrf(cookie, "/memory")
    forgot, _ = await web.request(
        "POST",
        f"/memory/{number}/forget",
        cookie=cookie,
        headers=web.origin(),
        data={"csrf": token},
    )
    assert forgot.status == 303
    _, html = await web.request("GET", forgot.headers["Location"], cookie=cookie)
    assert "With it, reminder #1 (Tue 01 Dec 11:00) is cancelled" in html, html[:3000]
    assert live_rows(web.h.settings.database_path, SECRET) == []


def daily(request: RecordedRequest) -> Reply:
    if "remind me" in request.last_user_text and not request.tool_results:
        return Reply.tool_use(
            "reminder_add", {"when": "every day 15:00", "text": f"rotate the VPN password {SECRET}"}
        )
    return model(request)


async def test_what_a_daily_reminder_already_sent_goes_with_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Review 36, second round: the reminder had fired before the forget; its sent message
    kept the words, in search and in every later turn's history."""
    fake_model.on_request(daily)
    clock = FrozenClock(NOW)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=clock) as h:
        await h.say(f"remind me every day at 15:00 to rotate the VPN password {SECRET}")
        clock.advance(timedelta(hours=2, minutes=1))
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()
        assert any(SECRET in text for _, text in h.channel.sent[-1:])
        found = await h.say(f"/memory search {SECRET}")
        # the reminder's own message, forgotten by its number: it is the owner's to forget; the
        # reminder stays, named (forgetting what it said once is not cancelling it)
        number = re.search(r"message #(\d+): Steward wrote", found)
        assert number, found
        said = await h.say(f"/memory forget {number.group(1)}")
        assert (
            "Reminder #1, which sent it, is still set and says it again at its next time: "
            "/remind cancel 1 takes it." in said
        ), said
        assert live_rows(h.settings.database_path, SECRET) != []  # the exchange is still there
        said = await _forget_the_secret(h)
        assert "Forgotten" in said
        asked = len(fake_model.requests)
        await h.say("hello again")
        chat = [json.dumps(r.body) for r in fake_model.requests[asked:]]
        assert chat and not any(SECRET in body for body in chat)
        assert live_rows(h.settings.database_path, SECRET) == []


async def test_a_closed_goal_loses_the_title_in_every_memory_of_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Review 36, second round: closing a goal saves "Goal “…” was marked done", which kept
    the title; and `/goal rename` takes an active goal, so the answer says to reopen it."""
    fake_model.on_request(model)
    async with running_steward(tmp_path / "data", fake_model.base_url, clock=FrozenClock(NOW)) as h:
        await h.say(f"track rotating the VPN password {SECRET} and check it later")
        owner = await h.steward.stores.people.resolve(OWNER)
        assert owner is not None
        [goal] = await h.steward.stores.goals.active(owner.id)
        await h.say(f"/goal note {goal.id} asked IT for the new policy")
        await h.say(f"/goal done {goal.id}")
        said = await _forget_the_secret(h)
        assert f"/goal reopen {goal.id}, then /goal rename {goal.id} <title>" in said, said
        assert live_rows(h.settings.database_path, SECRET) == []
        await h.say(f"/goal reopen {goal.id}")
        renamed = await h.say(f"/goal rename {goal.id} Rotate the VPN password")
        assert "Rotate the VPN password" in renamed, renamed


async def test_a_task_caught_mid_run_is_waited_out_then_cancelled(tmp_path: Path) -> None:
    """Review 36: only an active one was cancelled, and one firing came back active with
    "(forgotten on request)" as its instruction, every day; then one cancelled while firing still
    sent its words (its run held them). Now a firing one changes nothing (the forget says the
    exchange is still going on) and is cancelled once its run is over."""
    stores = await Stores.open(tmp_path / "s.db", FrozenClock(NOW))
    try:
        owner = await stores.people.ensure_owner([OWNER])
        task = await stores.schedules.add(
            user_id=owner.id,
            chat_id=None,
            kind="task",
            trigger={"type": "every", "days": 1},
            payload={"text": f"check VPN takes {SECRET}"},
            next_run_at=NOW,
            destination=None,
            made_in_turn=7,
        )
        run = await stores.schedules.claim(task, late_seconds=0)
        assert run is not None
        assert await stores.schedules.forget_made_in(owner.id, {7}, "(forgotten)") is None
        firing = await stores.schedules.get(task.id)
        assert firing is not None and firing.payload["text"] == f"check VPN takes {SECRET}"
        await stores.schedules.finish(
            run, task.id, status=RunStatus.SENT, next_run_at=NOW + timedelta(days=1)
        )
        [was] = await stores.schedules.forget_made_in(owner.id, {7}, "(forgotten)") or []
        assert was.status is ScheduleStatus.ACTIVE
        after = await stores.schedules.get(task.id)
        assert after is not None and after.status is ScheduleStatus.CANCELLED
        assert after.payload["text"] == "(forgotten)"
    finally:
        await stores.close()
