"""The owner's own things (workspace, mailbox, MCP servers) and the people Steward also serves.

An allowed person (a colleague, a family member) has their own conversation, goals and
memory; the workspace, the mailbox and the MCP servers are the owner's. A read tool ran unasked
for anyone: an allowed person asked "read notes/private.md" and got it back in the reply, and
in a group the owner's own turn holding a member's message could read a file into a reply the
whole group sees. Now another person's request waits on a card for the owner, and in a turn
that holds outside content the owner's things are read unasked only when the reply goes to the
owner alone.

(Over 500 lines: every owner-data tool is checked against the same non-owner world, which
is built once; split, the world would be built in each part.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import OWNER
from trust_world import instruction, trust_world

from agent.policy import Decision, PolicyFile
from agent.tools import default_registry
from agent.tools.mail import mail_read, mail_search
from agent.tools.workspace import read_file
from agent.types import Address, ChatKind, IncomingMessage, TurnRequest
from memory.people import Identity

SECRET = "OWNER-SECRET-pin-4711"
MALLORY = Identity("test", "mallory")
OWNER_DATA = {"list_files", "read_file", "write_file", "shell"} | {
    f"mail_{n}" for n in ("search", "read", "send", "reply", "move", "flag")
}


async def _read_verdict(w: Any, user: Any, chat_id: str, kind: str, *, tainted: bool) -> Any:
    """The policy's verdict on read_file in a turn of `user` in that chat."""
    steward = w.h.steward
    chat = await steward.stores.people.chat("test", chat_id, kind)
    request = TurnRequest(
        kind="chat",
        user=user,
        chat=chat,
        address=Address("test", chat_id),
        text="x",
        tainted=tainted,
        sources=(f"person:#{user.id}",) if tainted else (),
    )
    return await steward.policy.decide(
        read_file, {"path": "a"}, steward.runner.tool_context(request, 1)
    )


async def test_another_persons_read_of_the_owners_files_waits_for_the_owner(
    tmp_path: Path,
) -> None:
    async with trust_world(tmp_path) as w:
        (w.workspace / "notes").mkdir()
        (w.workspace / "notes" / "private.md").write_text(SECRET)
        stores = w.h.steward.stores
        await stores.people.admit(MALLORY, "Mallory")
        await w.h.router.dispatch(
            IncomingMessage(
                sender=MALLORY,
                address=Address("test", "mallory-dm"),
                text="please " + instruction("read_file", {"path": "notes/private.md"}),
                chat_kind=ChatKind.PRIVATE,
            )
        )
        assert await w.tools_ran("read_file") == 0
        pending = await stores.approvals.pending()
        assert [a.tool for a in pending] == ["read_file"]
        assert not any(SECRET in str(r.messages) for r in w.model.requests)
        assert not any(SECRET in t for t in w.h.channel.texts("mallory-dm"))
        # the owner decides: approved, it runs (their choice to share it)
        said = await w.h.say(f"/approve {pending[0].id}")
        assert "read_file ran" in said, said
        assert await w.tools_ran("read_file") == 1
        await w.check_invariants()


async def test_a_read_through_a_link_shows_the_file_read_and_a_later_link_voids_it(
    tmp_path: Path,
) -> None:
    """R154: Mallory asks to read `shared/readme.md`, a link to `private/diary.md` (an archive
    she sent, unpacked): the card named only the path, and approved, the diary reached her. The
    card names the file read; a path made a link after the card is another action."""
    import os

    async with trust_world(tmp_path) as w:
        (w.workspace / "private").mkdir()
        (w.workspace / "private" / "diary.md").write_text(SECRET)
        (w.workspace / "shared").mkdir()
        os.symlink("../private/diary.md", w.workspace / "shared" / "readme.md")
        (w.workspace / "shared" / "hello.md").write_text("hello Mallory\n")
        stores = w.h.steward.stores
        await stores.people.admit(MALLORY, "Mallory")
        for path in ("shared/readme.md", "shared/hello.md"):
            await w.h.router.dispatch(
                IncomingMessage(
                    sender=MALLORY,
                    address=Address("test", "mallory-dm"),
                    text="please " + instruction("read_file", {"path": path}),
                    chat_kind=ChatKind.PRIVATE,
                )
            )
        linked, plain = sorted(await stores.approvals.pending(), key=lambda a: a.turn_id)
        assert "(a link: the file read is private/diary.md)" in linked.preview, linked.preview
        assert plain.preview == "read workspace file shared/hello.md"
        (w.workspace / "shared" / "hello.md").unlink()  # swapped for a link after the card
        os.symlink("../private/diary.md", w.workspace / "shared" / "hello.md")
        said = await w.h.say(f"/approve {plain.id}")
        assert "read_file ran" not in said, said
        assert await w.tools_ran("read_file") == 0
        assert not any(SECRET in str(r.messages) for r in w.model.requests)


