"""Streamed replies (issue 17, "Out"): the model's answer streamed over SSE from the fake model and
shown as it grows through the real channels against the wire-level fakes: a Telegram draft in a
private chat, one edited message in a group, a Slack stream or an updated message, the console.
The final reply is the formatted record, stored and sent once; approval cards, briefings and
tainted turns are never streamed; a stream that breaks off falls back without losing anything.

(Over 400 lines: the same streamed answer checked through each channel's fake.)
"""

from __future__ import annotations

import asyncio
import io
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.slack import FakeSlack, app_mention_event, event_body, message_event, post_signed
from fakes.telegram import ApiCall, FakeTelegram
from harness import OWNER, OWNER_SLACK, Harness, running_steward, slack_steward, telegram_channel

from agent.streaming import BROKEN_NOTE, ReplyStream
from agent.types import Address, IncomingMessage, TurnRequest
from bot.channels.console import CONSOLE_ADDRESS, CONSOLE_IDENTITY, ConsoleChannel
from bot.channels.formatting import telegram_chunks, telegram_visible_text

OWNER_TG = 1001
GROUP = -1001234567890
ANSWER = "It is **late**: " + "time to rest, the day is done. " * 6
ANSWER_SHOWN = "It is late: " + "time to rest, the day is done. " * 6
LONG = "\n\n".join(f"Part {i}. " + "lorem ipsum " * 150 for i in range(3))  # 3 x 1,800


@asynccontextmanager
async def telegram(
    tmp_path: Path, model: FakeAnthropic, tg: FakeTelegram, **overrides: Any
) -> AsyncIterator[Harness]:
    async with (
        running_steward(
            tmp_path, model.base_url, STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}", **overrides
        ) as h,
        telegram_channel(h, tg),
    ):
        yield h


def _say(tg: FakeTelegram, text: str, *, group: bool) -> None:
    if group:
        tg.push_message(
            f"@steward_test_bot {text}", chat_type="supergroup", chat_id=GROUP, user_id=OWNER_TG
        )
    else:
        tg.push_message(text, user_id=OWNER_TG)


def _within_limits(calls: list[ApiCall], interval: float) -> None:
    """Every preview update was accepted, none sooner than the fake's flood limit allows."""
    assert all(c.status == 200 for c in calls), [(c.method, c.status, c.result) for c in calls]
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    assert all(gap >= interval for gap in gaps), gaps


async def _sent_once(h: Harness, text: str) -> None:
    """The reply is stored once, as the final text (the preview is never a record)."""
    out = [m.text for m in await h.steward.stores.messages.all(direction="out")]
    assert out.count(text) == 1 and not [t for t in out if t != text and text.startswith(t)]


