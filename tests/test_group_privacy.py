"""What the owner told Steward in private stays out of a group.

In a group everyone reads the reply. Recall brought the owner's private memories into the
owner's turns there (the most important ones unasked), so Steward could repeat them to the
group, or be led to by a member's message. Now recall, `memory_search` and `/memory` in a group
or a channel draw only on what was said or kept in that chat; in private nothing changes.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness import OWNER
from trust_world import instruction, trust_world

from agent.types import Address, ChatKind, IncomingMessage

PIN = "the bank PIN is 4711"
GROUP = "g1"


async def _in_group(w, text: str) -> str:  # type: ignore[no-untyped-def]
    await w.h.router.dispatch(
        IncomingMessage(
            sender=OWNER, address=Address("test", GROUP), text=text, chat_kind=ChatKind.GROUP
        )
    )
    replies = w.h.channel.texts(GROUP)
    return replies[-1] if replies else ""


async def test_private_memories_stay_out_of_a_group(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        assert "Remembered" in await w.h.say(f"/remember Important: {PIN}")
        assert "Remembered" in await _in_group(w, "/remember The lake trip is on Saturday")
        [pin] = [m for m in await w.h.memories() if "4711" in m.text]

        # a turn in the group: nothing of the private memory in what the model is sent
        before = len(w.model.requests)
        await _in_group(w, "what is my bank PIN? and when is the lake trip?")
        sent = " ".join(str(r.messages) + r.system_text for r in w.model.requests[before:])
        assert "4711" not in sent
        assert "Saturday" in sent  # what was kept in the group is recalled there

        # the memory tool, led there by an instruction: only the group's own
        before = len(w.model.requests)
        await _in_group(w, instruction("memory_search", {"query": "bank PIN lake trip"}))
        results = str([r.tool_results for r in w.model.requests[before:]])
        assert "4711" not in results and "only what was said or kept in this chat" in results

        # the commands answered in the group
        assert "private chat" in await _in_group(w, "/memory")
        assert "private chat" in await _in_group(w, f"/memory show {pin.id}")
        found = await _in_group(w, "/memory search bank PIN lake")
        assert "4711" not in found and "Saturday" in found
        assert not any("4711" in t for t in w.h.channel.texts(GROUP))

        # in private, everything as before
        assert "4711" in await w.h.say("/memory search bank PIN")
        assert "4711" in await w.h.say(f"/memory show {pin.id}")
        before = len(w.model.requests)
        await w.h.say("what is my bank PIN?")
        assert "4711" in " ".join(str(r.messages) for r in w.model.requests[before:])


async def test_status_and_usage_are_the_owners(tmp_path: Path) -> None:
    """Another allowed person learns Steward is up, not the deployment's paths, counts,
    mailbox or spending."""
    from memory.people import Identity

    friend = Identity("test", "priya")
    async with trust_world(tmp_path) as w:
        await w.h.steward.stores.people.admit(friend, "Priya")
        status = await w.h.say("/status", sender=friend, chat="priya-dm")
        assert status.startswith("Up ") and "for the owner" in status
        assert str(w.data_dir) not in status and "Model:" not in status
        assert "for the owner" in await w.h.say("/usage", sender=friend, chat="priya-dm")
        owners = await w.h.say("/status")
        assert "Model:" in owners and str(w.data_dir.name) in owners
        assert "Today" in await w.h.say("/usage")


async def test_an_import_never_makes_a_group_private(tmp_path: Path) -> None:
    """An export names a memory's chat, not whether it is a group. A group first met through an
    import was made private for good: its recall was no longer kept to it, and a tainted turn
    there could read the owner's files into the group. It now waits, of unknown kind (counted
    as not private), until the channel says what it is."""
    from agent.memory_portability import MemoryPortability
    from agent.recall import group_scope
    from memory.longterm import LongTermMemory

    record = {
        "id": 1,
        "text": "team standup moved to 10:00",
        "kind": "note",
        "source": "owner_said",
        "trust": "trusted",
        "importance": 0.5,
        "created_at": "2025-01-01T10:00:00+00:00",
        "user": {"id": 1, "name": "", "owner": True, "identities": ["test:owner"]},
        "chat": {"channel": "test", "platform_chat_id": GROUP},
    }
    async with trust_world(tmp_path) as w:
        steward = w.h.steward
        people = steward.stores.people
        store = LongTermMemory.from_stores(steward.stores, steward.clock)
        report = await MemoryPortability(store, people).import_records([record])
        assert report.imported == 1, report
        imported = await people.chat("test", GROUP, "unknown")
        assert imported.kind == "unknown" and group_scope(imported) == imported.id
        (w.workspace / "private.md").write_text("OWNER-SECRET-4711")
        await _in_group(w, "morning all")  # the owner writes there: the channel says "group"
        assert (await people.chat("test", GROUP)).kind == "group"
        assert not await people.is_owner_chat("test", GROUP)
        # a private chat imported the same way becomes private once the channel says so
        await people.chat("test", "dm-9", "unknown")
        assert (await people.chat("test", "dm-9", "private")).kind == "private"
        assert (await people.chat("test", "dm-9", "group")).kind == "private"  # then fixed


async def test_the_owners_goals_and_reminders_stay_out_of_a_group(tmp_path: Path) -> None:
    """A member's message asks for the owner's goals and reminders; the owner's next turn in
    the group holds it. Neither list reaches the group, nor do the goals ride along."""
    from memory.people import Identity

    member = Identity("test", "mallory")
    async with trust_world(tmp_path) as w:
        steward = w.h.steward
        owner = await steward.stores.people.owner()
        assert owner is not None
        await steward.stores.goals.add(owner.id, "call the divorce lawyer")
        await w.h.say(
            instruction("reminder_add", {"when": "in 2 hours", "text": "pay the PRIVATE bill"})
        )
        await w.h.say(instruction("schedule_list", {}), chat="c9")
        assert "PRIVATE bill" in str(w.model.requests[-1].tool_results)  # it is there
        await steward.stores.people.admit(member, "Mallory")
        await w.h.router.dispatch(
            IncomingMessage(
                sender=member,
                address=Address("test", GROUP),
                text="fyi " + instruction("goal_list", {}) + " " + instruction("schedule_list", {}),
                chat_kind=ChatKind.GROUP,
            )
        )
        before = len(w.model.requests)
        await _in_group(w, "morning all")
        sent = " ".join(str(r.messages) + r.system_text for r in w.model.requests[before:])
        assert "divorce" not in sent and "PRIVATE bill" not in sent
        assert not any("divorce" in t or "PRIVATE" in t for t in w.h.channel.texts(GROUP))
        # in private, both as before
        before = len(w.model.requests)
        await w.h.say("hello")
        assert "divorce" in " ".join(str(r.messages) for r in w.model.requests[before:])


async def test_lists_typed_in_a_group_answer_in_private_only(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        owner = await w.h.steward.stores.people.owner()
        assert owner is not None
        await w.h.steward.stores.goals.add(owner.id, "call the divorce lawyer")
        await w.h.say("/remind every day 9:00 pay the PRIVATE bill")
        lists = ("/goal", "/goal list all", "/goal show 2", "/remind list", "/briefing feeds")
        for command in (*lists, "/memory"):
            said = await _in_group(w, command)
            assert "private chat" in said, (command, said)
        assert not any("divorce" in t or "PRIVATE" in t for t in w.h.channel.texts(GROUP))
        assert "divorce" in await w.h.say("/goal list")
        assert "divorce" in await w.h.say("/goal show 2")
        listed = await w.h.say("/remind list")
        assert "PRIVATE" in listed
        # closing one in the group names it by number only
        [reminder] = re.findall(r"#(\d+)", listed)
        assert await _in_group(w, "/goal done 2") == "Goal #2 is done. Check-ins stopped."
        assert await _in_group(w, f"/remind cancel {reminder}") == f"Cancelled #{reminder}."
        assert not any("divorce" in t or "PRIVATE" in t for t in w.h.channel.texts(GROUP))


async def test_a_task_posting_to_a_group_carries_no_goals(tmp_path: Path) -> None:
    """Not only chat turns: a task the owner set in a group runs there, and its reply is read
    by the group too."""
    from datetime import UTC, datetime, timedelta

    from memory.clock import FrozenClock

    clock = FrozenClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        owner = await w.h.steward.stores.people.owner()
        assert owner is not None
        await w.h.steward.stores.goals.add(owner.id, "call the divorce lawyer")
        await _in_group(w, instruction("task_add", {"when": "in 1 minute", "instruction": "hi"}))
        assert await w.h.steward.stores.schedules.count_active() == 1
        scheduler = w.h.steward.scheduler
        assert scheduler is not None
        before = len(w.model.requests)
        clock.advance(timedelta(minutes=2))
        await scheduler.run_due()
        sent = [str(r.messages) + r.system_text for r in w.model.requests[before:]]
        assert sent and not any("divorce" in t for t in sent)


async def test_closing_things_in_a_group_names_them_by_number_only(tmp_path: Path) -> None:
    """Forgetting a memory, removing a feed or a mail watch, or a /remember that replaces one:
    in a group the answer gives the number, never what was kept in private."""
    async with trust_world(tmp_path) as w:
        stores = w.h.steward.stores
        owner = await stores.people.owner()
        assert owner is not None
        await w.h.say("/remember My bank PIN is 4821")
        [pin] = [m for m in await w.h.memories() if "4821" in m.text]
        await w.h.say("/briefing topics oncology trials")
        await w.h.say("/briefing feeds add https://example.org/private-health-forum.rss")
        [feed] = await stores.feeds.list(owner.id)
        rule, _ = await stores.mail.add_rule(
            owner.id, "from", "lawyer@divorce.example", chat_id=None, destination=None
        )
        assert await _in_group(w, f"/memory forget {pin.id}") == f"Forgotten #{pin.id}."
        assert "private chat" in await _in_group(w, "/briefing topics")
        assert "private chat" in await _in_group(w, "/briefing")
        assert await _in_group(w, f"/briefing feeds remove {feed.id}") == (
            f"Removed feed #{feed.id}."
        )
        assert await _in_group(w, f"/mail watch remove {rule.id}") == (
            f"Stopped watching #{rule.id}."
        )
        said = "\n".join(w.h.channel.texts(GROUP))
        for private in ("4821", "oncology", "private-health-forum", "divorce.example"):
            assert private not in said, (private, said)
        # in private, each still says what it was
        assert "oncology" in await w.h.say("/briefing topics")


async def test_a_goal_check_in_set_in_a_group_goes_to_the_private_chat(tmp_path: Path) -> None:
    """Set in a group, the check-in was posted there, with the goal's whole progress log,
    while `/goal show` in the same group was refused as private."""
    async with trust_world(tmp_path) as w:
        said = await _in_group(w, "/goal add pay off the debt")
        [goal_id] = re.findall(r"#(\d+)", said)[:1]
        refused = await _in_group(w, f"/goal every {goal_id} daily")
        assert "private chat" in refused and "I'll check in" not in refused
        assert await w.h.steward.scheduler.checkin_for(await _owner(w), int(goal_id)) is None
        await w.h.say("hello")  # now there is a private chat to post in
        said = await _in_group(w, f"/goal every {goal_id} daily")
        assert "in our private chat" in said, said
        checkin = await w.h.steward.scheduler.checkin_for(await _owner(w), int(goal_id))
        assert checkin is not None and checkin.destination is not None
        assert checkin.destination["chat_id"] == "c1"


async def test_a_check_in_the_model_sets_in_a_group_goes_to_the_private_chat(
    tmp_path: Path,
) -> None:
    """The model's goal_add with a cadence, in a group, set the check-in there: each one
    carried the goal's progress log (notes the owner then wrote in private) into the group."""
    add = {"title": "get healthy", "cadence": "daily 9:00"}
    async with trust_world(tmp_path) as w:
        await _in_group(w, instruction("goal_add", add))
        owner = await _owner(w)
        healthy = [
            g for g in await w.h.steward.stores.goals.active(owner.id) if "healthy" in g.title
        ]
        assert await w.h.steward.scheduler.checkin_for(owner, healthy[0].id) is None
        said = str(w.model.requests[-1].tool_results)
        assert "check-ins not set: Check-ins share your goal's notes" in said, said
        await w.h.say("hello")  # now there is a private chat to post in
        await _in_group(w, instruction("goal_add", {**add, "title": "get fit"}))
        second = (await w.h.steward.stores.goals.active(owner.id))[-1]
        assert second.title == "get fit" and second.id != healthy[0].id
        assert "in the user's private chat" in str(w.model.requests[-1].tool_results)
        checkin = await w.h.steward.scheduler.checkin_for(owner, second.id)
        assert checkin is not None and checkin.destination is not None
        assert checkin.destination["chat_id"] == "c1"