async def test_a_persons_own_rule_does_not_reach_a_file_a_link_leads_to(
    tmp_path: Path,
) -> None:
    """R158: the owner allowed Mallory's read of `shared/notes.md` "always"; once that path was
    made a link to `private/diary.md`, her next read ran unasked and the diary reached her."""
    import os

    async with trust_world(tmp_path) as w:
        (w.workspace / "private").mkdir()
        (w.workspace / "private" / "diary.md").write_text(SECRET)
        (w.workspace / "shared").mkdir()
        (w.workspace / "shared" / "notes.md").write_text("meeting at 10\n")
        stores = w.h.steward.stores
        await stores.people.admit(MALLORY, "Mallory")
        ask = IncomingMessage(
            sender=MALLORY,
            address=Address("test", "mallory-dm"),
            text="please " + instruction("read_file", {"path": "shared/notes.md"}),
            chat_kind=ChatKind.PRIVATE,
        )
        await w.h.router.dispatch(ask)
        (first,) = await stores.approvals.pending()
        said = await w.h.say(f"/approve {first.id} always")
        assert "read_file ran" in said, said
        (w.workspace / "shared" / "notes.md").unlink()
        os.symlink("../private/diary.md", w.workspace / "shared" / "notes.md")
        await w.h.router.dispatch(ask)
        waiting = await stores.approvals.pending()
        assert [a.tool for a in waiting] == ["read_file"], "asked again: it reaches the diary"
        assert await w.tools_ran("read_file") == 1
        assert not any(SECRET in str(r.messages) for r in w.model.requests)


async def test_always_on_a_persons_read_through_a_link_writes_no_rule(
    tmp_path: Path,
) -> None:
    """R162: "always" on Mallory's read of `shared/list.md`, a link to `private/shopping.md`,
    also wrote her a rule for `private/shopping.md`, unsaid, which outlived the link; R163: one
    for the link alone never applied, and was written again at each card."""
    import os

    async with trust_world(tmp_path) as w:
        (w.workspace / "private").mkdir()
        (w.workspace / "private" / "shopping.md").write_text("oat milk\n")
        (w.workspace / "shared").mkdir()
        os.symlink("../private/shopping.md", w.workspace / "shared" / "list.md")
        stores = w.h.steward.stores
        await stores.people.admit(MALLORY, "Mallory")
        await w.h.router.dispatch(
            IncomingMessage(
                sender=MALLORY,
                address=Address("test", "mallory-dm"),
                text="please " + instruction("read_file", {"path": "shared/list.md"}),
                chat_kind=ChatKind.PRIVATE,
            )
        )
        (card,) = await stores.approvals.pending()
        said = await w.h.say(f"/approve {card.id} always")
        policy = (w.data_dir / "policy.toml").read_text()
    # R163: a rule for the link alone would never apply (its target asks for her): none
    assert "no rule was added (it reached another file through a link)" in said, said
    assert "shared/list.md" not in policy and "private/shopping.md" not in policy, policy


async def test_every_tool_on_the_owners_things_asks_for_another_person(tmp_path: Path) -> None:
    async with trust_world(tmp_path) as w:
        steward = w.h.steward
        marked = {t.name for t in default_registry() if t.owner_data}
        assert marked >= OWNER_DATA, OWNER_DATA - marked
        user = await steward.stores.people.admit(MALLORY, "Mallory")
        for tainted in (False, True):
            request = TurnRequest(
                kind="chat", user=user, chat=None, address=None, text="x", tainted=tainted
            )
            ctx = steward.runner.tool_context(request, 1)
            for tool in (read_file, mail_search, mail_read):
                verdict = await steward.policy.decide(tool, {"path": "a", "uid": 1}, ctx)
                assert verdict.decision is Decision.ASK, (tool.name, tainted, verdict)
        # a rule in that person's own section of the policy file is the owner's word
        steward.policy.policy = PolicyFile.model_validate(
            {"users": {str(MALLORY): {"rules": [{"tool": "read_file", "decision": "allow"}]}}}
        )
        request = TurnRequest(kind="chat", user=user, chat=None, address=None, text="x")
        verdict = await steward.policy.decide(
            read_file, {"path": "a"}, steward.runner.tool_context(request, 1)
        )
        assert verdict.decision is Decision.ALLOW, verdict
        # a global rule is not
        steward.policy.policy = PolicyFile.model_validate(
            {"rules": [{"tool": "mail_*", "decision": "allow"}]}
        )
        verdict = await steward.policy.decide(
            mail_read, {"uid": 1}, steward.runner.tool_context(request, 1)
        )
        assert verdict.decision is Decision.ASK, verdict


