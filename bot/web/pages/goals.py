"""/goals: goals with their progress log and next step; reminders and tasks; the briefing (time,
feeds with their last fetch, topics, destination). Everything here is editable, through the same
services the chat commands use (`agent.goals.Goals`, the scheduler), so the same rules apply:
the owner's own words are trusted, every change is audited."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from aiohttp import web

from agent.delivery import private_address
from agent.errors import GoalError
from agent.scheduler import Recurrence
from agent.scheduler.when import (
    WhenError,
    aparse_reminder,
    describe_trigger,
    parse_cadence,
    parse_clock_time,
)
from agent.types import Address, address_from_json
from bot.commands.briefing import destination_running
from bot.commands.ids import as_id
from bot.errors import UsageError
from bot.web.views import Page, Routes
from memory.goals import Goal, GoalNote, GoalStatus
from memory.people import Chat

__all__ = ["GoalView", "routes"]

routes = Routes()


@dataclass(frozen=True)
class GoalView:
    goal: Goal
    notes: list[GoalNote]
    checkins: str


async def _here(page: Page) -> tuple[Address, Chat] | None:
    """Where something set from the console posts: the owner's most recent private chat."""
    names = [str(getattr(c, "name", "")) for c in page.deps.channels] or ["console"]
    return await private_address(page.deps.core.stores, page.user.id, names)


@routes.get("/goals")
async def goals_page(page: Page) -> web.StreamResponse:
    core = page.deps.core
    stores, scheduler = core.stores, core.scheduler
    zone = ZoneInfo(page.zone)
    views = []
    for goal in await stores.goals.all(page.user.id):
        checkin = await scheduler.checkin_for(page.user, goal.id) if scheduler else None
        views.append(
            GoalView(
                goal=goal,
                notes=await stores.goals.notes(goal.id, limit=20),
                checkins=describe_trigger(checkin.trigger, zone) if checkin else "",
            )
        )
    reminders = []
    briefing = None
    if scheduler is not None:
        reminders = [
            (s, scheduler.describe(s, page.user)) for s in await scheduler.pending_for(page.user)
        ]
        briefing = await scheduler.briefing(page.user)
    prefs = await stores.feeds.prefs(page.user.id)
    destination = ""
    if briefing is not None and briefing.destination:
        where = address_from_json(briefing.destination)
        destination = f"{where.channel} chat {where.chat_id}"
    elif prefs.destination:
        where = address_from_json(prefs.destination)
        destination = f"{where.channel} chat {where.chat_id}"
    return page.render(
        "goals.html",
        goals=views,
        reminders=reminders,
        briefing=briefing,
        briefing_when=describe_trigger(briefing.trigger, zone) if briefing else "",
        feeds=await stores.feeds.list(page.user.id),
        topics=prefs.topics,
        destination=destination,
        has_scheduler=scheduler is not None,
    )


def _goal_id(page: Page) -> int | None:
    raw = page.params["goal_id"]
    return as_id(raw)


@routes.post("/goals/add")
async def goal_add(page: Page) -> web.StreamResponse:
    try:
        goal = await page.deps.core.goals.add(page.user, page.field("title"), tainted=False)
    except GoalError as exc:
        return page.refused("/goals", str(exc))
    await page.audit("web.goal_added", subject=f"goal:{goal.id}")
    return page.redirect("/goals", f"Goal #{goal.id} added.")


@routes.post("/goals/{goal_id}/{action}")
async def goal_change(page: Page) -> web.StreamResponse:
    goal_id = _goal_id(page)
    action = page.params["action"]
    goals = page.deps.core.goals
    if goal_id is None:
        return page.redirect("/goals", "There is no such goal.")
    text = page.field("text")
    try:
        if action == "note":
            await goals.note(page.user, goal_id, text)
            message = f"Progress noted on #{goal_id}."
        elif action == "next":
            await goals.next_step(page.user, goal_id, text)
            message = f"Next step of #{goal_id} set."
        elif action == "due":
            if text.lower() in ("", "off"):
                await goals.set_due(page.user, goal_id, None)
                message = f"#{goal_id} has no due date now."
            else:
                moment = await goals.due_by(page.user, text)
                await goals.set_due(page.user, goal_id, moment)
                day = moment.astimezone(goals.zone(page.user))
                message = f"#{goal_id} is due {day:%a %Y-%m-%d}."
        elif action == "every":
            here = await _here(page)
            if text.lower() in ("", "off"):
                recurrence = None
            else:
                recurrence = parse_cadence(text, page.deps.core.clock.now(), goals.zone(page.user))
            chat, address = (here[1], here[0]) if here else (None, None)
            await goals.set_cadence(page.user, goal_id, recurrence, chat=chat, address=address)
            message = f"Check-ins for #{goal_id}: {recurrence.describe() if recurrence else 'off'}."
        elif action == "rename":
            await goals.rename(page.user, goal_id, text)
            message = f"#{goal_id} renamed."
        elif action == "reopen":
            opened = await goals.reopen(page.user, goal_id)
            message = f"Goal #{goal_id} is active again."
            if opened.cadence:
                message += f" Check-ins: {opened.cadence}."
        elif action in ("done", "dropped"):
            await goals.close(page.user, goal_id, GoalStatus(action))
            message = f"Goal #{goal_id} is {action}."
        else:
            return page.redirect("/goals", f"I can't {action} a goal.")
    except (GoalError, WhenError) as exc:
        return page.refused("/goals", str(exc))
    await page.audit(f"web.goal_{action}", subject=f"goal:{goal_id}")
    return page.redirect("/goals", message)


