"""What follows a turn's reply: memory upkeep off the chat's line, a restart after the reply was
stored, a give-up after actions already ran, a refusal part-way (review 74).

- The chat's next message does not wait for the last turn's memory upkeep (extraction,
  compaction): that runs in the background once the reply is out, one chat's one after the other,
  and is let finish (then cancelled) when Steward stops.
- A message whose turn ended and whose reply was stored is answered: a restart (a stop while the
  reply waits out Telegram's flood control, a kill during upkeep) does not ask to send it again;
  one whose turn never ended, or whose reply was never stored, still gets that note.
- When the model API gives up after a step already acted, the apology names what was done, and
  the next turn's model reads it: "try again" does not set the reminder twice.
- A refusal part-way through an answer says the answer stops there.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.telegram import FakeTelegram
from harness import OWNER, Harness, make_settings, running_steward, telegram_channel, until

from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
from bot.app import build_steward
from bot.commands.access import apply_owner_settings
from bot.recovery import RestartNote, recover_interrupted
from memory.clock import SystemClock
from memory.stores import Stores

OWNER_TG = 1001
STATEMENT = "I live in Lisbon and my sister is called Ana."
RESEND = "restarted before I could finish answering"
NOTHING_TO_KEEP = '{"memories": []}'


def is_extraction(request: RecordedRequest) -> bool:
    return request.system_text == EXTRACTION_SYSTEM


def said_in(request: RecordedRequest) -> str:
    """The person's message an extraction call reads (not the memories listed before it)."""
    return request.last_user_text.rsplit("The user's message:", 1)[-1]


def chatting(reply: str = "Noted.") -> Callable[[RecordedRequest], Reply]:
    return lambda request: Reply.text(reply)


async def recovered(
    data_dir: Path, model: FakeAnthropic, **overrides: str
) -> tuple[list[RestartNote], list[str]]:
    """Start over on `data_dir` as a restart does (`overrides`: the settings it ran with): the
    notes recovery would send, and the statuses of the incoming messages after it."""
    settings = make_settings(data_dir, model.base_url, **overrides)
    clock = SystemClock()
    stores = await Stores.open(settings.database_path, clock)
    try:
        await apply_owner_settings(stores, list(settings.owner))
        steward = await build_steward(settings, stores, clock)
        try:
            notes = await recover_interrupted(steward)
            statuses = [m.status for m in await stores.messages.all(direction="in")]
        finally:
            await steward.aclose()
    finally:
        await stores.close()
    return notes, statuses


def edit(h: Harness, sql: str) -> None:
    with closing(sqlite3.connect(h.settings.database_path)) as conn, conn:
        conn.execute(sql)


# -- memory upkeep: off the chat's line, ordered, stopped with Steward ---------------------------


