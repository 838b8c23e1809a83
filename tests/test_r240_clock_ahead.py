"""R240: rows stamped while the clock was a year fast, once NTP has set it right.

The token budget's window had no upper bound, so a day spent on the fast clock stopped every
briefing for a year; login links, console sessions and /link codes checked only `expires_at`,
so ten minutes made on the fast clock lasted a year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Usage
from harness import running_steward
from test_budget_and_audit import _job
from test_web_security import Web, web  # noqa: F401  (the fixture)

from memory.clock import FrozenClock
from memory.links import LinkResult
from memory.people import Identity
from memory.turns import TurnStatus

YEAR = timedelta(days=365)


async def test_a_day_on_a_clock_a_year_fast_does_not_spend_the_budget_of_the_year_after(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The tokens of turns stamped in 2027 counted against every day's budget until 2027 once
    the clock was set right: briefings were skipped, "budget spent", and /usage said so."""
    clock = FrozenClock(datetime(2027, 5, 1, 9, 30, tzinfo=UTC))  # a year fast
    fake_model.reply_text("big answer", usage=Usage(input_tokens=900, output_tokens=200))
    fake_model.reply_text("Good morning!")
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_DAILY_TOKEN_BUDGET="1000"
    ) as h:
        await h.say("use many tokens")  # the day's budget, on 2027-05-01
        clock.advance(-YEAR + timedelta(days=1))  # set right: it is 2026-05-02 09:30
        usage = await h.say("/usage")
        outcome = await h.steward.respond(await _job(h))
    assert outcome.status is TurnStatus.COMPLETED, "a new day's budget is spent already"
    assert "Today: no turns." in usage and "This week: no turns." in usage, usage
    assert "0 of 1,000 tokens" in usage, usage


async def test_a_guests_day_on_a_fast_clock_does_not_spend_their_allowance_for_a_year(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    clock = FrozenClock(datetime(2027, 5, 1, 9, 30, tzinfo=UTC))  # a year fast
    fake_model.reply_text("long story", usage=Usage(input_tokens=900, output_tokens=200))
    fake_model.reply_text("hello again")
    async with running_steward(
        tmp_path,
        fake_model.base_url,
        clock=clock,
        STEWARD_GUEST_DAILY_TOKENS="1000",
        STEWARD_EMBEDDER="none",
    ) as h:
        guest = Identity("test", "guest")
        await h.steward.stores.people.admit(guest, "Guest")
        await h.say("tell me a long story", sender=guest, chat="g1")
        clock.advance(-YEAR + timedelta(days=1))  # set right: the next day, really
        assert await h.say("hi", sender=guest, chat="g1") == "hello again"


async def test_a_login_link_and_a_session_made_on_a_fast_clock_do_not_live_for_a_year(
    web: Web,  # noqa: F811
) -> None:
    """The clock was a year fast when /web was asked and the console opened; NTP sets it
    right. The 10-minute link (left in the chat's history) and the 12-hour session should not
    now work for a year, nor count as signed in; approvals already expire so (CLOCK_SLACK)."""
    web.clock.advance(YEAR)  # 2027-12-01: the clock a year fast
    link = await web.link()
    cookie = await web.login()
    web.clock.advance(-YEAR + timedelta(days=2))  # set right: two days later, really
    page, _ = await web.request("GET", "/approvals", cookie=cookie)
    shown, _ = await web.request("GET", link)
    token = link.split("token=", 1)[1]
    posted, _ = await web.request("POST", "/login", headers=web.origin(), data={"token": token})
    assert (page.status, shown.status, posted.status) == (401, 403, 403), "still work"
    fresh = await web.login()
    _, status = await web.request("GET", "/status", cookie=fresh)
    assert "<p>1 signed in.</p>" in status  # the new session only


async def test_the_console_usage_page_leaves_out_turns_of_a_fast_clock(web: Web) -> None:  # noqa: F811
    web.clock.advance(YEAR)  # the clock a year fast
    await web.h.say("hello")
    web.clock.advance(-YEAR + timedelta(days=2))  # set right
    _, html = await web.request("GET", "/usage", cookie=await web.login())
    assert "No turns yet." in html


async def test_a_link_code_made_on_a_fast_clock_does_not_live_for_a_year(tmp_path: Path) -> None:
    clock = FrozenClock(datetime(2027, 11, 24, 9, 0, tzinfo=UTC))  # a year fast
    async with running_steward(tmp_path, None, clock=clock) as h:
        stores = h.steward.stores
        ana, other = Identity("test", "ana"), Identity("test", "someone")
        user = await stores.people.admit(ana, "Ana")
        await stores.people.admit(other, "Someone")
        code = await stores.links.issue(user.id, ana)  # shown in a chat others read
        clock.advance(-YEAR + timedelta(days=30))  # set right; a month later, really
        result = await stores.links.redeem(code.display, other)
        assert result.result is LinkResult.UNKNOWN, "a 10-minute code links a month later"
        assert (await stores.people.resolve(other)).id != user.id  # type: ignore[union-attr]