async def test_a_save_in_a_group_names_what_it_replaces_by_number_only(tmp_path: Path) -> None:
    """memory_save in a group retired the owner's private memory of the same subject, and its
    result handed the model, writing for the group, that memory's words."""
    private = {"text": "Home address is 12 Elm Street, flat 4", "subject": "home address"}
    async with trust_world(tmp_path) as w:
        await w.h.say(instruction("memory_save", private))
        moving = {"text": "Moving house in May", "subject": "home address"}
        await _in_group(w, instruction("memory_save", moving))
        said = str(w.model.requests[-1].tool_results)
        assert "Saved memory" in said and "It replaces #" in said, said
        assert "Elm Street" not in said, said
        await w.h.say(instruction("memory_save", private))  # in private it is named
        assert "It replaces #" in str(w.model.requests[-1].tool_results)
        assert "Moving house in May" in str(w.model.requests[-1].tool_results)


async def test_memory_show_in_a_group_names_a_private_memory_it_met_by_number_only(
    tmp_path: Path,
) -> None:
    """/memory show of a group's memory quoted the private one it replaced ("Replaces: #2
    Home address is 12 Elm Street"), and of a group memory a private one replaced, the private
    one's words, to everyone in the group (R184)."""
    async with trust_world(tmp_path) as w:
        private = {"text": "Home address is 12 Elm Street, flat 4", "subject": "home address"}
        await w.h.say(instruction("memory_save", private))
        moving = {"text": "Moving house in May", "subject": "home address"}
        await _in_group(w, instruction("memory_save", moving))
        acme = {"text": "Employer is Acme Corp", "subject": "employer"}
        await _in_group(w, instruction("memory_save", acme))
        zeta = {"text": "Employer is Zeta Labs (confidential)", "subject": "employer"}
        await w.h.say(instruction("memory_save", zeta))
        kept = {m.text: m for m in await w.h.memories()}
        home, may = kept[private["text"]], kept[moving["text"]]
        old_job, new_job = kept[acme["text"]], kept[zeta["text"]]
        assert may.chat_id != home.chat_id and home.superseded_by == may.id

        shown = await _in_group(w, f"/memory show {may.id}")
        assert f"Replaces: #{home.id} (saved elsewhere" in shown, shown
        shown = await _in_group(w, f"/memory show {old_job.id}")
        assert f"by #{new_job.id} (saved elsewhere" in shown, shown
        posted = "\n".join(w.h.channel.texts(GROUP))
        assert "Elm Street" not in posted and "Zeta" not in posted, posted
        # in private, each is named with its words
        assert f"Replaces: #{home.id} Home address is 12 Elm Street" in await w.h.say(
            f"/memory show {may.id}"
        )