async def test_the_chats_next_message_does_not_wait_for_the_last_turns_upkeep(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    extracting, release = asyncio.Event(), asyncio.Event()

    async def model(request: RecordedRequest) -> Reply:
        if is_extraction(request):  # slow: the model API retrying, say
            extracting.set()
            await release.wait()
            return Reply.text(NOTHING_TO_KEEP)
        return Reply.text(f"reply {len(fake_model.requests)}")

    fake_model.on_request(model)
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        first = asyncio.create_task(h.say(STATEMENT))
        try:
            await asyncio.wait_for(extracting.wait(), 20)  # its reply is out; upkeep under way
            second = asyncio.create_task(h.say("what time is it?"))
            await until(lambda: len(h.channel.texts()) == 2, "the second reply", timeout=10)
            assert not release.is_set()
        finally:
            release.set()
        await first
        await second
        extractions = [r for r in fake_model.requests if is_extraction(r)]
        assert len(extractions) == 1  # "what time is it?" is no statement


async def test_one_chats_upkeeps_run_in_turn_and_other_chats_do_not_wait(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Two upkeeps of one chat never run at once (two compactions would summarise the same
    messages twice); another chat's runs beside them."""
    started: list[str] = []
    release = asyncio.Event()

    async def model(request: RecordedRequest) -> Reply:
        if is_extraction(request):
            said = said_in(request)
            started.append(said)
            if "Lisbon" in said:
                await release.wait()
            return Reply.text(NOTHING_TO_KEEP)
        return Reply.text("Noted.")

    fake_model.on_request(model)
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        said = [asyncio.create_task(h.say("I live in Lisbon and I work at the port."))]
        try:
            await until(lambda: len(started) == 1, "the first extraction")
            said.append(asyncio.create_task(h.say("My sister Ana lives in Porto.")))
            await until(lambda: len(h.channel.texts("c1")) == 2, "the second reply", timeout=10)
            said.append(asyncio.create_task(h.say("I prefer green tea.", chat="c2")))
            await until(lambda: len(started) == 2, "the other chat's extraction", timeout=10)
            await asyncio.sleep(0.3)
            assert [("Porto" in s, "green tea" in s) for s in started] == [
                (False, False),
                (False, True),
            ], "an upkeep of the chat started while its last one still ran"
        finally:
            release.set()
        await until(lambda: len(started) == 3, "the chat's second extraction, after the first")
        assert "Porto" in started[2]
        await asyncio.gather(*said)


async def test_upkeep_under_way_when_steward_stops_is_let_finish_then_cancelled(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async def model(request: RecordedRequest) -> Reply:
        if is_extraction(request):
            if "Lisbon" in said_in(request):
                await asyncio.sleep(0.3)  # finishes within the stop's grace: kept
                fact = {"text": "Lives in Lisbon.", "kind": "fact", "subject": "home city"}
                return Reply.text(json.dumps({"memories": [fact]}))
            await asyncio.sleep(3600)  # never finishes: cancelled
        return Reply.text("Noted.")

    fake_model.on_request(model)
    async with asyncio.timeout(30):  # the stop's grace is 5 s
        async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
            # dispatched as a channel does: back once the reply is out
            await h.router.dispatch(h.message(STATEMENT))
            await h.router.dispatch(h.message("I work at the harbour.", chat="c2"))
            await until(lambda: sum(map(is_extraction, fake_model.requests)) == 2, "extractions")
    left = [t for t in asyncio.all_tasks() if t.get_name().startswith("memory-upkeep")]
    assert not left, f"upkeep left running after the stop: {left}"
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        assert [m.text for m in await h.memories()] == ["Lives in Lisbon."]


# -- a restart after the reply was stored: answered, not "send it again" -------------------------


async def test_a_stop_while_the_reply_waits_out_flood_control_is_no_reason_to_resend(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(chatting("It is 5 o'clock."))
    async with FakeTelegram() as tg:
        owners = {"STEWARD_OWNER": f"{OWNER},telegram:{OWNER_TG}", "STEWARD_STREAMING": "off"}
        async with running_steward(tmp_path, fake_model.base_url, **owners) as h:
            async with telegram_channel(h, tg):
                tg.fail_next("sendMessage", status=429, retry_after=30)
                tg.push_message("what time is it?", user_id=OWNER_TG)
                await tg.wait_for("sendMessage", timeout=20)  # answered 429: waiting it out
                await asyncio.sleep(0.2)
            # stopped (SIGTERM, systemctl restart) while the reply waited
            backlog = await h.steward.courier.backlog()
    assert len(backlog) == 1, "the reply is stored, for redelivery"
    notes, statuses = await recovered(tmp_path, fake_model, **owners)
    assert not [n for n in notes if RESEND in n.text], notes
    assert statuses == ["handled"]


async def test_a_kill_after_the_reply_was_stored_is_no_reason_to_resend(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """What SIGKILL leaves while the reply waits to go out, or while its upkeep runs: the turn
    ended, its reply stored, the message never marked answered."""
    fake_model.on_request(chatting("It is 5 o'clock."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("what time is it?")
    edit(h, "UPDATE messages SET status = 'received' WHERE direction = 'in'")
    edit(h, "UPDATE messages SET status = 'pending' WHERE direction = 'out'")
    notes, statuses = await recovered(tmp_path, fake_model)
    assert notes == []
    assert statuses == ["handled"]  # answered: in the history the next turns read


async def test_a_message_whose_reply_was_never_stored_is_still_asked_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Its turn ended, but all that was stored is what a tool posted to the chat while the turn
    ran (before it ended): the reply itself was lost to the kill."""
    fake_model.on_request(chatting("It is 5 o'clock."))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("what time is it?")
    edit(h, "UPDATE messages SET status = 'received' WHERE direction = 'in'")
    edit(h, "UPDATE messages SET created_at = '2000-01-01T00:00:00.000000+00:00' WHERE turn_id")
    notes, statuses = await recovered(tmp_path, fake_model)
    assert [n.text for n in notes if RESEND in n.text and "what time is it?" in n.text]
    assert statuses == ["interrupted"]


async def test_a_message_whose_turn_asked_for_a_tool_is_not_simply_asked_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A turn cut short after it asked for a tool may have acted: the restart note says to
    check what was done first (R116: after a disk-full turn said so, it asked for the message
    again as if nothing had been done). One that asked for none is asked again plainly."""
    fake_model.reply(Reply.tool_use("list_files", {"path": "."}))
    fake_model.reply_text("Nothing there.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("what is in my workspace?")
    edit(h, "UPDATE messages SET status = 'received' WHERE direction = 'in'")
    edit(h, "UPDATE messages SET created_at = '2000-01-01T00:00:00.000000+00:00' WHERE turn_id")
    notes, _ = await recovered(tmp_path, fake_model)
    [note] = [n.text for n in notes if RESEND in n.text]
    assert "check what was done before sending it again" in note, note


async def test_a_command_cut_short_is_not_simply_asked_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R169: killed while "OK, #1" for `/remind 30m call the plumber` was on its way, the
    reminder made: the restart note said "Please send it again", and sent again it made #2."""
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("/remind 30m call the plumber")
    edit(h, "UPDATE messages SET status = 'received' WHERE direction = 'in'")
    notes, _ = await recovered(tmp_path, fake_model)
    [note] = [n.text for n in notes if RESEND in n.text]
    assert "check what was done before sending it again" in note, note


async def test_an_approve_cut_short_gets_one_note_of_what_came_of_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R169: killed while the approved request's turn went on, the owner was told it ran, and
    also to send "/approve …" again (which then said "already executed")."""
    fake_model.reply(Reply.tool_use("shell", {"command": "echo hi"}))
    fake_model.reply_text("Sent.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("run echo hi")
        [(_, card)] = h.channel.approvals
        await h.say(f"/approve {card.approval_id}")
    edit(h, "UPDATE messages SET status = 'received' WHERE direction = 'in'")
    edit(h, "UPDATE turns SET status = 'running'")  # cut while it went on
    notes, _ = await recovered(tmp_path, fake_model)
    about = [n.text for n in notes if card.approval_id in n.text]
    assert len(about) == 1 and "I was restarted while finishing after request" in about[0]


async def test_a_message_whose_turn_never_ended_is_still_asked_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    asked, release = asyncio.Event(), asyncio.Event()

    async def model(request: RecordedRequest) -> Reply:
        asked.set()
        await release.wait()
        return Reply.text("too late")

    fake_model.on_request(model)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        dispatch = asyncio.create_task(h.say("what time is it?"))
        try:
            await asyncio.wait_for(asked.wait(), 20)
            dispatch.cancel()  # stopped mid-turn
            await asyncio.gather(dispatch, return_exceptions=True)
        finally:
            release.set()
    notes, statuses = await recovered(tmp_path, fake_model)
    assert [n.text for n in notes if RESEND in n.text]
    assert statuses == ["interrupted"]


# -- the model API gives up after actions ran --------------------------------------------------


async def test_a_give_up_after_actions_names_them_and_the_next_turn_reads_it(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_tool_uses(
        [
            ("current_time", {}),  # a read: nothing done
            ("no_such_tool", {"x": 1}),  # refused: nothing done
            ("reminder_add", {"when": "in 2 hours", "text": "call the bank"}),
        ]
    )
    fake_model.reply_tool_use("reminder_add", {"when": "in 3 hours", "text": "water the plants"})
    fake_model.fail(529, times=3, retry_after=0.01)  # the step after: given up

    def obliging(request: RecordedRequest) -> Reply:
        # a model that does what it is asked unless it can see it was done
        if request.tool_results:
            return Reply.text("Done.")
        history = str(request.messages[:-1])
        if "reminder_add ` call the bank `" in history:
            return Reply.text("Both reminders are already set.")
        return Reply.tool_use("reminder_add", {"when": "in 2 hours", "text": "call the bank"})

    async with running_steward(tmp_path, fake_model.base_url) as h:
        first = await h.say("remind me to call the bank, and to water the plants")
        assert first.startswith("Sorry, I couldn't answer: the model API is overloaded.")
        assert (
            "Already done before the failure (asking again would do it twice): reminder_add "
            "` call the bank `, reminder_add ` water the plants `. I tried several times" in first
        ), first
        assert "current_time" not in first and "no_such_tool" not in first
        fake_model.on_request(obliging)
        second = await h.say("try again")
        retry = next(r for r in fake_model.requests if "try again" in r.last_user_text)
        assert any(
            m["role"] == "assistant" and "Already done before the failure" in str(m["content"])
            for m in retry.messages
        ), "the apology is not in the history the next turn reads"
        assert second == "Both reminders are already set."
    with closing(sqlite3.connect(h.settings.database_path)) as conn:
        texts = [row[0] for row in conn.execute("SELECT payload FROM schedules ORDER BY id")]
    assert len(texts) == 2 and "call the bank" in texts[0], texts


async def test_a_give_up_before_any_action_says_nothing_was_done(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_tool_use("current_time", {})
    fake_model.fail(529, times=3, retry_after=0.01)
    async with running_steward(tmp_path, fake_model.base_url) as h:
        reply = await h.say("what time is it in Lisbon?")
    assert reply == (
        "Sorry, I couldn't answer: the model API is overloaded. I tried several times with "
        "backoff and gave up for now; please try again in a little while."
    )


# -- a refusal part-way ------------------------------------------------------------------------


async def test_a_refusal_part_way_through_an_answer_says_it_stops_there(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply(Reply.text("Sure, here is how you", stop_reason="refusal"))
    fake_model.reply(Reply.text("", stop_reason="refusal"))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        partial = await h.say("tell me something")
        nothing = await h.say("tell me something else")
    assert partial.startswith("Sure, here is how you\n\n")
    assert "declined to go on" in partial and "stops here" in partial
    assert nothing == "(The model declined to answer this.)"


async def test_a_forget_waits_for_the_compaction_in_flight(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Review 77: with upkeep off the chat's line, `/memory forget` ran while a compaction that
    had read the PIN was in flight, and the compaction saved the fact again afterwards."""
    compacting, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def model(request: RecordedRequest) -> Reply:
        if request.system_text == COMPACTION_SYSTEM:
            seen.append(request.last_user_text)
            compacting.set()
            await release.wait()  # a summary call takes seconds on the real API
            facts = [{"text": "Bank PIN is 4921.", "kind": "fact", "subject": "bank PIN"}]
            return Reply.text(
                json.dumps({"summary": "Shared bank PIN 4921; garden talk.", "facts": facts})
            )
        if request.system_text == EXTRACTION_SYSTEM:
            return Reply.text('{"memories": []}')
        return Reply.text("Noted.")

    fake_model.reply_tool_use("memory_save", {"text": "Bank PIN is 4921.", "subject": "bank PIN"})
    fake_model.reply_text("Saved.")
    fake_model.on_request(model)
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_HISTORY_TOKENS="150", STEWARD_EMBEDDER="none"
    ) as h:
        await h.say("My bank PIN is 4921, keep it for me.")
        [fact] = [m for m in await h.memories() if m.text == "Bank PIN is 4921."]
        tasks = []
        try:
            for i in range(8):
                text = "The balcony garden: " + "tomatoes, basil and chillies. " * 5 + str(i)
                tasks.append(asyncio.create_task(h.router.dispatch(h.message(text))))
                started = asyncio.create_task(compacting.wait())
                await asyncio.wait([tasks[-1], started], return_when=asyncio.FIRST_COMPLETED)
                started.cancel()
                if compacting.is_set():
                    break
            assert compacting.is_set(), "no compaction started"
            assert "4921" in seen[0]
            await asyncio.sleep(0.3)  # every reply is out: the owner reads it
            # ... and forgets the PIN while the compaction is in flight
            forget = asyncio.create_task(h.router.dispatch(h.message(f"/memory forget {fact.id}")))
            await asyncio.sleep(1.0)
            assert not forget.done()  # it waits for the upkeep in flight
        finally:
            release.set()
        await forget
        await asyncio.gather(*tasks)
        assert h.steward.memory is not None
        await h.steward.memory.upkeep_settled()
        said = h.channel.texts()[-1]
        assert "Forgotten" in said, said
        # (an episode quoting it is documented: "forget them too"; the fact itself is not)
        left = [m.text for m in await h.memories() if "4921" in m.text and m.kind != "episode"]
        assert not left, f"forgotten PIN fact is back in memory after the forget: {left}"
