"""In a Slack channel each thread is a conversation of its own (review58): the history a turn
is sent is its thread's, so a parallel thread's words neither reach the model nor taint the turn,
while a reply in a thread still sees that thread's earlier exchange. A Slack DM, where every
top-level message has a thread of its own, stays one conversation. Through the Slack fake at
the wire; and the per-thread windows of `MessageLog.recent` (memory/message_window.py) checked
against the plain SQL they stand for, as tests/test_message_window.py does for whole chats."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakes.anthropic import FakeAnthropic, RecordedRequest
from fakes.slack import FakeSlack, app_mention_event, event_body, message_event, post_signed
from harness import OWNER_SLACK, Harness, echo_reply, slack_steward

from memory.clock import FrozenClock
from memory.messages import InStatus, OutStatus
from memory.people import Identity
from memory.stores import Stores

if TYPE_CHECKING:
    from memory.messages import Thread

CHANNEL = "C9"
DM = "DOWNER"
OFF = {"STEWARD_STREAMING": "off"}


async def _send(url: str, slack: FakeSlack, event: dict[str, Any], posts: int) -> str:
    """Deliver `event`, wait for Steward's `posts`-th post; the event's ts."""
    status, _ = await post_signed(url, slack.signing_secret, json_body=event_body(event))
    assert status == 200
    await slack.wait_for("chat.postMessage", posts, timeout=15)
    return str(event["ts"])


def _asked(model: FakeAnthropic, words: str) -> RecordedRequest:
    """The model request of the turn whose message says `words`."""
    (found,) = [r for r in model.requests if words in r.last_user_text]
    return found


def _history(request: RecordedRequest) -> str:
    """The conversation sent before the turn's own message (its context block left out)."""
    return json.dumps(request.messages[:-1])


def _mention(text: str, user: str = OWNER_SLACK) -> dict[str, Any]:
    return app_mention_event(f"<@UBOT> {text}", user=user, channel=CHANNEL)


def _dm(text: str) -> dict[str, Any]:
    return message_event(text, user=OWNER_SLACK, channel=DM)


async def _turn_of(h: Harness, words: str) -> Any:
    (message,) = await h.steward.stores.messages.find_text(words, direction="in")
    (turn,) = [t for t in await h.turns() if t.message_id == message.id]
    return turn


async def test_a_second_thread_neither_sees_nor_is_tainted_by_the_first(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (h, _, url),
    ):
        await h.steward.stores.people.admit(Identity("slack", "UANN"))
        await _send(url, slack, _mention("thread A: the launch codename is BLUEBIRD", "UANN"), 1)
        b = await _send(url, slack, _mention("thread B: unrelated question"), 2)
        turn = await _turn_of(h, "unrelated question")
    asked = _asked(fake_model, "unrelated question")
    assert "BLUEBIRD" not in json.dumps(asked.messages)
    assert len(asked.messages) == 1  # a new thread: nothing said in it yet
    assert not turn.tainted and not turn.label.sources  # Ann's words are in another thread
    assert slack.posted(CHANNEL)[1].params["thread_ts"] == b


async def test_a_reply_in_a_thread_sees_that_threads_earlier_exchange_only(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (_, _, url),
    ):
        a = await _send(url, slack, _mention("thread A: the launch codename is BLUEBIRD"), 1)
        await _send(url, slack, _mention("thread B: the colour is TEAL"), 2)
        for n, words in [(3, "and what was the codename?"), (5, "spell it backwards")]:
            reply = message_event(
                words, user=OWNER_SLACK, channel=CHANNEL, channel_type="channel", thread_ts=a
            )  # a reply in thread A, without a mention
            await _send(url, slack, reply, n)
            if n == 3:  # another thread speaks between the two replies in thread A
                await _send(url, slack, _mention("thread C: what time is it"), 4)
    first = _asked(fake_model, "and what was the codename?")
    seen = _history(first)
    assert "the launch codename is BLUEBIRD" in seen and "re: thread A" in seen
    assert "TEAL" not in json.dumps(first.messages)
    assert [m["role"] for m in first.messages] == ["user", "assistant", "user"]
    # the thread's history is a stable prefix for the prompt cache: the next reply in the thread
    # starts with the same messages, though another thread spoke in between
    second = _asked(fake_model, "spell it backwards")
    assert "what time is it" not in json.dumps(second.messages)
    for block in first.messages[1]["content"]:
        block.pop("cache_control", None)
    assert second.messages[:2] == first.messages[:2]
    assert [p.params["thread_ts"] for p in slack.posted(CHANNEL)][2::2] == [a, a]