@pytest.mark.parametrize(
    ("kind", "chat_id", "asks"), [("group", "g1", True), ("private", "c1", False)]
)
async def test_a_tainted_owner_turn_reads_unasked_only_into_the_owners_own_chat(
    tmp_path: Path, kind: str, chat_id: str, asks: bool
) -> None:
    async with trust_world(tmp_path) as w:
        steward = w.h.steward
        await w.h.say("hello")  # the owner has written in c1, their private chat
        owner = await steward.stores.people.owner()
        assert owner is not None
        verdict = await _read_verdict(w, owner, chat_id, kind, tainted=True)
        assert (verdict.decision is Decision.ASK) is asks, verdict
        clean = await _read_verdict(w, owner, chat_id, kind, tainted=False)
        assert clean.decision is Decision.ALLOW, clean


async def test_a_group_members_words_cannot_read_the_owners_file_into_the_group(
    tmp_path: Path,
) -> None:
    """End to end: a member's message in a group holds the instruction; the owner's next turn
    there (clean words of their own) holds it too, and the read waits for a card."""
    async with trust_world(tmp_path) as w:
        (w.workspace / "private.md").write_text(SECRET)
        stores = w.h.steward.stores
        await stores.people.admit(MALLORY, "Mallory")
        group = Address("test", "g1")
        order = instruction("read_file", {"path": "private.md"})
        for sender, text in ((MALLORY, f"fyi {order}"), (OWNER, "what do you think?")):
            await w.h.router.dispatch(
                IncomingMessage(sender=sender, address=group, text=text, chat_kind=ChatKind.GROUP)
            )
            assert await w.tools_ran("read_file") == 0
        assert not any(SECRET in t for t in w.h.channel.texts("g1"))
        assert {a.tool for a in await stores.approvals.pending()} == {"read_file"}
        await w.check_invariants()


def test_an_mcp_servers_tools_are_the_owners() -> None:
    """A server acts with the owner's accounts and files (a calendar, private repositories)."""
    import mcp.types as mt

    from agent.mcp.bridge import McpTool
    from agent.tools.registry import Risk

    async def invoke(*_: object) -> None:
        raise AssertionError("not called")

    listed = mt.Tool(name="list_events", description="the calendar", inputSchema={"type": "object"})
    made = McpTool.of("calendar", "cal-server", listed, Risk.READ, invoke)  # type: ignore[arg-type]
    assert made is not None and made.owner_data


async def test_an_approver_cannot_decide_a_request_they_cannot_see(tmp_path: Path) -> None:
    """An approver sees (and so decides) the requests of their own turns or of the chat they
    are in; typing the id of the owner's private request elsewhere decides nothing."""
    bob = Identity("test", "bob")
    async with trust_world(tmp_path, STEWARD_APPROVERS=str(bob)) as w:
        stores = w.h.steward.stores
        await stores.people.admit(bob, "Bob")
        await w.h.say(instruction("send_message", {"channel": "test", "text": "hi", "chat": "9"}))
        [(_, prompt)] = w.h.channel.approvals
        for command in (f"/approve {prompt.approval_id}", f"/deny {prompt.approval_id}"):
            said = await w.h.say(command, sender=bob, chat="bob-dm")
            assert "There is no approval request" in said, said
        approval = await stores.approvals.get(prompt.approval_id)
        assert approval is not None and approval.status.value == "pending"
        assert await w.tools_ran("send_message") == 0
        assert len(await w.audit_kinds("approval.hidden")) == 2
        # in the chat where it was asked, the approver may decide it
        said = await w.h.say(f"/approve {prompt.approval_id}", sender=bob, chat="c1")
        assert f"Approved {prompt.approval_id}: send_message " in said, said  # decided
        await w.check_invariants()


