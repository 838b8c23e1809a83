"""One message of many command lines (R97): a guest's 370 lines of `/deny x` were 370 audited
refusals and 370 replies, the owner's real events pushed off `/audit` and the console."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import running_steward

from bot.router import MAX_COMMANDS
from memory.people import Identity


async def test_a_guests_flood_of_command_lines_cannot_bury_the_owners_events(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        guest = Identity("test", "guest")
        await h.steward.stores.people.admit(guest, "Guest")
        audit = h.steward.stores.audit
        await audit.record("tool.ran", actor="turn:1", subject="shell")  # the owner's, real
        before = len(await audit.recent(100_000))
        text = "\n".join(["/deny zzzz"] * 370)
        await h.router.dispatch(h.message(text, sender=guest, chat="g1", platform_id="g1:1"))
        replies = h.channel.texts("g1")
        refused = [e for e in await audit.recent(100_000) if e.kind == "approval.refused_decider"]
        added = len(await audit.recent(100_000)) - before
        assert "tool.ran" in [e.kind for e in await audit.recent(50)]
        # later floods add an event only at each doubling of the count
        await h.router.dispatch(h.message(text, sender=guest, chat="g1", platform_id="g1:2"))
        again = [e for e in await audit.recent(100_000) if e.kind == "approval.refused_decider"]
    assert len(replies) == MAX_COMMANDS + 1
    assert replies[-1].startswith(f"I ran the first {MAX_COMMANDS} of the 370 commands")
    assert replies[-1].count("- /deny zzzz") == 5 and "- and 355 more" in replies[-1]
    assert all("Only the owner can decide" in r for r in replies[:-1])
    assert [e.detail["tries"] for e in refused] == [1, 2, 4, 8]
    assert added < 2 * MAX_COMMANDS
    assert [e.detail["tries"] for e in again] == [1, 2, 4, 8, 16]


async def test_the_owners_pasted_commands_all_run(tmp_path: Path) -> None:
    async with running_steward(tmp_path, None) as h:
        await h.say("\n".join(f"/remember note number {i}" for i in range(3)))
        assert len(h.channel.texts("c1")) == 3
        assert sorted(m.text for m in await h.memories()) == [f"note number {i}" for i in range(3)]


async def test_show_and_list_refusals_are_audited_at_each_doubling_too(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R98: `/approve show x` and a bare `/approve` from someone who may not see requests were
    audited on every line, so ten messages of ten lines still buried the owner's events."""
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        guest = Identity("test", "guest")
        await h.steward.stores.people.admit(guest, "Guest")
        for n in range(10):
            text = "\n".join(["/approve show zzzz", "/approve"] * 5)
            await h.router.dispatch(h.message(text, sender=guest, chat="g1", platform_id=f"g:{n}"))
        refused = [
            e.detail["tries"]
            for e in await h.steward.stores.audit.recent(100_000)
            if e.kind == "approval.list_refused"
        ]
    assert refused == [1, 2, 4, 8, 16, 32, 64]


async def test_a_guests_approve_always_is_refused_as_any_decision_and_audited_at_doublings(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R182: `/approve x always` from a guest who may not decide was one audit event a line,
    before any check of who may decide, and told them to "approve it once"."""
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        guest = Identity("test", "guest")
        await h.steward.stores.people.admit(guest, "Guest")
        for n in range(10):
            text = "\n".join(["/approve zzzz always"] * 5)
            await h.router.dispatch(h.message(text, sender=guest, chat="g1", platform_id=f"g:{n}"))
        events = await h.steward.stores.audit.recent(100_000)
        replies = h.channel.texts("g1")
    assert not [e for e in events if e.kind == "approval.always_refused"]
    tries = [e.detail["tries"] for e in events if e.kind == "approval.refused_decider"]
    assert tries == [1, 2, 4, 8, 16, 32]
    assert replies and all("Only the owner can decide" in r for r in replies), replies[:2]
    assert not any("approve it once" in r for r in replies)


async def test_an_approver_is_told_to_approve_once(tmp_path: Path) -> None:
    helper = Identity("test", "helper")
    async with running_steward(tmp_path, None, STEWARD_APPROVERS=str(helper)) as h:
        await h.steward.stores.people.admit(helper, "Helper")
        await h.router.dispatch(h.message("/approve zzzz always", sender=helper, chat="g1"))
        [reply] = h.channel.texts("g1")
        [event] = await h.steward.stores.audit.recent(10, kind="approval.always_refused")
    assert reply.startswith("Only the owner can approve always"), reply
    assert event.detail["tries"] == 1


async def test_each_kind_of_refusal_is_counted_apart_and_lines_not_run_are_shown_as_typed(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R102: one counter for every kind made a guest's first /deny, after two refused lists,
    try #3 (not audited); the lines not run were echoed as they came, bidi controls included."""
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        guest = Identity("test", "guest")
        await h.steward.stores.people.admit(guest, "Guest")
        await h.router.dispatch(h.message("/approve\n/approve", sender=guest, chat="g1"))
        await h.router.dispatch(h.message("/deny zzzz", sender=guest, chat="g1", platform_id="2"))
        kinds = [e.kind for e in await h.steward.stores.audit.recent(100)]
        lines = "\n".join(["/remember x"] * 10 + ["/remember \u202eevil **bold**"])
        await h.router.dispatch(h.message(lines, sender=guest, chat="g1", platform_id="3"))
        told = h.channel.texts("g1")[-1]
    assert kinds.count("approval.list_refused") == 2
    assert kinds.count("approval.refused_decider") == 1
    assert "\u202e" not in told and "**bold**" not in told
