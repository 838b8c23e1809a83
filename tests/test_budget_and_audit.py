"""The daily token budget for self-initiated turns, and the audit chain."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Usage
from harness import OWNER, running_steward

from agent.types import TurnRequest
from memory.turns import TurnStatus


async def _job(h, text: str = "morning briefing") -> TurnRequest:  # type: ignore[no-untyped-def]
    owner = await h.steward.stores.people.owner()
    chat = await h.steward.stores.people.chat("test", "c1")
    return TurnRequest(
        kind="briefing", user=owner, chat=chat, address=h.message("").address, text=text
    )


async def test_self_initiated_turns_pause_when_the_budget_is_spent(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text("big answer", usage=Usage(input_tokens=900, output_tokens=200))
    fake_model.reply_text("chat still works")
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_DAILY_TOKEN_BUDGET="1000"
    ) as h:
        await h.say("use many tokens")
        first = await h.steward.respond(await _job(h))
        second = await h.steward.respond(await _job(h))
        assert first.status is second.status is TurnStatus.SKIPPED
        notices = [t for t in h.channel.texts() if "token budget" in t]
        assert len(notices) == 1  # told once, not on every skipped job
        assert await h.say("are you there?") == "chat still works"
        assert "spent, they are paused" in await h.say("/usage")
    assert len(fake_model.requests) == 2  # no model call for the skipped jobs


async def test_another_persons_timezone_does_not_move_the_budgets_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The budget's day began at the asker's midnight: anyone could /timezone to a zone that
    had just passed midnight and spend the whole budget again."""
    from datetime import UTC, datetime, timedelta

    from memory.clock import FrozenClock
    from memory.people import Identity

    clock = FrozenClock(datetime(2026, 5, 1, 9, 30, tzinfo=UTC))
    fake_model.reply_text("big answer", usage=Usage(input_tokens=900, output_tokens=200))
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_DAILY_TOKEN_BUDGET="1000"
    ) as h:
        await h.say("use many tokens")  # the owner spends the budget (UTC day) at 09:30
        clock.advance(timedelta(hours=1))
        friend = Identity("test", "friend")
        user = await h.steward.stores.people.admit(friend, "Friend")
        await h.say("/timezone Pacific/Kiritimati", sender=friend, chat="f")  # day began 10:00
        user = await h.steward.stores.people.get(user.id)
        chat = await h.steward.stores.people.chat("test", "f")
        job = TurnRequest(
            kind="checkin", user=user, chat=chat, address=h.message("", chat="f").address, text="x"
        )  # type: ignore[arg-type]
        assert (await h.steward.respond(job)).status is TurnStatus.SKIPPED
        # the first job skipped was the friend's: the owner's notice went to the friend's chat
        assert not [t for t in h.channel.texts("f") if "token budget" in t]
        assert [t for t in h.channel.texts("c1") if "token budget" in t]