@routes.post("/reminders/add")
async def reminder_add(page: Page) -> web.StreamResponse:
    scheduler = page.deps.core.scheduler
    here = await _here(page)
    if scheduler is None or here is None:
        return page.redirect("/goals", "There is no chat to post a reminder in yet.")
    zone = ZoneInfo(page.zone)
    try:
        parsed = await aparse_reminder(page.field("words"), page.deps.core.clock.now(), zone)
    except WhenError as exc:
        return page.refused("/goals", f"{exc}")
    address, chat = here
    schedule = await scheduler.add_reminder(
        user=page.user, chat=chat, address=address, parsed=parsed
    )
    await page.audit("web.reminder_added", subject=f"schedule:{schedule.id}")
    return page.redirect(
        "/goals",
        f"Reminder set: {scheduler.describe(schedule, page.user)}",  # "#4 …" (R138)
    )


@routes.post("/reminders/{schedule_id}/cancel")
async def reminder_cancel(page: Page) -> web.StreamResponse:
    scheduler = page.deps.core.scheduler
    raw = page.params["schedule_id"]
    cancelled = None
    number = as_id(raw)
    if scheduler is not None and number is not None:
        cancelled = await scheduler.cancel(page.user, number)
    if cancelled is None:
        return page.redirect("/goals", f"There is no pending reminder #{raw}.")
    await page.audit("web.reminder_cancelled", subject=f"schedule:{raw}")
    return page.redirect("/goals", f"Cancelled #{raw}.")


@routes.post("/briefing/time")
async def briefing_time(page: Page) -> web.StreamResponse:
    scheduler = page.deps.core.scheduler
    if scheduler is None:
        return page.redirect("/goals", "The scheduler is not running.")
    value = page.field("time")
    if value.lower() == "off":
        done = await scheduler.briefing_off(page.user)
        await page.audit("web.briefing_off")
        return page.redirect("/goals", "The briefing is off." if done else "There was no briefing.")
    here = await _here(page)
    if here is None:
        return page.redirect("/goals", "There is no chat to post the briefing in yet.")
    zone = ZoneInfo(page.zone)
    try:
        hour, minute = parse_clock_time(value, page.deps.core.clock.now(), zone)
    except WhenError as exc:
        return page.refused("/goals", str(exc))
    await scheduler.set_briefing(page.user, Recurrence(hour, minute), here=here[0])
    await page.audit("web.briefing_time", at=f"{hour:02d}:{minute:02d}")
    return page.redirect("/goals", f"The briefing comes every day at {hour:02d}:{minute:02d}.")


@routes.post("/briefing/destination")
async def briefing_destination(page: Page) -> web.StreamResponse:
    scheduler = page.deps.core.scheduler
    here = await _here(page)
    if scheduler is None or here is None:
        return page.redirect("/goals", "There is no chat to post the briefing in yet.")
    try:
        target = destination_running(page.field("destination"), here[0], page.deps.core.channels)
    except UsageError as exc:
        return page.refused("/goals", exc.problem)
    await scheduler.set_briefing_destination(page.user, target, here=here[0])
    await page.audit("briefing.destination", subject=str(target), via="web")
    return page.redirect("/goals", f"The briefing goes to {target.channel} chat {target.chat_id}.")


@routes.post("/briefing/topics")
async def briefing_topics(page: Page) -> web.StreamResponse:
    topics = page.field("topics")
    try:
        await page.deps.core.stores.feeds.set_topics(page.user.id, topics)
    except ValueError as exc:  # too long: nothing saved, and said
        return page.refused("/goals", str(exc))
    await page.audit("web.briefing_topics")
    return page.redirect("/goals", "Topics saved." if topics else "Topics cleared.")


@routes.post("/briefing/feeds")
async def feed_add(page: Page) -> web.StreamResponse:
    url = page.field("url")
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        return page.refused("/goals", "Give the feed's http(s) URL.")
    feed, added = await page.deps.core.stores.feeds.add(page.user.id, url)
    if added:
        await page.audit("feed.added", subject=f"feed:{feed.id}", via="web")
    return page.redirect("/goals", f"Feed #{feed.id} {'added' if added else 'was already there'}.")


@routes.post("/briefing/feeds/{feed_id}/remove")
async def feed_remove(page: Page) -> web.StreamResponse:
    raw = page.params["feed_id"]
    removed = None
    number = as_id(raw)
    if number is not None:
        removed = await page.deps.core.stores.feeds.remove(page.user.id, number)
    if removed is None:
        return page.redirect("/goals", f"There is no feed #{raw}.")
    await page.audit("web.feed_removed", subject=f"feed:{raw}")
    return page.redirect("/goals", f"Removed feed #{raw}.")
