"""The web console in a real browser: Debian's Chromium driven by Selenium (issue 16).

One Steward (the real core, the loopback fake model that obeys `DO {...}` orders, the real HTTP
server and console) runs in a background thread's event loop for the whole module, and one
headless Chromium visits it, so the module stays well under a minute. The chat platform is a
recording channel whose approval cards have ids, so a decision made in the browser can be seen
updating the card in chat.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`make` installs them as root); without them
the cases skip saying so, and fail under STEWARD_CI_STRICT=1. Screenshots of every page go to a
temporary directory, or to STEWARD_SCREENSHOTS (e.g. docs/screenshots) when it is set.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fakes.anthropic import FakeAnthropic
from harness import Harness, RecordingChannel, running_steward
from trust_world import instruction, obedient_model

from agent.types import Address, ApprovalPrompt
from bot.http import HttpServer
from bot.web.serve import start_console
from memory.approvals import ApprovalStatus

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
STRICT = os.environ.get("STEWARD_CI_STRICT") == "1"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/login\?token=[A-Za-z0-9_-]+)")
T = TypeVar("T")
OVERFLOW = "return document.documentElement.scrollWidth - window.innerWidth"


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = (
            "browser tests need " + ", ".join(missing) + " (apt install chromium chromium-driver)"
        )
        if STRICT:
            pytest.fail(reason + " — STEWARD_CI_STRICT=1 forbids skipping", pytrace=False)
        pytest.skip(reason)


@dataclass
class CardChannel(RecordingChannel):
    """A chat whose approval cards have ids, so their updates can be seen."""

    cards: dict[str, ApprovalPrompt] = field(default_factory=dict)

    async def send_approval(self, address: Address, prompt: ApprovalPrompt) -> str | None:
        self.approvals.append((address, prompt))
        card = f"card-{len(self.approvals)}"
        self.cards[card] = prompt
        return card


class World:
    """A Steward in its own thread and event loop; `call` runs a coroutine there."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.ready: Future[tuple[Harness, str]] = Future()
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._life = asyncio.run_coroutine_threadsafe(self._live(), self.loop)
        self.h, self.base = self.ready.result(timeout=60)
        self.channel = CardChannel()
        self.call(self._use_cards())

    async def _use_cards(self) -> None:
        self.h.steward.switchboard.register("test", self.channel)
        self.h.channel = self.channel

    async def _live(self) -> None:
        self._stop = asyncio.Event()
        try:
            async with FakeAnthropic() as model:
                model.on_request(obedient_model)
                async with running_steward(self.data_dir, model.base_url) as h:
                    http = HttpServer("127.0.0.1", 0)
                    assert await start_console(h.steward, http, [h.channel]) is not None
                    self.ready.set_result((h, http.url))
                    await self._stop.wait()
                    await http.stop()
        except BaseException as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
            raise

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        assert self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self._life.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    # -- chat --------------------------------------------------------------------------------

    def say(self, text: str) -> str:
        return self.call(self.h.say(text))

    def link(self) -> str:
        found = LINK.search(self.say("/web"))
        assert found
        return found.group(1)

    def workspace(self) -> Path:
        return self.h.settings.workspace


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    _need_browser()
    world = World(tmp_path_factory.mktemp("web") / "data")
    try:
        yield world
    finally:
        world.close()


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Any]:
    driver = chromium()
    try:
        driver.get(world.link())
        wait_for(lambda: css(driver, "#sign-in button"), on=driver)[0].click()
        # The click only starts the form's POST: a test's first `get` made before its answer
        # set the cookie cancelled it, and that test met the sign-in page (seen under xdist).
        wait_for(lambda: driver.get_cookie("steward_session"), on=driver)
        yield driver
    finally:
        driver.quit()