async def test_self_initiated_turns_run_within_budget(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text("Good morning!")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        outcome = await h.steward.respond(await _job(h))
        assert outcome.status is TurnStatus.COMPLETED
        assert h.channel.texts() == ["Good morning!"]
        [turn, *_] = await h.turns()
        assert turn.kind == "briefing"
    assert "started by Steward itself (briefing)" in fake_model.requests[0].last_user_text


async def test_the_audit_chain_verifies_and_names_the_first_edited_event(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_tool_use("current_time", {})
    fake_model.reply_text("It is late.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("what time is it?")
        audit = h.steward.stores.audit
        result = await audit.verify()
        assert result.ok and result.events >= 3
        # Someone with the database file edits the log behind Steward's back.
        h.edit_database(
            'UPDATE audit_events SET detail = \'{"decision":"allow","x":1}\' WHERE id = 2'
        )
        broken = await audit.verify()
        assert (broken.ok, broken.first_broken_id) == (False, 2)
        h.edit_database("DELETE FROM audit_events WHERE id = 1")
        assert (await audit.verify()).first_broken_id == 1


async def test_a_self_initiated_turn_without_a_key_is_not_called_a_spent_budget(
    tmp_path: Path,
) -> None:
    async with running_steward(tmp_path, None) as h:
        outcome = await h.steward.respond(await _job(h))
        assert outcome.status is TurnStatus.SKIPPED
        assert not any("token budget" in t for t in h.channel.texts())
        assert await h.steward.stores.audit.recent(kind="budget.paused") == []


async def test_other_peoples_chat_has_its_own_allowance_and_never_pauses_the_owners_jobs(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A friend's conversation counted against the daily budget and had no limit of its own:
    a friend chatting paused the owner's briefings. Now it is bounded per person per day."""
    from memory.people import Identity

    for _ in range(3):
        fake_model.reply_text("chatty", usage=Usage(input_tokens=300, output_tokens=100))
    fake_model.reply_text("Good morning, owner!")
    fake_model.reply_text("and you, owner")
    async with running_steward(
        tmp_path,
        fake_model.base_url,
        STEWARD_DAILY_TOKEN_BUDGET="1000",
        STEWARD_GUEST_DAILY_TOKENS="6000",  # a turn here is ~2,600 with the prompt cache
    ) as h:
        friend = Identity("test", "friend")
        await h.steward.stores.people.admit(friend, "Friend")
        for i in range(3):  # ~8,000 tokens of the friend's own chat
            assert await h.say(f"tell me a story {i}", sender=friend, chat="f") == "chatty"
        limited = await h.say("one more story", sender=friend, chat="f")
        assert "let's go on tomorrow" in limited
        assert await h.steward.runner.budget_spent() == 0  # none of it in the owner's budget
        outcome = await h.steward.respond(await _job(h))
        assert outcome.status is TurnStatus.COMPLETED
        assert "Good morning, owner!" in h.channel.texts("c1")
        assert await h.say("hello") == "and you, owner"  # the owner has no allowance
        assert await h.steward.runner.budget_spent() > 1000  # the owner's own turns count
    assert len(fake_model.requests) == 5  # none for the friend's fourth message


async def test_a_friends_check_ins_are_on_their_allowance_not_the_owners_budget(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A friend's /goal commands set daily check-ins (no model, no approval); each check-in
    is a model turn under the friend, and it was paid from the owner's budget and outside the
    friend's allowance: three of them paused the owner's briefing (R56)."""
    from datetime import UTC, datetime, timedelta

    from fakes.anthropic import RecordedRequest, Reply

    from memory.clock import FrozenClock
    from memory.people import Identity

    def replies(request: RecordedRequest) -> Reply:
        if "Goal check-in" in request.last_user_text:
            return Reply.text("Did you run?", usage=Usage(input_tokens=5000, output_tokens=200))
        return Reply.text("Good morning, owner!")

    fake_model.on_request(replies)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(
        tmp_path,
        fake_model.base_url,
        clock=clock,
        STEWARD_DAILY_TOKEN_BUDGET="10000",
        STEWARD_GUEST_DAILY_TOKENS="8000",  # one check-in and a half
    ) as h:
        friend = Identity("test", "friend")
        await h.steward.stores.people.admit(friend, "Friend")
        for i in (1, 2, 3):
            await h.say(f"/goal add goal {i}", sender=friend, chat="f")
            await h.say(f"/goal every {i} daily 8:30", sender=friend, chat="f")
        clock.advance(timedelta(hours=1))
        assert h.steward.scheduler is not None
        reports = await h.steward.scheduler.run_due()
        assert sorted(r.status for r in reports) == ["sent", "sent", "skipped"]
        assert not any("let's go on tomorrow" in t for t in h.channel.texts("f"))
        assert not any("token budget" in t for t in h.channel.texts())  # not the owner's
        assert await h.steward.runner.budget_spent() == 0
        briefing = await h.steward.respond(await _job(h))
    assert briefing.status is TurnStatus.COMPLETED


async def test_a_friends_one_off_check_in_skipped_for_their_allowance_runs_the_next_day(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R59: the eve-of-due-date check-in of a friend who had chatted their allowance away was
    reported skipped and the one-off schedule finished: the nudge never came, nobody told."""
    from datetime import UTC, datetime, timedelta

    from fakes.anthropic import RecordedRequest, Reply

    from memory.clock import FrozenClock
    from memory.people import Identity

    def replies(request: RecordedRequest) -> Reply:
        if "check-in" in request.last_user_text.lower():
            return Reply.text("Your thesis is due tomorrow: how far are you?")
        return Reply.text("Sure.", usage=Usage(input_tokens=5000, output_tokens=100))

    fake_model.on_request(replies)
    clock = FrozenClock(datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    async with running_steward(
        tmp_path, fake_model.base_url, clock=clock, STEWARD_GUEST_DAILY_TOKENS="8000"
    ) as h:
        friend = Identity("test", "friend")
        await h.steward.stores.people.admit(friend, "Friend")
        await h.say("/goal add Hand in the thesis", sender=friend, chat="f")
        await h.say("/goal due 1 2026-03-12", sender=friend, chat="f")
        assert h.steward.scheduler is not None
        clock.advance(timedelta(hours=24, minutes=30))  # the eve, 08:30: the friend chats
        await h.say("what is a good structure for a conclusion?", sender=friend, chat="f")
        await h.say("and for an abstract?", sender=friend, chat="f")
        clock.advance(timedelta(minutes=40))  # past the check-in's 09:00
        skipped = await h.steward.scheduler.run_due()
        clock.advance(timedelta(hours=15))  # past midnight: the allowance is new, but
        at_night = await h.steward.scheduler.run_due()  # the check-in keeps its own hour
        clock.advance(timedelta(hours=9))
        later = await h.steward.scheduler.run_due()
    assert [r.status for r in skipped] == ["skipped"] and at_night == []
    assert [r.status for r in later] == ["sent"]
    assert "due tomorrow" in h.channel.texts("f")[-1]


async def test_remembering_a_friends_words_is_theirs_to_spend_too(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The memory call after a friend's turn (kind `memory`, recorded under the friend) was
    outside their allowance and inside the owner's budget: it paused the owner's briefing."""
    import json

    from memory.people import Identity

    fake_model.reply_text("nice!", usage=Usage(input_tokens=100, output_tokens=10))
    fake_model.reply_text(  # the extraction call after the friend's turn
        json.dumps({"memories": [{"text": "Friend moved to Berlin", "kind": "fact"}]}),
        usage=Usage(input_tokens=1500, output_tokens=100),
    )
    fake_model.reply_text("Good morning, owner!")
    async with running_steward(
        tmp_path,
        fake_model.base_url,
        STEWARD_DAILY_TOKEN_BUDGET="1000",
        STEWARD_GUEST_DAILY_TOKENS="50000",
    ) as h:
        friend = Identity("test", "friend")
        await h.steward.stores.people.admit(friend, "Friend")
        await h.say("I moved to Berlin last week and I love it.", sender=friend, chat="f")
        async with asyncio.timeout(10):
            while {t.kind for t in await h.turns()} != {"chat", "memory"}:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # the extraction ran, under the friend
        assert await h.steward.runner.budget_spent() == 0
        briefing = await h.steward.respond(await _job(h))
    assert briefing.status is TurnStatus.COMPLETED


async def test_a_guest_writing_in_ten_groups_at_once_stops_near_the_allowance(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R97: the allowance is checked when a turn starts, against turns already finished, and
    chats run side by side: one message in each of ten groups at once all passed the check and
    spent 62,080 tokens of a 5,000 allowance on the owner's key. A guest's turns now take turns,
    so spending stops one turn past the allowance however many chats they use."""
    from fakes.anthropic import Reply

    from agent.types import Address, ChatKind, IncomingMessage
    from memory.people import Identity

    fake_model.latency = 0.3  # the turns overlap
    fake_model.on_request(
        lambda request: Reply.text("sure", usage=Usage(input_tokens=3900, output_tokens=100))
    )
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_GUEST_DAILY_TOKENS="5000", STEWARD_EMBEDDER="none"
    ) as h:
        guest = Identity("test", "guest")
        user = await h.steward.stores.people.admit(guest, "Guest")
        await asyncio.gather(
            *(
                h.router.dispatch(
                    IncomingMessage(
                        sender=guest,
                        address=Address("test", f"-100{i}"),
                        text=f"write me a long story number {i}",
                        platform_message_id=f"-100{i}:1",
                        sender_name="Guest",
                        chat_kind=ChatKind.GROUP,
                    )
                )
                for i in range(10)
            )
        )
        spent = await h.steward.stores.turns.guest_tokens_since(
            user.id, h.steward.runner.budget_day_start()
        )
        told = [t for t in h.channel.texts() if "let's go on tomorrow" in t]
    assert spent <= 5000 + 4000, f"{spent:,} tokens spent against an allowance of 5,000"
    assert len(fake_model.requests) <= 2  # one turn past the allowance at most
    assert len(told) == 10 - len(fake_model.requests)  # every other group was told


async def test_a_guests_resumed_turn_waits_for_their_running_turn(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R98: a guest's turn resumed after the owner's /approve ran beside their other turn."""
    from fakes.anthropic import RecordedRequest, Reply

    from agent.memory_upkeep import COMPACTION_SYSTEM, EXTRACTION_SYSTEM
    from agent.types import Address, ChatKind, IncomingMessage
    from memory.people import Identity

    guest = Identity("test", "guest")
    inflight, most = 0, 0

    async def slow(request: RecordedRequest) -> Reply:
        nonlocal inflight, most
        if request.system_text in (EXTRACTION_SYSTEM, COMPACTION_SYSTEM):
            return Reply.text('{"memories": []}')
        inflight += 1
        most = max(most, inflight)
        await asyncio.sleep(0.5)
        inflight -= 1
        return Reply.text("sure", usage=Usage(input_tokens=100, output_tokens=10))

    def said(chat: str, text: str) -> IncomingMessage:
        return IncomingMessage(
            sender=guest,
            address=Address("test", chat),
            text=text,
            platform_message_id=f"{chat}:1",
            sender_name="Guest",
            chat_kind=ChatKind.GROUP,
        )

    fake_model.reply_tool_use("write_file", {"path": "note.md", "content": "hello"})
    fake_model.on_request(slow)
    async with running_steward(
        tmp_path,
        fake_model.base_url,
        STEWARD_GUEST_DAILY_TOKENS="100000",
        STEWARD_EMBEDDER="none",
    ) as h:
        await h.steward.stores.people.admit(guest, "Guest")
        await h.router.dispatch(said("g1", "write a note please"))
        [pending] = await h.steward.stores.approvals.pending()
        most = 0
        await asyncio.gather(
            h.router.dispatch(said("g2", "tell me a story")),
            h.say(f"/approve {pending.id}"),
        )
        assert len(fake_model.requests) >= 3  # the g2 turn and the resumed g1 turn both ran
    assert most == 1, f"{most} of the guest's model calls ran at once"


async def test_a_guests_allowance_ends_a_long_turn_part_way(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R177: the allowance was checked only before a turn: one guest turn of 8 steps of memory
    searches spent 570,000 tokens against a 100,000 allowance. It is checked before every
    model call now, and a tool's result is cut at STEWARD_TOOL_OUTPUT_LIMIT (20 memory hits
    had come to 78,705 characters)."""
    from memory.people import Identity

    for _ in range(8):
        search = {"query": "notes", "limit": 20}
        fake_model.reply_tool_use("memory_search", search, usage=Usage(3000, 50))
    fake_model.reply_text("Found them.")
    async with running_steward(
        tmp_path, fake_model.base_url, STEWARD_GUEST_DAILY_TOKENS="7000"
    ) as h:
        guest = Identity("test", "friend")
        await h.steward.stores.people.admit(guest, "Friend")
        for n in range(12):
            await h.say(f"/remember note {n}: " + "lorem ipsum " * 330, sender=guest, chat="f")
        said = await h.say("find all my notes", sender=guest, chat="f")
    assert "used up what my owner set aside" in said
    searches = [r for r in fake_model.requests if r.tool_results]
    assert 1 <= len(searches) <= 2  # stopped once the allowance was spent, not after 8
    [first] = searches[0].tool_results
    assert len(str(first["content"])) < 21_000 and "(STEWARD_TOOL_OUTPUT_LIMIT)" in str(first)


async def test_a_guest_has_a_ceiling_of_goals_and_memories_commands_cannot_pass(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R177: commands cost no tokens, so a guest past their allowance added 1,000 goals (each
    add slower than the last) and 300 memories of 4 KB in minutes."""
    from memory.people import Identity

    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        guest = Identity("test", "friend")
        await h.steward.stores.people.admit(guest, "Friend")
        said = await h.say("\n".join(f"/goal add goal {n}" for n in range(10)), sender=guest)
        for n in range(10, 50):
            await h.say(f"/goal add goal {n}", sender=guest)
        refused = await h.say("/goal add one more", sender=guest)
        assert "50 active goals, the most I keep" in refused
        await h.say("/goal done 1", sender=guest)  # R178: done, add, reopen went past it
        await h.say("/goal add goal 50", sender=guest)
        assert "50 active goals" in await h.say("/goal reopen 1", sender=guest)
        assert "Added" in said or "#1" in said
        guest_id = (await h.steward.stores.people.resolve(guest)).id  # type: ignore[union-attr]
        await h.say("/remember the first note", sender=guest)
        h.edit_database(  # 999 more, as a flood of /remember would leave them
            "INSERT INTO memories (user_id, kind, text, source, trust, importance, created_at,"
            " chat_id) SELECT user_id, kind, text || ' ' || n.value, source, trust,"
            " importance, created_at, chat_id FROM memories,"
            " json_each('[" + ",".join(map(str, range(999))) + "]') AS n"
            f" WHERE user_id = {guest_id} AND kind = 'note'"
        )
        refused = await h.say("/remember one more", sender=guest)
        assert "memories, the most I keep" in refused
        assert "Remembered" in await h.say("/remember mine", sender=OWNER)


async def test_a_tool_that_pages_its_own_output_is_not_cut_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R178: the cut at STEWARD_TOOL_OUTPUT_LIMIT took read_file's 200,000 characters down to
    20,000 (no offset to read on with), and mail_read's own "read on from offset=N" note."""
    fake_model.reply_tool_use("read_file", {"path": "notes.md"})
    fake_model.reply_text("Read it.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        notes = h.settings.workspace / "notes.md"
        notes.parent.mkdir(parents=True, exist_ok=True)
        notes.write_text("".join(f"line {n:05d} {'x' * 120}\n" for n in range(400)) + "THE END\n")
        await h.say("read my notes")
    [result] = fake_model.requests[-1].tool_results
    assert "THE END" in str(result["content"])