async def test_a_dm_keeps_its_whole_conversation_across_top_level_messages(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Unchanged by the threads rule (Slack gives each DM message a thread of its own)."""
    fake_model.on_request(echo_reply)
    async with (
        FakeSlack() as slack,
        slack_steward(tmp_path, fake_model, slack, env=OFF) as (_, _, url),
    ):
        await _send(url, slack, _dm("my codename is BLUEBIRD"), 1)
        await _send(url, slack, _dm("what is my codename?"), 2)
    asked = _asked(fake_model, "what is my codename?")
    seen = _history(asked)
    assert "my codename is BLUEBIRD" in seen and "re: my codename is BLUEBIRD" in seen
    posts = slack.posted(DM)
    assert posts[0].params["thread_ts"] != posts[1].params["thread_ts"]  # two threads, one talk


STATUSES = [*InStatus, *OutStatus]


async def _plain(
    stores: Stores, chat_id: int, thread: Thread, before_id: int | None, limit: int
) -> list[int]:
    """What `recent` must return: the query, without any window."""
    from memory.messages import WHOLE_CHAT

    where, args = "", []
    if thread is not WHOLE_CHAT:
        where, args = " AND thread_id IS ?", [thread]
    rows = await stores.db.fetchall(
        f"SELECT id FROM messages WHERE chat_id = ? AND in_history = 1{where}"
        " AND (direction = 'out' OR id < ?)"
        " AND status IN ('handled', 'sent', 'pending', 'received')"
        " ORDER BY id DESC LIMIT ?",
        (chat_id, *args, before_id if before_id is not None else 2**62, limit),
    )
    return [int(r["id"]) for r in reversed(rows)]


async def test_thread_windows_always_answer_what_the_query_would(tmp_path: Path) -> None:
    """Random writes over a few chats and threads, reads of whole chats and of single threads
    interleaved (a window each), more of them than are kept."""
    from memory.messages import WHOLE_CHAT  # (here: the other tests run on the code before it)

    rng = random.Random(58)
    stores = await Stores.open(tmp_path / "s.db", FrozenClock(datetime(2026, 6, 1, tzinfo=UTC)))
    try:
        log = stores.messages
        chats = [(await stores.people.chat("test", f"c{i}", "group")).id for i in range(3)]
        threads: list[str | None] = [None, "t1", "t2", "t3", "t4", "t5"]
        sent: list[int] = []
        for step in range(3000):
            chat = rng.choice(chats[:2] if rng.random() < 0.8 else chats)
            thread = rng.choice(threads[:3] if rng.random() < 0.7 else threads)
            op = rng.random()
            if op < 0.3:
                new = await log.record_incoming(
                    chat_id=chat,
                    user_id=None,
                    text=f"in {step}",
                    platform_message_id=f"p{step}",
                    thread_id=thread,
                    in_history=rng.random() < 0.9,
                )
                assert new is not None
                sent.append(new)
            elif op < 0.55:
                new = await log.record_outgoing(
                    chat_id=chat,
                    text=f"out {step}",
                    thread_id=thread,
                    turn_id=step,
                    in_history=rng.random() < 0.9,
                )
                sent.append(new)
            elif op < 0.72 and sent:
                target = rng.choice(sent[-300:] if rng.random() < 0.8 else sent)
                await log.set_status(target, rng.choice(STATUSES), turn_id=rng.choice([None, step]))
            elif op < 0.77 and sent:
                await log.set_text(rng.choice(sent), f"text {step}")
            else:
                which: Thread = WHOLE_CHAT if rng.random() < 0.3 else thread
                limit = rng.choice([1, 5, 50, 200, 224, 225, 400])
                before = rng.choice([None, *(sent[-20:] or [None])])
                got = await log.recent(chat, before_id=before, limit=limit, thread=which)
                assert [m.id for m in got] == await _plain(stores, chat, which, before, limit), step
                fresh = {m.id: m for m in await log.all()}
                assert got == [fresh[m.id] for m in got], step  # status, text, turn: current
        for chat in chats:
            for which in [WHOLE_CHAT, *threads]:
                got = await log.recent(chat, limit=200, thread=which)
                assert [m.id for m in got] == await _plain(stores, chat, which, None, 200)
    finally:
        await stores.close()