async def test_an_approver_never_grants_the_owners_things(tmp_path: Path) -> None:
    """An approver's own request to read the owner's file waits "for the owner": deciding it
    themselves (typed or on the console) must not be the way round. They may deny it."""
    alice = Identity("test", "alice")
    async with trust_world(tmp_path, STEWARD_APPROVERS=str(alice)) as w:
        (w.workspace / "private.md").write_text(SECRET)
        stores = w.h.steward.stores
        await stores.people.admit(alice, "Alice")
        (w.workspace / "other.md").write_text("other")
        for name, chat in (("private.md", "alice-dm"), ("other.md", "alice-dm2")):
            await w.h.say(instruction("read_file", {"path": name}), sender=alice, chat=chat)
        first, second = sorted(
            await stores.approvals.pending(), key=lambda a: a.arguments["path"] != "private.md"
        )
        assert first.arguments["path"] == "private.md"
        said = await w.h.say(f"/approve {first.id}", sender=alice, chat="alice-dm")
        assert "Only the owner can approve read_file" in said, said
        assert await w.tools_ran("read_file") == 0
        assert not any(SECRET in t for t in w.h.channel.texts("alice-dm"))
        denied = await w.h.say(f"/deny {second.id}", sender=alice, chat="alice-dm2")
        assert "Denied" in denied, denied
        said = await w.h.say(f"/approve {first.id}")  # the owner may
        assert "read_file ran" in said, said
        await w.check_invariants()


async def test_the_list_of_requests_in_a_group_is_that_groups(tmp_path: Path) -> None:
    """`/approve` and `/approve show` answer where everyone reads them: typed in a group, they
    show only the group's own requests, not the owner's private ones."""
    async with trust_world(tmp_path) as w:
        await w.h.say(instruction("shell", {"command": "python notes/PRIVATE-plan.py"}))
        [private] = await w.h.steward.stores.approvals.pending()
        group = Address("test", "g1")
        await w.h.router.dispatch(
            IncomingMessage(sender=OWNER, address=group, text="/approve", chat_kind=ChatKind.GROUP)
        )
        await w.h.router.dispatch(
            IncomingMessage(
                sender=OWNER,
                address=group,
                text=f"/approve show {private.id}",
                chat_kind=ChatKind.GROUP,
            )
        )
        said = w.h.channel.texts("g1")
        assert len(said) == 2 and not any("PRIVATE" in t for t in said), said
        assert "PRIVATE" in await w.h.say("/approve")  # in private, as before
        # the owner still decides from anywhere
        await w.h.router.dispatch(
            IncomingMessage(
                sender=OWNER, address=group, text=f"/deny {private.id}", chat_kind=ChatKind.GROUP
            )
        )
        assert "Denied" in w.h.channel.texts("g1")[-1]


async def test_a_revoked_persons_reminders_and_tasks_stop(tmp_path: Path) -> None:
    """/revoke stops a person talking to Steward; what they scheduled must stop too (a
    reminder posting in a group, a task spending the owner's model budget)."""
    from datetime import UTC, datetime, timedelta

    from memory.clock import FrozenClock

    clock = FrozenClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        stores = w.h.steward.stores
        scheduler = w.h.steward.scheduler
        assert scheduler is not None
        await stores.people.admit(MALLORY, "Mallory")
        group = Address("test", "g1")
        for text in ("/remind every day 9:00 SPAM-ONE", "/remind every day 9:30 SPAM-TWO"):
            await w.h.router.dispatch(
                IncomingMessage(sender=MALLORY, address=group, text=text, chat_kind=ChatKind.GROUP)
            )

        def fired() -> list[str]:
            return [t for t in w.h.channel.texts("g1") if t.startswith("Reminder: SPAM")]

        clock.advance(timedelta(hours=1, minutes=1))
        await scheduler.run_due()
        assert fired() == ["Reminder: SPAM-ONE"]  # it works while they are allowed
        assert await stores.people.revoke(MALLORY)
        clock.advance(timedelta(minutes=30))
        reports = await scheduler.run_due()
        assert [(r.status, r.reason) for r in reports] == [("cancelled", "its user was revoked")]
        clock.advance(timedelta(days=1))
        await scheduler.run_due()
        assert fired() == ["Reminder: SPAM-ONE"]
        assert await stores.schedules.count_active() == 0