def chromium() -> Any:
    """A headless Chromium driven by Selenium (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1000",
    ):
        options.add_argument(argument)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root otherwise
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    return driver


def wait_for(what: Callable[[], T], timeout: float = 10.0, *, on: Any = None) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = what()
        except Exception:
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() > deadline:
            seen = on.page_source[-3000:] if on is not None else ""
            raise AssertionError(f"timed out waiting for {what}; the page: {seen}")
        time.sleep(0.1)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def test_a_web_link_signs_in_and_the_token_leaves_no_trace(world: World, browser: Any) -> None:
    wait_for(lambda: browser.current_url == world.base + "/")
    assert "Signed in as test:owner (owner)" in browser.page_source
    assert "token" not in browser.current_url
    cookie = browser.get_cookie("steward_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert "steward_session" not in browser.execute_script("return document.cookie")
    # the history holds no URL with the token: back goes to the page after the redirect
    entries = browser.execute_script("return window.history.length")
    for _ in range(entries):
        assert "token" not in browser.current_url
        browser.back()
    nav = browser.execute_script(
        "return performance.getEntriesByType('navigation').map(e => e.name)"
    )
    assert not any("token" in url for url in nav)


def test_approving_a_shell_action_runs_it_and_updates_the_chat_card(
    world: World, browser: Any
) -> None:
    browser.get(world.base + "/approvals")
    assert css(browser, "#no-approvals")
    world.say(instruction("shell", {"command": "touch from-the-browser"}))
    # the request appears without a reload
    card = wait_for(lambda: css(browser, "article.approval"))[0]
    approval_id = card.get_attribute("data-id")
    assert "touch from-the-browser" in card.find_element("css selector", "pre.action").text
    assert "owner's turn" in card.text
    time.sleep(0.8)  # read first: a press within 0.7 s of the list changing is not sent
    card.find_element("css selector", "button.approve").click()
    wait_for(lambda: "ran" in browser.find_element("id", "flash").text, on=browser)
    assert (world.workspace() / "from-the-browser").exists()
    approval = world.call(world.h.steward.stores.approvals.get(approval_id))
    assert approval is not None and approval.status is ApprovalStatus.EXECUTED
    assert approval.decided_by == "test:owner"
    [(_, card_id, text)] = [m for m in world.channel.marked if approval_id in m[2]]
    assert world.channel.cards[card_id].approval_id == approval_id
    assert text.startswith(f"Approved {approval_id}") and "decided by the owner" in text
    web_events = world.call(world.h.steward.stores.audit.recent(20, kind="web.approval"))
    assert web_events[-1].subject == approval_id
    assert web_events[-1].detail["session"].startswith("web-session:")


def test_denying_one_runs_nothing(world: World, browser: Any) -> None:
    browser.get(world.base + "/approvals")
    world.say(instruction("shell", {"command": "touch denied-in-the-browser"}))
    card = wait_for(lambda: css(browser, "article.approval"))[0]
    approval_id = card.get_attribute("data-id")
    time.sleep(0.8)  # read first (see above)
    card.find_element("css selector", "button.deny").click()
    wait_for(lambda: "Denied" in browser.find_element("id", "flash").text)
    assert not (world.workspace() / "denied-in-the-browser").exists()
    approval = world.call(world.h.steward.stores.approvals.get(approval_id))
    assert approval is not None and approval.status is ApprovalStatus.DENIED
    assert any(approval_id in text and "Denied" in text for _, _, text in world.channel.marked)
    # a reused form (the same id, pressed again) decides nothing
    assert css(browser, "#no-approvals")


def test_the_list_never_changes_under_the_pointer(world: World, browser: Any) -> None:
    """Review 63: the list was re-rendered every 2 s whatever the owner was doing, so a card
    decided in chat moved the next one's Approve under a finger about to press it. A newer
    list waits until the pointer leaves."""
    from selenium.webdriver.common.action_chains import ActionChains

    browser.get(world.base + "/approvals")
    world.say(instruction("shell", {"command": "touch first-card"}))
    world.say(instruction("shell", {"command": "touch second-card"}))
    cards = wait_for(
        lambda: len(css(browser, "article.approval")) == 2 and css(browser, "article.approval")
    )
    first, second = (c.get_attribute("data-id") for c in cards)
    ActionChains(browser).move_to_element(
        cards[1].find_element("css selector", "button.approve")
    ).perform()
    world.say(f"/deny {first}")  # decided elsewhere while the owner points at the second
    time.sleep(2 * 2.0 + 1.0)  # two polls
    shown = [c.get_attribute("data-id") for c in css(browser, "article.approval")]
    assert shown == [first, second], "the list changed under the pointer"
    ActionChains(browser).move_to_element(browser.find_element("css selector", "h1")).perform()
    wait_for(
        lambda: [c.get_attribute("data-id") for c in css(browser, "article.approval")] == [second],
        on=browser,
    )
    world.say(f"/deny {second}")
    wait_for(lambda: css(browser, "#no-approvals"), on=browser)
    assert not (world.workspace() / "second-card").exists()


def test_a_tap_on_the_list_does_not_hold_it(world: World, browser: Any) -> None:
    """Review 65: a touch has no "leave" until the next tap elsewhere, so a tap on a card's
    words held the list until then: nothing decided elsewhere or newly asked showed."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.interaction import POINTER_TOUCH
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    browser.get(world.base + "/approvals")
    # the mouse out of the way (where the last case left it, new cards could slide under it)
    ActionChains(browser).move_to_element(css(browser, ".brand")[0]).perform()
    world.say(instruction("shell", {"command": "touch tapped-card"}))
    card = wait_for(lambda: css(browser, "article.approval"))[0]
    tap = ActionBuilder(browser, mouse=PointerInput(POINTER_TOUCH, "finger"))
    tap.pointer_action.move_to(card.find_element("css selector", "pre.action"))
    tap.pointer_action.pointer_down().pointer_up()
    tap.perform()
    world.say(f"/deny {card.get_attribute('data-id')}")  # decided elsewhere after the tap
    wait_for(lambda: css(browser, "#no-approvals"), on=browser)  # the list still follows


