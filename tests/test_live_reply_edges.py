"""Streamed replies at their edges (R189), through the real channels against the wire fakes:
a first preview message Telegram answers late (the stream gave up on it, and it stayed beside
the reply for good), a draft Telegram refuses for a link (drafts were then off until restart),
and the console, which printed a whole reply twice when a step held an indented line.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.telegram import ApiCall, FakeTelegram
from harness import OWNER, Harness, running_steward, telegram_channel
from slow_hop import slow_hop

from agent.types import IncomingMessage
from bot.channels.console import CONSOLE_ADDRESS, CONSOLE_IDENTITY, ConsoleChannel

OWNER_TG = 1001
GROUP = -1001234567890
ANSWER = "It is late: " + "time to rest, the day is done. " * 6
URL_REFUSED = "Bad Request: entity URL 'http://my_host:8080/dash' is invalid: Wrong HTTP URL"
LINKY = "See [the dashboard](http://my_host:8080/dash) for the numbers. " + "More words. " * 12
PLAIN = "A plain answer, " + "nothing special in it at all. " * 8


def _bot_messages(tg: FakeTelegram, chat: int) -> list[str]:
    return [
        m["text"]
        for (c, _), m in sorted(tg.messages.items())
        if c == chat and m["from"] == tg.bot_user
    ]


async def _until(done: Callable[[], bool], within: float) -> None:
    for _ in range(int(within / 0.1)):
        if done():
            return
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("delay", "tainted"),
    [(6.5, False), (6.5, True), (11.5, False)],
    ids=["edited-in", "taken-down", "landed-after-the-reply"],
)
async def test_a_first_preview_answered_late_never_stays_beside_the_reply(
    tmp_path: Path, fake_model: FakeAnthropic, delay: float, tainted: bool
) -> None:
    """R189: the stream's halt cancelled the first sendMessage after 5 s; Telegram had made
    the message all the same, its id never kept: the reply came as a second message and the
    preview stayed for good (neither edited into nor deleted)."""
    fake_model.stream_delay = 0.05
    if tainted:  # the turn reads a file: the preview is taken down, the reply sent whole
        fake_model.reply_tool_use("read_file", {"path": "notes.txt"}, text="Reading. " * 8)
        fake_model.reply_text("Your notes say: call Bob at five.")
    else:
        fake_model.reply_text(ANSWER)
    owner = f"{OWNER},telegram:{OWNER_TG}"
    async with (
        FakeTelegram() as tg,
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h,
        slow_hop(tg, "sendMessage", delay),
        telegram_channel(h, tg),
    ):
        h.settings.workspace.mkdir(parents=True, exist_ok=True)
        (h.settings.workspace / "notes.txt").write_text("Call Bob at 5.")
        text = "@steward_test_bot " + ("what do my notes say?" if tainted else "is it late?")
        tg.push_message(text, chat_type="supergroup", chat_id=GROUP, user_id=OWNER_TG)
        final = "Reading. " * 7 + "Reading.\n\nYour notes say: call Bob at five."
        final = final if tainted else ANSWER.strip()
        await _until(lambda: _bot_messages(tg, GROUP) == [final], within=delay + 8)
        visible = _bot_messages(tg, GROUP)
        (stored,) = await h.steward.stores.messages.all(direction="out")
    assert visible == [final]  # before R189: [the preview cut short, the reply]
    assert stored.status == "sent" and stored.text == final
    preview = tg.calls_to("sendMessage")[0]
    deleted = [c.params["message_id"] for c in tg.calls_to("deleteMessage") if c.status == 200]
    kept = delay < 10 and not tainted  # the reply edited into the preview, nothing deleted
    assert deleted == ([] if kept else [str(preview.result["message_id"])])


def _previews(calls: list[ApiCall]) -> list[tuple[str, int | None, bool]]:
    """(method, status, HTML or not) of each preview and reply call."""
    wanted = ("sendMessageDraft", "sendMessage", "editMessageText")
    return [(c.method, c.status, "parse_mode" in c.params) for c in calls if c.method in wanted]


async def _replied(h: Harness, count: int) -> None:
    """Waits until `count` replies were delivered."""
    for _ in range(200):
        out = await h.steward.stores.messages.all(direction="out")
        if len([m for m in out if m.status == "sent"]) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{count} replies were not delivered: {out}")


async def test_a_draft_refused_for_its_link_is_shown_plain_and_drafts_stay_on(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R189: a link Telegram will not take ("entity URL … is invalid") turned drafts off for
    every later reply until restart; the draft is now shown as plain text instead."""
    fake_model.stream_delay = 0.08
    fake_model.reply_text(LINKY)
    fake_model.reply_text(PLAIN)
    owner = f"{OWNER},telegram:{OWNER_TG}"
    async with (
        FakeTelegram() as tg,
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h,
        telegram_channel(h, tg),
    ):
        tg.fail_next("sendMessageDraft", status=400, description=URL_REFUSED)
        tg.push_message("dashboard?", user_id=OWNER_TG)
        await _replied(h, 1)
        first = len(tg.calls)
        tg.push_message("and now?", user_id=OWNER_TG)
        await _replied(h, 2)
    turn1, turn2 = _previews(tg.calls[:first]), _previews(tg.calls[first:])
    assert turn1[:2] == [("sendMessageDraft", 400, True), ("sendMessageDraft", 200, False)]
    assert ("sendMessageDraft", 200, True) in turn2, turn2  # drafts are still on
    assert not tg.calls_to("editMessageText")