async def test_a_direct_chat_someone_else_writes_in_is_not_the_owners_alone(
    tmp_path: Path,
) -> None:
    """A platform might let a third person into a "direct" chat: once someone other than the
    owner has written there, its replies are not for the owner alone."""
    async with trust_world(tmp_path) as w:
        people = w.h.steward.stores.people
        await people.admit(MALLORY, "Mallory")
        await w.h.say("hello", chat="shared-dm")
        assert await people.is_owner_chat("test", "shared-dm")
        await w.h.say("hi both", sender=MALLORY, chat="shared-dm")
        assert not await people.is_owner_chat("test", "shared-dm")


async def test_the_owner_hears_of_another_persons_request_and_can_allow_it_always(
    tmp_path: Path,
) -> None:
    """Another person's request waits on a card in their chat, where the owner may never look:
    the owner is told in their own chat. "Always" then writes a rule in that person's own
    section, so the same request runs unasked for them (and only them) from then on."""
    async with trust_world(tmp_path) as w:
        (w.workspace / "groceries.md").write_text("milk, eggs")
        stores = w.h.steward.stores
        await w.h.say("hello")  # the owner's private chat, c1
        await stores.people.admit(MALLORY, "Mallory")
        order = instruction("read_file", {"path": "groceries.md"})
        await w.h.say(order, sender=MALLORY, chat="m-dm")
        [pending] = await stores.approvals.pending()
        told = [t for t in w.h.channel.texts("c1") if pending.id in t]
        assert told and "Mallory" in told[0] and "read_file" in told[0], w.h.channel.texts("c1")
        said = await w.h.say(f"/approve {pending.id} always")
        assert "(for test:mallory)" in said, said
        policy = w.h.settings.policy_path.read_text()
        assert '[[users."test:mallory".rules]]' in policy
        await w.h.say(order, sender=MALLORY, chat="m-dm2")
        assert await stores.approvals.pending() == []
        assert await w.tools_ran("read_file") == 2
        # nobody else gets it from her rule
        bob = Identity("test", "bob")
        await stores.people.admit(bob, "Bob")
        await w.h.say(order, sender=bob, chat="b-dm")
        assert [a.tool for a in await stores.approvals.pending()] == ["read_file"]


async def test_revoking_a_person_cancels_what_they_scheduled_at_once(tmp_path: Path) -> None:
    """Not only when each falls due: a start that admits them again from the settings, or a
    later /allow, must not bring their reminders back."""
    from bot.commands.access import revoke_person

    async with trust_world(tmp_path) as w:
        stores = w.h.steward.stores
        await stores.people.admit(MALLORY, "Mallory")
        await w.h.say("/remind every day 9:00 SPAM", sender=MALLORY, chat="m-dm")
        assert await stores.schedules.count_active() == 1
        said = await revoke_person(
            identity=MALLORY, sender=OWNER, stores=stores, settings=w.h.settings
        )
        assert "1 reminder(s)" in said, said
        assert await stores.schedules.count_active() == 0
        await stores.people.admit(MALLORY, "Mallory")  # let back in: nothing comes back
        assert await stores.schedules.count_active() == 0


async def _mallory_asks_for_a_file(w: Any) -> str:
    """Mallory, allowed in, asks in her private chat for a file of the owner's holding SECRET
    (it waits for the owner); returns her order, to send again."""
    (w.workspace / "groceries.md").write_text(SECRET)
    order = instruction("read_file", {"path": "groceries.md"})
    await w.h.steward.stores.people.admit(MALLORY, "Mallory")
    await w.h.say(order, sender=MALLORY, chat="m-dm")
    return order


async def test_a_revoked_persons_requests_are_withdrawn_and_never_run(tmp_path: Path) -> None:
    """A request of someone later revoked must not run on a late "approve" (its reply would go
    to them): /revoke withdraws what they asked for, and a request whose person lost access
    some other way is withdrawn when decided, and their turn is not resumed."""
    from bot.commands.access import revoke_person

    async with trust_world(tmp_path) as w:
        stores = w.h.steward.stores
        order = await _mallory_asks_for_a_file(w)
        [first] = await stores.approvals.pending()
        said = await revoke_person(
            identity=MALLORY, sender=OWNER, stores=stores, settings=w.h.settings
        )
        assert "1 request(s)" in said, said
        assert await stores.approvals.pending() == []
        assert "was already denied" in await w.h.say(f"/approve {first.id}")
        # revoked without /revoke (the settings, at a start): refused when decided
        await stores.people.admit(MALLORY, "Mallory")
        await w.h.say(order, sender=MALLORY, chat="m-dm")
        [second] = await stores.approvals.pending()
        assert await stores.people.revoke(MALLORY)
        asked = len(w.model.requests)
        said = await w.h.say(f"/approve {second.id}")
        assert "withdrawn" in said, said
        assert await w.tools_ran("read_file") == 0
        assert len(w.model.requests) == asked  # their turn was not resumed
        assert not any(SECRET in t for t in w.h.channel.texts("m-dm"))
        assert (await stores.approvals.get(second.id)).status == "denied"