def test_forgetting_a_memory_takes_it_out_of_search(world: World, browser: Any) -> None:
    world.say("/remember My bike lock code is 4711")
    browser.get(world.base + "/memory?q=bike+lock")
    item = wait_for(lambda: css(browser, "li.memory"))[0]
    assert "My bike lock code is 4711" in item.text and "trusted" in item.text
    item.find_element("css selector", "button.forget").click()
    wait_for(lambda: "Forgotten" in browser.find_element("id", "flash").text)
    browser.get(world.base + "/memory?q=bike+lock")
    assert css(browser, "#no-memories")
    assert "4711" not in browser.find_element("id", "memories").text
    assert "4711" not in world.say("/memory search bike lock")  # chat agrees


def test_every_page_renders_on_a_phone_and_screenshots_are_taken(
    world: World, browser: Any, tmp_path: Path
) -> None:
    world.say("/goal add Run a half marathon in spring")
    world.say("/goal note 1 Ran 12 km on Sunday")
    world.say("/goal next 1 Book the race")
    world.say("/remind every monday 8:00 weekly review")
    world.say("/remember I prefer window seats on trains")
    # R110: a memory with no space to break at ran 1,765 px past a phone's screen
    world.say("/remember The recipe is at https://example.org/" + "recipes/" * 60)
    world.say("What is on today?")
    world.say(instruction("shell", {"command": "git status"}))
    from datetime import UTC, datetime, timedelta

    timed = world.call(
        world.h.steward.stores.model_calls.since(datetime.now(UTC) - timedelta(hours=1))
    )
    assert timed and all(call.ok and call.latency_ms >= 0 for call in timed)  # every call timed
    _seed_usage(world)
    target = Path(os.environ.get("STEWARD_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    pages = ("", "approvals", "activity", "memory", "goals", "usage", "status")
    browser.get(world.base + "/usage")
    assert len(css(browser, "figure.chart svg rect")) >= 2 * 14  # two stacked-bar charts
    for name in (*pages, "activity/turn/2"):
        browser.get(f"{world.base}/{name}")
        assert browser.title.endswith("· Steward"), name
        path = target / f"{(name or 'home').replace('/', '-')}.png"
        assert browser.save_screenshot(str(path)) and path.stat().st_size > 5000
    browser.set_window_size(390, 844)  # a phone
    try:
        wait_for(lambda: browser.execute_script("return window.innerWidth") <= 400)
        for name in pages:
            browser.get(f"{world.base}/{name}")
            try:  # the layout may take a moment to settle on a busy machine
                wait_for(lambda: browser.execute_script(OVERFLOW) <= 1, timeout=3)
            except AssertionError:
                wide = browser.execute_script(
                    "return [...document.querySelectorAll('body *')]"
                    ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)"
                    ".slice(0, 3).map(e => e.outerHTML.slice(0, 120))"
                )
                raise AssertionError(f"{name} is wider than a phone: {wide}") from None
        browser.get(f"{world.base}/approvals")
        assert browser.save_screenshot(str(target / "approvals-phone.png"))
    finally:
        browser.set_window_size(1200, 1000)
    logs = [
        entry for entry in browser.get_log("browser") if entry.get("level") == "SEVERE"
    ]  # a CSP violation or a failed request would show here
    assert logs == [], logs


def _seed_usage(world: World) -> None:
    """Two weeks of turns and model calls before today, so the charts have a shape."""
    import random
    from datetime import UTC, datetime, timedelta

    pick = random.Random(16)
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    for back in range(13, 0, -1):
        day = today - timedelta(days=back)
        for kind, share in (("chat", 1.0), ("briefing", 0.3), ("memory", 0.15), ("checkin", 0.1)):
            tokens = int(pick.uniform(4000, 16000) * share)
            cached = int(tokens * pick.uniform(0.4, 0.8))
            world.h.edit_database(
                "INSERT INTO turns (kind, status, model, input_tokens, output_tokens,"
                " cache_read_input_tokens, cost_usd, started_at)"
                " VALUES (?, 'completed', 'claude-sonnet-5-5', ?, ?, ?, ?, ?)",
                (kind, tokens - cached, tokens // 10, cached, tokens * 2e-6, day.isoformat()),
            )
        for call in range(6):
            world.h.edit_database(
                "INSERT INTO model_calls (at, model, latency_ms, ok) VALUES (?, 'm', ?, 1)",
                ((day + timedelta(minutes=call)).isoformat(), int(pick.gauss(1800, 500))),
            )