async def test_a_reply_with_a_tool_call_grows_in_a_draft_and_is_sent_once_formatted(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.stream_delay = 0.08
    fake_model.reply_tool_use("current_time", {}, text="Let me look at the clock first.")
    fake_model.reply_text(ANSWER)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as h:
        _say(tg, "is it late?", group=False)
        (final,) = await tg.wait_for("sendMessage", timeout=15)
        # what was written before the tool call is part of the answer (R148: it was shown in
        # the draft, then gone from the reply)
        await _sent_once(h, "Let me look at the clock first.\n\n" + ANSWER.strip())
    drafts = tg.calls_to("sendMessageDraft")
    assert len(drafts) >= 2, tg.drafts()
    _within_limits(drafts, tg.edit_interval)
    assert {d.params["draft_id"] for d in drafts} == {drafts[0].params["draft_id"]} != {"0"}
    assert all(d.params["chat_id"] == str(OWNER_TG) for d in drafts)
    shown = [telegram_visible_text(t) for t in tg.drafts()]
    assert shown[0].startswith("Let me")  # the first words, not the whole step at once
    assert any("Let me look at the clock first.\n\n⚙ Using current_time…" in s for s in shown)
    assert drafts[-1].at < final.at
    assert fake_model.first_token_at and drafts[0].at - fake_model.first_token_at[0] < 1.0
    # the final reply: complete and formatted, the draft gives way to it
    assert final.params["parse_mode"] == "HTML" and "<b>late</b>" in final.params["text"]
    assert final.result["text"] == "Let me look at the clock first.\n\n" + ANSWER_SHOWN.strip()
    assert final.params["link_preview_options"] == {"is_disabled": True}
    assert tg.calls_to("editMessageText") == []
    assert [r.stream for r in fake_model.requests] == [True, True]


async def test_in_a_group_one_message_is_edited_and_a_long_reply_is_split_at_4096(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.stream_delay = 0.006
    fake_model.reply_text(LONG)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as h:
        _say(tg, "write a lot", group=True)
        await tg.wait_for("sendMessage", 2, timeout=20)
        await _sent_once(h, LONG.strip())
    assert tg.calls_to("sendMessageDraft") == []  # drafts are for private chats only
    preview, rest = tg.calls_to("sendMessage")
    edits = tg.calls_to("editMessageText")
    assert len(edits) >= 2  # at least one preview update, then the final reply edited in
    _within_limits(edits, tg.edit_interval)
    message_id = preview.result["message_id"]
    assert {c.params["message_id"] for c in edits} == {str(message_id)}
    assert preview.at < edits[0].at and edits[-1].at < rest.at
    assert LONG.startswith(preview.params["text"]) and len(preview.params["text"]) < 2000
    # the final: the preview became the first part, the second part follows; both <= 4,096
    chunks = telegram_chunks(LONG)
    assert len(chunks) == 2
    first = tg.messages[(GROUP, message_id)]["text"]
    assert first == telegram_visible_text(chunks[0].markup).strip()
    assert rest.result["text"] == telegram_visible_text(chunks[1].markup).strip()
    assert all(len(t) <= 4096 for t in (first, rest.result["text"]))
    assert first.startswith("Part 0.") and "\n\nPart 1." in first
    assert rest.result["text"].startswith("Part 2.")


async def test_without_drafts_a_message_is_edited_and_a_final_that_fails_is_redelivered_once(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.stream_delay = 0.05
    fake_model.reply_text(ANSWER)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as h:
        tg.drafts_supported = False  # a Bot API server older than drafts
        tg.fail_next("editMessageText", status=400, description="Bad Request: no", times=50)
        _say(tg, "is it late?", group=False)
        (preview,) = await tg.wait_for("sendMessage", timeout=15)
        # the final reply cannot be delivered this time (a 403 would be for good: given up)
        tg.fail_next("sendMessage", status=400)
        await tg.wait_for("sendMessage", 2, timeout=15)
        await asyncio.sleep(0.3)
        (stored,) = await h.steward.stores.messages.all(direction="out")
        assert stored.status == "failed" and stored.text == ANSWER.strip()
        assert await h.steward.courier.redeliver() == 1
        (stored,) = await h.steward.stores.messages.all(direction="out")
    assert stored.status == "sent"
    (draft,) = tg.calls_to("sendMessageDraft")  # tried once; then an edited message
    assert draft.status == 404
    shown = telegram_visible_text(preview.params["text"])
    assert preview.status == 200 and shown.startswith("It is late") and shown in ANSWER_SHOWN
    (deleted,) = tg.calls_to("deleteMessage")  # the preview the final could not replace
    assert deleted.params["message_id"] == str(preview.result["message_id"])
    finals = [c for c in tg.calls_to("sendMessage")[1:] if c.status == 200]
    assert [c.result["text"] for c in finals] == [ANSWER_SHOWN.strip()]


@pytest.mark.parametrize("group", [False, True], ids=["draft", "edit"])
async def test_a_turn_tainted_midway_stops_streaming_and_its_reply_is_sent_whole(
    tmp_path: Path, fake_model: FakeAnthropic, group: bool
) -> None:
    fake_model.stream_delay = 0.06
    fake_model.reply_tool_use("read_file", {"path": "notes.txt"}, text="Reading your notes now.")
    said = (
        "Your notes say: call Bob at five. " + "Then more of it. " * 30 + "https://evil.example/x"
    )
    fake_model.reply_text(said)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as h:
        h.settings.workspace.mkdir(parents=True, exist_ok=True)
        (h.settings.workspace / "notes.txt").write_text("Call Bob at 5. https://evil.example/x")
        _say(tg, "what do my notes say?", group=group)
        calls = await tg.wait_for("sendMessage", 2 if group else 1, timeout=15)
        await asyncio.sleep(0.3)
        (turn,) = await h.turns()
        await _sent_once(h, "Reading your notes now.\n\n" + said)
        before = len(tg.calls)
        # the next turn starts with that reply in its context: it is not streamed at all
        fake_model.reply_text("About Bob: " + "there is more to say. " * 20)
        _say(tg, "and then?", group=group)
        await tg.wait_for("sendMessage", len(calls) + 1, timeout=15)
        later = {c.method for c in tg.calls[before:]}
        assert (await h.turns())[-1].tainted
        assert not later & {"sendMessageDraft", "editMessageText", "deleteMessage"}
    assert turn.tainted and turn.status == "completed"
    assert [r.stream for r in fake_model.requests[:3]] == [True, False, False]
    previews = tg.calls_to("sendMessageDraft") + tg.calls_to("editMessageText")
    previews += tg.calls_to("sendMessage")[: len(calls) - 1]
    texts = [str(c.params.get("text")) for c in previews]
    assert any("Reading your notes now." in t for t in texts)  # before the file was read
    assert not [t for t in texts if "Bob" in t or "evil" in t]  # nothing after it
    final = calls[-1]
    assert "Bob" in final.result["text"] and final.status == 200
    assert final.params["link_preview_options"] == {"is_disabled": True}
    if group:  # the preview message was taken down; the reply came as a new message
        preview = calls[0]
        (deleted,) = tg.calls_to("deleteMessage")
        assert deleted.params["message_id"] == str(preview.result["message_id"])
        assert tg.calls_to("editMessageText") == []


async def test_approval_cards_and_briefings_are_never_streamed(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.stream_delay = 0.05
    fake_model.reply_tool_use(
        "send_message",
        {"channel": "telegram", "chat": "-1009999", "text": "Hello **team**"},
        text="I'll post that.",
    )
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as h:
        _say(tg, "tell the team hello", group=False)
        reply, card = await tg.wait_for("sendMessage", 2, timeout=15)
        assert reply.result["text"] == "I'll post that."
        assert card.params["reply_markup"]["inline_keyboard"]
        cards = tg.calls_to("sendMessageDraft")
        assert cards and all("Approve" not in t and "Hello" not in t for t in tg.drafts())
        assert tg.calls_to("editMessageText") == []

        # a briefing (like a reminder or any self-initiated turn) is sent whole
        drafts_before = len(tg.calls_to("sendMessageDraft"))
        fake_model.reply_text("Good morning: **three** things today. " * 4)
        owner = await h.steward.stores.people.owner()
        chat = await h.steward.stores.people.chat("telegram", str(OWNER_TG))
        assert owner is not None
        request = TurnRequest(
            kind="briefing",
            user=owner,
            chat=chat,
            address=Address("telegram", str(OWNER_TG)),
            text="Write the morning briefing.",
        )
        await h.steward.respond(request)
        briefing = tg.calls_to("sendMessage")[-1]
    assert briefing.result["text"].startswith("Good morning: three things")
    assert len(tg.calls_to("sendMessageDraft")) == drafts_before
    assert fake_model.requests[-1].stream is False


async def test_a_stream_that_breaks_off_falls_back_and_nothing_is_lost(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.stream_delay = 0.12
    whole = "Here is the whole answer, written again without streaming. All of it."
    fake_model.reply(replace(Reply.text("Here is the whole answer, cut"), cut_after_events=6))
    fake_model.reply_text(whole)
    async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg) as h:
        _say(tg, "answer me", group=False)
        (final,) = await tg.wait_for("sendMessage", timeout=15)
        (turn,) = await h.turns()
        await _sent_once(h, whole)
    shown = [telegram_visible_text(t) for t in tg.drafts()]
    assert shown[0].startswith("Here is")  # the stream was shown before it broke
    assert any(BROKEN_NOTE in s and "nothing is lost" in s for s in shown)
    _within_limits(tg.calls_to("sendMessageDraft"), tg.edit_interval)
    assert final.result["text"] == whole
    assert turn.status == "completed" and turn.steps == 1
    assert [r.stream for r in fake_model.requests] == [True, False]


async def test_slack_streams_a_direct_message_and_updates_a_message_in_a_channel(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.stream_delay = 0.12
    fake_model.reply_text(ANSWER)
    fake_model.reply_text(ANSWER)
    async with FakeSlack() as sl, slack_steward(tmp_path, fake_model, sl) as (_, _, url):
        sl.update_interval = 0.5
        event = message_event("is it late?", user=OWNER_SLACK, channel="DOWNER")
        await post_signed(url, sl.signing_secret, json_body=event_body(event))
        (final,) = await sl.wait_for("chat.postMessage", timeout=15)
        await asyncio.sleep(0.2)
        dm_calls = list(sl.calls)

        mention = app_mention_event("<@UBOT> is it late?", user=OWNER_SLACK, channel="C9")
        await post_signed(url, sl.signing_secret, json_body=event_body(mention))
        await sl.wait_for("chat.postMessage", 3, timeout=15)
        await asyncio.sleep(0.2)

        # a workspace that refuses streams: the direct message gets an updated message instead
        sl.fail_next("chat.startStream", "not_allowed")
        fake_model.reply_text("Short and **sweet**, " + "word by word. " * 12)
        again = message_event("and now?", user=OWNER_SLACK, channel="DOWNER")
        await post_signed(url, sl.signing_secret, json_body=event_body(again))
        await sl.wait_for("chat.postMessage", 5, timeout=15)
        await asyncio.sleep(0.2)
    starts = sl.calls_to("chat.startStream")
    assert len(starts) == 2 and starts[1].result is None  # refused: the injected error
    fallback_preview, fallback_final = sl.posted("DOWNER")[1:]
    assert fallback_preview.params["thread_ts"] == again["ts"]
    assert ("DOWNER", fallback_preview.result["ts"]) in sl.deleted
    assert fallback_final.params["text"].startswith("Short and *sweet*")
    # a direct message: Slack's streaming methods, in the thread, then the formatted reply
    (start,) = [c for c in dm_calls if c.method == "chat.startStream"]
    appends = [c for c in dm_calls if c.method == "chat.appendStream"]
    (stop,) = [c for c in dm_calls if c.method == "chat.stopStream"]
    assert start.params["thread_ts"] == event["ts"] and start.params["channel"] == "DOWNER"
    assert appends and all(c.result and c.result["ok"] for c in appends)
    ts = start.result["ts"]
    streamed = start.params["markdown_text"] + "".join(c.params["markdown_text"] for c in appends)
    assert ANSWER.startswith(streamed) and start.params["markdown_text"].startswith("It is")
    assert stop.params["ts"] == ts and ("DOWNER", ts) in sl.deleted
    assert final.params["thread_ts"] == event["ts"]
    assert final.params["text"] == "It is *late*: " + ANSWER.split(": ", 1)[1].strip()
    assert dm_calls.index(stop) < dm_calls.index(final)
    # a channel: one posted message updated, then taken down for the formatted reply
    preview, final_c9 = sl.posted("C9")
    updates = [c for c in sl.calls_to("chat.update") if c.params["channel"] == "C9"]
    assert updates and all(c.result and c.result["ok"] for c in updates)
    assert {c.params["ts"] for c in updates} == {preview.result["ts"]}
    assert ("C9", preview.result["ts"]) in sl.deleted
    assert final_c9.params["text"] == final.params["text"]
    assert final_c9.params["unfurl_links"] is False or final_c9.params["unfurl_links"] == "0"


class _Terminal(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


@pytest.mark.parametrize("end", ["", "\n", " "])  # R149: a step ending in a blank, twice
async def test_the_console_prints_the_reply_as_it_arrives_and_only_once(
    tmp_path: Path, fake_model: FakeAnthropic, end: str
) -> None:
    fake_model.stream_delay = 0.03
    fake_model.reply_tool_use("current_time", {}, text="Checking the clock." + end)
    fake_model.reply_text(ANSWER)
    fake_model.reply_text("Short one.")
    out = _Terminal()
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_OWNER=f"{OWNER},console:owner"
    ) as h:
        console = ConsoleChannel(io.StringIO(""), out, stream=True)
        h.steward.switchboard.register(console.name, console)
        message = IncomingMessage(CONSOLE_IDENTITY, CONSOLE_ADDRESS, "is it late?")
        await h.router.dispatch(message)
        await _sent_once(h, "Checking the clock.\n\n" + ANSWER.strip())
    printed = out.getvalue()
    assert printed.startswith(f"steward> Checking the clock.{end}\n\n⚙ Using current_time…")
    assert printed.count("time to rest") == 6  # the final reply is not printed again
    assert printed.endswith("\n") and printed.rstrip().endswith("the day is done.")
    assert len([w for w in out.writes if w.strip() and w in ANSWER]) >= 3  # piece by piece


async def test_streaming_off_sends_replies_whole(tmp_path: Path, fake_model: FakeAnthropic) -> None:
    fake_model.stream_delay = 0.05
    fake_model.on_request(lambda request: _answer(request))
    async with (
        FakeTelegram() as tg,
        telegram(tmp_path, fake_model, tg, STEWARD_STREAMING="off") as h,
    ):
        _say(tg, "is it late?", group=False)
        (final,) = await tg.wait_for("sendMessage", timeout=15)
        await _sent_once(h, ANSWER.strip())
    assert final.result["text"] == ANSWER_SHOWN.strip()
    assert tg.calls_to("sendMessageDraft") == []
    assert [r.stream for r in fake_model.requests] == [False]


def _answer(request: RecordedRequest) -> Reply:
    return Reply.text(ANSWER)


class _Recorder:
    """A live preview that records what it is asked to show (the port, not a platform)."""

    def __init__(self, *, interval: float, first_delay: float, refresh: float | None) -> None:
        self.interval, self.first_delay, self.refresh = interval, first_delay, refresh
        self.shown: list[tuple[float, str]] = []
        self.discarded = 0

    async def show(self, text: str) -> None:
        self.shown.append((asyncio.get_running_loop().time(), text))

    async def finish(self, text: str) -> str | None:
        return None

    async def discard(self) -> None:
        self.discarded += 1


async def test_the_stream_paces_updates_coalesces_a_quick_answer_and_refreshes_a_draft() -> None:

    # an answer complete within the first delay is not previewed: it is simply sent
    quick = _Recorder(interval=0.2, first_delay=0.1, refresh=None)
    stream = ReplyStream(quick)
    stream.text("All done.")
    stream.settle()
    assert await stream.handoff() is None and quick.shown == []

    # updates at most once per interval, each the text so far; unchanged, re-shown on refresh
    live = _Recorder(interval=0.2, first_delay=0.05, refresh=0.3)
    stream = ReplyStream(live)
    for word in ["one", "two", "three", "four", "five", "six"]:
        stream.text(word + " ")
        await asyncio.sleep(0.07)
    stream.tool("web_fetch")
    await asyncio.sleep(0.8)  # a slow tool: the preview is shown again, unchanged
    times = [t for t, _ in live.shown]
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(times)), times
    texts = [text for _, text in live.shown]
    assert texts[0].startswith("one") and texts == sorted(texts, key=len)
    assert texts[-1] == texts[-2] == "one two three four five six \n\n⚙ Using web_fetch…"
    await stream.stop()  # outside content: nothing more, the preview taken down
    stream.text("from the page")
    await asyncio.sleep(0.3)
    assert all("page" not in text for _, text in live.shown) and live.discarded == 1
    assert await stream.handoff() is None


async def test_a_reply_opening_with_a_code_fence_is_still_previewed(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    """The first snapshot of a reply that opens with a code block is the fence alone, which
    renders to nothing: the preview took the last of no chunks, failed, and was off for the
    rest of the turn."""
    import logging

    from bot.channels.formatting import telegram_chunks

    code = "```python3 -u -O\n" + "".join(f"print('line {i}')\n" for i in range(40))
    code += "```\n\nThat prints forty lines."
    assert telegram_chunks(code[:16]) == []
    fake_model.stream_delay = 0.15
    fake_model.reply_text(code)
    with caplog.at_level(logging.WARNING):
        async with FakeTelegram() as tg, telegram(tmp_path, fake_model, tg):
            _say(tg, "show me a loop", group=False)
            await tg.wait_for("sendMessage", timeout=30)
    assert "a live preview update failed" not in caplog.text
    assert tg.calls_to("sendMessageDraft"), "no preview was ever shown"


_LONG_ANSWER = "It is **late**: " + "time to rest, the day is done. " * 6


async def test_a_slack_stream_slack_will_not_stop_is_still_taken_down(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R106: `chat.stopStream` refused (Slack had ended the stream itself) and `chat.delete`,
    in the same block after it, was never tried: the answer showed twice."""
    fake_model.stream_delay = 0.12
    fake_model.reply_text(_LONG_ANSWER)
    async with FakeSlack() as sl, slack_steward(tmp_path, fake_model, sl) as (_, _, url):
        sl.update_interval = 0.5
        sl.fail_next("chat.stopStream", "message_not_in_streaming_state")
        event = message_event("is it late?", user=OWNER_SLACK, channel="DOWNER")
        await post_signed(url, sl.signing_secret, json_body=event_body(event))
        await sl.wait_for("chat.postMessage", timeout=15)
        [start] = sl.calls_to("chat.startStream")
    assert ("DOWNER", start.result["ts"]) in sl.deleted


async def test_a_group_preview_is_taken_down_after_flood_control_too(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R106: a clean turn's preview in a group must come down once the turn reads a file (it
    is tainted); one 429 on `deleteMessage` and it stayed above the reply for good."""
    fake_model.stream_delay = 0.06
    fake_model.reply_tool_use("read_file", {"path": "notes.txt"}, text="Reading your notes. " * 4)
    fake_model.reply_text("Your notes say: call Bob at five.")
    owner = f"{OWNER},telegram:{OWNER_TG}"
    async with (
        running_steward(tmp_path, fake_model.base_url, STEWARD_OWNER=owner) as h,
        FakeTelegram() as tg,
        telegram_channel(h, tg),
    ):
        h.settings.workspace.mkdir(parents=True, exist_ok=True)
        (h.settings.workspace / "notes.txt").write_text("Call Bob at 5.")
        tg.fail_next("deleteMessage", status=429, retry_after=1)
        tg.push_message(
            "@steward_test_bot what do my notes say?",
            chat_type="supergroup",
            chat_id=GROUP,
            user_id=OWNER_TG,
        )
        [preview, _] = await tg.wait_for("sendMessage", 2, timeout=15)
        for _ in range(60):
            if any(c.status == 200 for c in tg.calls_to("deleteMessage")):
                break
            await asyncio.sleep(0.05)
        deletes = tg.calls_to("deleteMessage")
    deleted = [str(c.params["message_id"]) for c in deletes if c.status == 200]
    assert deleted == [str(preview.result["message_id"])]