async def _owner(w):  # type: ignore[no-untyped-def]
    owner = await w.h.steward.stores.people.owner()
    assert owner is not None
    return owner


async def test_the_owners_status_audit_and_mcp_stay_out_of_a_group(tmp_path: Path) -> None:
    """The owner's /status in a group showed the data path and counts, /audit who did what,
    /mcp the configuration's path: everyone there read them."""
    async with trust_world(tmp_path) as w:
        data = str(w.h.settings.data_dir.absolute())
        for command in ("/status", "/audit", "/mcp"):
            said = await _in_group(w, command)
            assert "private chat" in said and data not in said, (command, said)
        assert data in await w.h.say("/status")  # in private, as before
        assert "Chain verified" in await w.h.say("/audit")


async def test_another_persons_memory_status_does_not_name_the_deployments_setup(
    tmp_path: Path,
) -> None:
    """R239: /memory ended with "keyword search only — embeddings are disabled
    (STEWARD_EMBEDDER=none)" (or the embedder and Chroma's place) for a guest too, though
    /status hides the deployment from them."""
    from harness import running_steward

    from memory.people import Identity

    friend = Identity("test", "priya")
    async with running_steward(tmp_path, None, STEWARD_EMBEDDER="none") as h:
        await h.steward.stores.people.admit(friend, "Priya")
        theirs = (await h.say("/memory", sender=friend, chat="priya-dm")).splitlines()[-1]
        owners = (await h.say("/memory")).splitlines()[-1]
    assert theirs == "Memory: 0 memories; keyword search only", theirs
    assert owners.endswith("(STEWARD_EMBEDDER=none)"), owners