@pytest.mark.parametrize(
    ("status", "description", "drafts_after"),
    [(400, "Bad Request: simulated failure", True), (404, "Not Found: method not found", False)],
    ids=["refused", "no-such-method"],
)
async def test_only_a_server_without_drafts_turns_them_off(
    tmp_path: Path, fake_model: FakeAnthropic, status: int, description: str, drafts_after: bool
) -> None:
    """A draft refused for another reason shows this reply by an edited message; only a server
    without the method (404) turns drafts off for the channel (R189)."""
    fake_model.stream_delay = 0.08
    fake_model.reply_text(PLAIN)
    fake_model.reply_text(PLAIN + "Again.")
    owner = f"{OWNER},telegram:{OWNER_TG}"
    async with (
        FakeTelegram() as tg,
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h,
        telegram_channel(h, tg),
    ):
        tg.fail_next("sendMessageDraft", status=status, description=description)
        tg.push_message("hello?", user_id=OWNER_TG)
        await _replied(h, 1)
        first = len(tg.calls)
        tg.push_message("and now?", user_id=OWNER_TG)
        await _replied(h, 2)
    turn1, turn2 = _previews(tg.calls[:first]), _previews(tg.calls[first:])
    assert turn1[:2] == [("sendMessageDraft", status, True), ("sendMessage", 200, True)]
    assert ("editMessageText", 200, True) in turn1  # the reply edited into the preview
    assert (("sendMessageDraft", 200, True) in turn2) is drafts_after, turn2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


CODE = "Here it is:\n\n```python\ndef f():\n    a = 1\n\n    return a\n```\n\nThat's all."


@pytest.mark.parametrize("preamble", ["Checking the clock.", ""], ids=["words", "no-words"])
async def test_the_console_prints_an_indented_line_after_a_tool_call_once(
    tmp_path: Path, fake_model: FakeAnthropic, preamble: str
) -> None:
    """R189: the console rebuilt what it printed paragraph by paragraph, each stripped: an
    indented line after a blank line lost its indentation, the answer did not match, and the
    whole reply was printed again."""
    fake_model.stream_delay = 0.02
    fake_model.reply_tool_use("current_time", {}, text=preamble or None)
    fake_model.reply_text(CODE)
    out = _Terminal()
    owner = f"{OWNER},console:owner"
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h:
        console = ConsoleChannel(io.StringIO(""), out, stream=True)
        h.steward.switchboard.register(console.name, console)
        await h.router.dispatch(IncomingMessage(CONSOLE_IDENTITY, CONSOLE_ADDRESS, "code?"))
    printed = out.getvalue()
    assert printed.count("return a") == 1, printed
    assert "\n\n    return a\n```\n\nThat's all.\n" in printed
    assert printed.startswith(f"steward> {preamble}" if preamble else "steward> ⚙ Using")