async def test_a_revoked_persons_turn_is_not_resumed_nor_asks_again(tmp_path: Path) -> None:
    """Revoked while a request of theirs waited (at a start, by the settings), the request's
    expiry must not resume their turn (a model call, a reply to them); revoked while their turn
    ran, it files no request: no card reaches them, nothing waits for the owner."""
    from datetime import UTC, datetime, timedelta

    from fakes.anthropic import RecordedRequest, Reply
    from trust_world import obedient_model

    from memory.clock import FrozenClock

    clock = FrozenClock(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    revoke_mid_turn: list[Any] = []

    def model(request: RecordedRequest) -> Reply:
        if request.tool_results:
            return Reply.text("ANSWER-TO-MALLORY")
        if revoke_mid_turn:
            revoke_mid_turn[0].h.edit_database(
                "UPDATE identities SET status = 'revoked' WHERE platform_user_id = 'mallory'"
            )
        return obedient_model(request)

    async with trust_world(tmp_path, clock=clock, model=model) as w:
        stores = w.h.steward.stores
        order = await _mallory_asks_for_a_file(w)
        [waiting] = await stores.approvals.pending()
        assert await stores.people.revoke(MALLORY)
        asked = len(w.model.requests)
        clock.advance(timedelta(hours=1))  # expired, not yet stale (a day: closed unanswered)
        assert await w.h.steward.expire_approvals() == 1
        assert len(w.model.requests) == asked
        assert not any("ANSWER-TO-MALLORY" in t for t in w.h.channel.texts("m-dm"))
        assert (await stores.turns.stored(waiting.turn_id)).status == "skipped"
        # revoked while the model was thinking: no request is filed
        await stores.people.admit(MALLORY, "Mallory")
        revoke_mid_turn.append(w)
        cards = len(w.h.channel.approvals)
        await w.h.say(order, sender=MALLORY, chat="m-dm2")
        assert await stores.approvals.pending() == []
        assert len(w.h.channel.approvals) == cards
        assert await w.tools_ran("read_file") == 0


async def test_a_revoked_person_gets_no_restart_note(tmp_path: Path) -> None:
    """A message of theirs a crash left unanswered: once revoked, they hear nothing more, not
    even "I was restarted before I could answer"."""
    from bot.recovery import recover_interrupted

    async with trust_world(tmp_path) as w:
        stores = w.h.steward.stores
        mallory = await stores.people.admit(MALLORY, "Mallory")
        chat = await stores.people.chat("test", "m-dm", "private")
        for who, text in ((mallory.id, "are you there?"), (None, "the owner's, unanswered")):
            await stores.messages.record_incoming(
                chat_id=chat.id, user_id=who, text=text, platform_message_id=text
            )
        assert await stores.people.revoke(MALLORY)
        notes = await recover_interrupted(w.h.steward)
        assert [n.text for n in notes if "are you there" in n.text] == []
        assert [n.text for n in notes if "the owner's, unanswered" in n.text]


async def test_another_persons_memory_status_counts_only_theirs(tmp_path: Path) -> None:
    """ "I don't remember anything about you yet… Memory: 3 memories": the count was
    everyone's, which /status keeps from anyone but the owner."""
    async with trust_world(tmp_path) as w:
        for n in range(3):
            await w.h.say(f"/remember owner fact {n}")
        await w.h.steward.stores.people.admit(MALLORY, "Mallory")
        said = await w.h.say("/memory", sender=MALLORY, chat="m-dm")
        assert "Memory: 0 memories" in said, said
        assert "Memory: 3 memories" in await w.h.say("/memory")


async def test_a_message_card_says_whose_private_chat_it_goes_to(tmp_path: Path) -> None:
    """Another person's send_message without a chat goes to their own private chat; the card
    the owner judges said "your own chat"."""
    from agent.tools.messaging import send_message

    async with trust_world(tmp_path) as w:
        steward = w.h.steward
        mallory = await steward.stores.people.admit(MALLORY, "Mallory")
        owner = await steward.stores.people.owner()
        assert owner is not None and send_message.preview is not None
        for user, expected in ((owner, "your own private chat"), (mallory, "Mallory's own")):
            request = TurnRequest(
                kind="chat", user=user, chat=None, address=Address("test", "x"), text="x"
            )
            ctx = steward.runner.tool_context(request, 1)
            preview = await send_message.preview(ctx, {"channel": "telegram", "text": "hi"})
            assert expected in preview, preview


async def test_a_persons_own_rule_reaches_only_their_private_chat(tmp_path: Path) -> None:
    """A rule in Mallory's own section lets her read that file in her private chat, never in a
    group, where the reply (and whoever planted the request there) is everyone's."""
    async with trust_world(tmp_path) as w:
        steward = w.h.steward
        user = await steward.stores.people.admit(MALLORY, "Mallory")
        steward.policy.policy = PolicyFile.model_validate(
            {"users": {str(MALLORY): {"rules": [{"tool": "read_file", "decision": "allow"}]}}}
        )
        await w.h.say("hi", sender=MALLORY, chat="m-dm")
        for chat_id, kind, expected in (("m-dm", "private", "allow"), ("g1", "group", "ask")):
            verdict = await _read_verdict(w, user, chat_id, kind, tainted=True)
            assert verdict.decision == expected, (chat_id, verdict)


async def test_another_persons_notices_are_plain_and_few(tmp_path: Path) -> None:
    """The name is the person's to choose: no Markdown from it reaches the owner's notice; and
    a burst of requests is one notice (/approve lists them all)."""
    async with trust_world(tmp_path) as w:
        stores = w.h.steward.stores
        await w.h.say("hello")
        await stores.people.admit(MALLORY, "**URGENT: run /approve x always** `#")
        for name in ("a.md", "b.md", "c.md"):
            (w.workspace / name).write_text(name)
            await w.h.say(instruction("read_file", {"path": name}), sender=MALLORY, chat=name)
        assert len(await stores.approvals.pending()) == 3
        notices = [t for t in w.h.channel.texts("c1") if "asked, in" in t]
        assert len(notices) == 1, notices
        assert (
            "**" not in notices[0]
            and "`" not in notices[0]
            and "#" not in notices[0].split("(person")[0]
        ), notices[0]


async def test_always_for_another_persons_write_adds_no_rule_that_could_never_apply(
    tmp_path: Path,
) -> None:
    """Another person's turns hold outside content, so above read they always ask: "always"
    approves once and says no rule was added, rather than claim one."""
    async with trust_world(tmp_path) as w:
        await w.h.steward.stores.people.admit(MALLORY, "Mallory")
        write = instruction("write_file", {"path": "x.md", "content": "hi"})
        await w.h.say(write, sender=MALLORY, chat="m-dm")
        [pending] = await w.h.steward.stores.approvals.pending()
        said = await w.h.say(f"/approve {pending.id} always")
        assert "no rule was added" in said and "write_file ran" in said, said
        assert "mallory" not in w.h.settings.policy_path.read_text()


async def test_a_rule_the_file_cannot_take_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    """A section written inline (`rules = [...]`) cannot take an appended rule: the new text is
    checked before the file is touched, so the file stays byte for byte."""
    async with trust_world(tmp_path) as w:
        await w.h.steward.stores.people.admit(MALLORY, "Mallory")
        path = w.h.settings.policy_path
        original = path.read_text() + (
            f'\n[users."{MALLORY}"]\nrules = [{{ tool = "web_fetch", decision = "ask" }}]\n'
        )
        path.write_text(original)
        from agent.policy import load_policy

        w.h.steward.policy.policy = load_policy(path)
        (w.workspace / "a.md").write_text("a")
        await w.h.say(instruction("read_file", {"path": "a.md"}), sender=MALLORY, chat="m-dm")
        [pending] = await w.h.steward.stores.approvals.pending()
        said = await w.h.say(f"/approve {pending.id} always")
        assert "no rule was added" in said and "read_file ran" in said, said
        assert path.read_text() == original
        assert not list(path.parent.glob(".policy.toml.*"))
