"""A stop between a decision and the turn going on (review 84: SIGKILL while the card was being
marked): the approved action had run, the turn stayed paused for ever, the owner heard nothing
of it, and memories saved in that turn could not be forgotten ("still going on")."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import OWNER, RecordingChannel
from trust_world import instruction, trust_world

from agent.errors import DeliveryError
from bot.commands.access import revoke_person
from bot.recovery import RESUME_WITHIN, recover_interrupted, resume_decided, show_unshown_cards
from memory.approvals import Approval
from memory.clock import FrozenClock
from memory.people import Identity
from memory.turns import TurnStatus

MALLORY = Identity("test", "mallory")


async def _decided_without_resuming(tmp_path: Path, approve: bool) -> tuple[str, int]:
    """A turn that asked for a command; the decision taken (the command run, if approved) and
    the process gone before the turn went on."""
    async with trust_world(tmp_path) as w:
        await w.h.say(instruction("shell", {"command": "mkdir decided"}))
        [(_, prompt)] = w.h.channel.approvals
        owner = await w.h.steward.stores.people.owner()
        approvals = w.h.steward.approvals
        assert approvals is not None
        await approvals.decide(
            prompt.approval_id,
            identity=OWNER,
            user=owner,
            approve=approve,
            ctx_for=w.h.steward._ctx_for,
        )
        approval = await w.h.steward.stores.approvals.get(prompt.approval_id)
        assert approval is not None and approval.decided
        return prompt.approval_id, approval.turn_id


async def test_a_turn_decided_before_a_stop_goes_on_after_the_restart(tmp_path: Path) -> None:
    approval_id, turn_id = await _decided_without_resuming(tmp_path, approve=True)
    async with trust_world(tmp_path, reuse=True) as w:
        turns = w.h.steward.stores.turns
        assert await turns.status_of(turn_id) == TurnStatus.AWAITING_APPROVAL
        assert (w.workspace / "decided").is_dir()  # it ran before the stop
        asked = len(w.model.requests)
        assert await resume_decided(w.h.steward) == 1
        assert await turns.status_of(turn_id) == TurnStatus.COMPLETED
        # the model was told what the command did, and its answer reached the chat
        assert len(w.model.requests) == asked + 1
        [result] = w.model.requests[-1].tool_results
        assert not result.get("is_error") and "denied" not in str(result)
        assert w.h.channel.sent, "the resumed turn's reply was delivered"
        assert await resume_decided(w.h.steward) == 0  # once
        assert (await w.h.steward.stores.approvals.get(approval_id)).status.value == "executed"  # type: ignore[union-attr]
        await w.check_invariants()


async def test_a_denial_before_a_stop_ends_its_turn_after_the_restart(tmp_path: Path) -> None:
    _, turn_id = await _decided_without_resuming(tmp_path, approve=False)
    async with trust_world(tmp_path, reuse=True) as w:
        assert await resume_decided(w.h.steward) == 1
        assert await w.h.steward.stores.turns.status_of(turn_id) == TurnStatus.COMPLETED
        assert "owner denied this shell call" in str(w.model.requests[-1].tool_results)
        assert not (w.workspace / "decided").exists()


async def test_a_turn_cut_short_after_a_decision_says_what_came_of_it(tmp_path: Path) -> None:
    approval_id, turn_id = await _decided_without_resuming(tmp_path, approve=True)
    async with trust_world(tmp_path, reuse=True) as w:
        # the restart came while the turn went on after the decision (its model call)
        await w.h.steward.stores.turns.set_status(
            turn_id, TurnStatus.RUNNING, label=await w.h.steward.stores.turns.label_of(turn_id)
        )
        notes = await recover_interrupted(w.h.steward)
        said = [n.text for n in notes if approval_id in n.text]
        assert said and "it ran" in said[0] and "shell" in said[0], [n.text for n in notes]


async def _asked_then_withdrawn(tmp_path: Path, via_approve: bool) -> int:
    """Mallory's turn waits on a request; she is revoked (the request withdrawn by /revoke, or
    by the owner's /approve finding her gone), then let back in."""
    async with trust_world(tmp_path) as w:
        stores = w.h.steward.stores
        await stores.people.admit(MALLORY, "Mallory")
        await w.h.say(instruction("read_file", {"path": "x.md"}), sender=MALLORY, chat="m-dm")
        [waiting] = await stores.approvals.pending()
        if via_approve:
            assert await stores.people.revoke(MALLORY)
            assert "withdrawn" in await w.h.say(f"/approve {waiting.id}")
        else:
            said = await revoke_person(
                identity=MALLORY, sender=OWNER, stores=stores, settings=w.h.settings
            )
            assert "1 request(s)" in said, said
        await stores.people.admit(MALLORY, "Mallory")  # let back in: nothing comes back
        return waiting.turn_id


@pytest.mark.parametrize("via_approve", [False, True], ids=["revoke", "approve-after-revoke"])
async def test_a_withdrawn_requests_turn_is_never_resumed(
    tmp_path: Path, via_approve: bool
) -> None:
    """Review 85: the first version resumed it after a restart once she was let back in."""
    turn_id = await _asked_then_withdrawn(tmp_path, via_approve)
    async with trust_world(tmp_path, reuse=True) as w:
        asked = len(w.model.requests)
        assert await resume_decided(w.h.steward) == 0
        assert len(w.model.requests) == asked and w.h.channel.texts("m-dm") == []
        assert await w.h.steward.stores.turns.status_of(turn_id) == TurnStatus.SKIPPED


async def test_a_turn_decided_long_before_the_restart_is_closed_not_resumed(
    tmp_path: Path,
) -> None:
    """The first start after an upgrade would have answered turns decided weeks ago."""
    _, turn_id = await _decided_without_resuming(tmp_path, approve=True)
    later = FrozenClock(datetime.now(UTC) + RESUME_WITHIN + timedelta(hours=1))
    async with trust_world(tmp_path, reuse=True, clock=later) as w:
        asked = len(w.model.requests)
        assert await resume_decided(w.h.steward) == 0
        assert len(w.model.requests) == asked and not w.h.channel.sent
        assert await w.h.steward.stores.turns.status_of(turn_id) == TurnStatus.INTERRUPTED


async def test_a_long_lived_request_decided_just_before_a_stop_goes_on(tmp_path: Path) -> None:
    """Review 87: measured from the request, a turn approved a minute before the stop, on a
    request of STEWARD_APPROVAL_MINUTES=2880 made 25 hours before, was closed unanswered."""
    two_days = {"STEWARD_APPROVAL_MINUTES": "2880"}
    clock = FrozenClock(datetime.now(UTC))
    async with trust_world(tmp_path, clock=clock, **two_days) as w:
        await w.h.say(instruction("shell", {"command": "mkdir decided"}))
        [(_, prompt)] = w.h.channel.approvals
    clock.advance(timedelta(hours=25))  # answered the next day: still valid
    async with trust_world(tmp_path, reuse=True, clock=clock, **two_days) as w:
        owner = await w.h.steward.stores.people.owner()
        approvals = w.h.steward.approvals
        assert approvals is not None
        decided = await approvals.decide(
            prompt.approval_id,
            identity=OWNER,
            user=owner,
            approve=True,
            ctx_for=w.h.steward._ctx_for,
        )
        assert decided.approval is not None and (w.workspace / "decided").is_dir()
        turn_id = decided.approval.turn_id  # stopped here, before the turn went on
    clock.advance(timedelta(minutes=1))
    async with trust_world(tmp_path, reuse=True, clock=clock, **two_days) as w:
        assert await resume_decided(w.h.steward) == 1
        assert await w.h.steward.stores.turns.status_of(turn_id) == TurnStatus.COMPLETED
        assert w.h.channel.sent


async def test_a_request_that_expired_days_ago_while_down_is_not_answered(
    tmp_path: Path,
) -> None:
    """Review 89: the sweeper expired it at the next start and went on with the turn, days
    late, where a restart closes one decided that long ago."""
    clock = FrozenClock(datetime.now(UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        await w.h.say(instruction("shell", {"command": "mkdir late"}))
        [(_, prompt)] = w.h.channel.approvals
        turn_id = (await w.h.steward.stores.approvals.get(prompt.approval_id)).turn_id  # type: ignore[union-attr]
    clock.advance(timedelta(days=5))
    async with trust_world(tmp_path, reuse=True, clock=clock) as w:
        asked = len(w.model.requests)
        assert await w.h.steward.expire_approvals() == 1
        assert len(w.model.requests) == asked and not w.h.channel.sent
        assert await w.h.steward.stores.turns.status_of(turn_id) == TurnStatus.INTERRUPTED
        assert not (w.workspace / "late").exists()


async def test_a_request_does_not_outlive_its_minutes_by_a_clock_set_back(
    tmp_path: Path,
) -> None:
    """Asked at 09:00 (expiring 09:15), the clock set back three hours while Steward was down,
    then three hours passed: the sweep expired nothing and the card was approved, hours old
    (R123). A clock before the request's own time expires it."""
    clock = FrozenClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        await w.h.say(instruction("shell", {"command": "mkdir later"}))
        [(_, card)] = w.h.channel.approvals
    clock.advance(timedelta(hours=-3))
    async with trust_world(tmp_path, clock=clock, reuse=True) as w:
        clock.advance(timedelta(hours=3) - timedelta(seconds=30))  # a time sync's step back
        assert await w.h.steward.expire_approvals() == 0
        clock.advance(timedelta(minutes=-5))  # 08:55 on the clock
        assert await w.h.steward.expire_approvals() == 1
        said = await w.h.say(f"/approve {card.approval_id}")
        assert "ran" not in said, said
        assert not (w.workspace / "later").exists()


async def test_a_request_pending_in_a_restored_backup_is_withdrawn(tmp_path: Path) -> None:
    """A backup taken while a request waited, then approved and run, then restored: the
    request was pending again, and approved a second time it ran again (R123)."""
    import asyncio

    from harness import make_settings

    from bot.backup import create_backup, restore_backup
    from bot.commands.memory_cli import memory_cli

    async with trust_world(tmp_path) as w:
        await w.h.say(instruction("shell", {"command": "touch ran-once"}))
        [(_, card)] = w.h.channel.approvals
        await asyncio.to_thread(create_backup, w.h.settings, tmp_path / "b.tar.gz")
        assert "ran" in await w.h.say(f"/approve {card.approval_id}")
        (w.workspace / "ran-once").unlink()
    settings = make_settings(tmp_path / "data", None)
    restore_backup(settings, tmp_path / "b.tar.gz", force=True)
    (tmp_path / "data" / "workspace").mkdir(exist_ok=True)
    # another command before the next start (it opens the log: R124, that used up the note)
    assert await memory_cli(settings, "export", str(tmp_path / "out.jsonl")) == 0
    async with trust_world(tmp_path, reuse=True) as w:
        assert await w.h.steward.stores.approvals.pending() == []
        said = await w.h.say(f"/approve {card.approval_id}")
        assert "ran" not in said or "did not run" in said, said
        assert not (w.workspace / "ran-once").exists()
        assert (await w.h.steward.stores.audit.verify()).ok
        approval = await w.h.steward.stores.approvals.get(card.approval_id)
        assert approval is not None and "restored from a backup" in (approval.result or "")
        assert [e.subject for e in await w.audit_kinds("approval.withdrawn")] == [card.approval_id]


async def test_a_request_whose_card_a_stop_kept_from_being_shown_is_withdrawn(
    tmp_path: Path,
) -> None:
    """R147: killed while the reply before the card was being sent, the request stayed
    pending with no card, none was ever sent, and the same request asked again was merged
    into the unseen one ("an identical request is already waiting") until it expired."""
    async with trust_world(tmp_path) as w:
        await w.h.say(instruction("shell", {"command": "mkdir unseen"}))
        [(_, prompt)] = w.h.channel.approvals
        stores = w.h.steward.stores
        approval = await stores.approvals.get(prompt.approval_id)
        assert approval is not None
        # as the stop left it: the turn still running, no card sent
        await stores.approvals.set_prompt_message(prompt.approval_id, None)
        label = await stores.turns.label_of(approval.turn_id)
        await stores.turns.set_status(approval.turn_id, TurnStatus.RUNNING, label=label)
    async with trust_world(tmp_path, reuse=True) as w:  # its start recovers
        withdrawn = await w.h.steward.stores.approvals.get(prompt.approval_id)
        assert withdrawn is not None and withdrawn.status.value == "denied"
        events = await w.h.steward.stores.audit.recent(100, kind="approval.withdrawn")
        assert [e.subject for e in events] == [prompt.approval_id]
        await w.h.say(instruction("shell", {"command": "mkdir unseen"}))
        [(_, again)] = w.h.channel.approvals  # asked afresh, on a card of its own
        assert again.approval_id != prompt.approval_id
        assert not (w.workspace / "unseen").exists()


async def test_the_approve_that_ran_an_interrupted_action_is_not_asked_again(
    tmp_path: Path,
) -> None:
    """R147: killed while an approved command ran, the owner heard both "it may have run,
    check before asking again" and, of their /approve, "send it again if it still matters"
    (sent again: "already failed")."""
    from memory.approvals import ApprovalStatus
    from memory.messages import InStatus

    async with trust_world(tmp_path) as w:
        await w.h.say(instruction("shell", {"command": "mkdir ran"}))
        [(_, prompt)] = w.h.channel.approvals
        stores = w.h.steward.stores
        approval = await stores.approvals.get(prompt.approval_id)
        assert approval is not None
        # as the stop left it: approved, running, and the /approve not yet answered
        steps = [ApprovalStatus.PENDING, ApprovalStatus.APPROVED, ApprovalStatus.EXECUTING]
        for was, step in itertools.pairwise(steps):
            assert await stores.approvals.transition(prompt.approval_id, was, step)
        message_id = await stores.messages.record_incoming(
            chat_id=approval.chat_id or 0,
            user_id=approval.user_id,
            text=f"/approve {prompt.approval_id.upper()}",
            platform_message_id="restart-approve-1",
            in_history=False,
        )
        assert message_id is not None
    async with trust_world(tmp_path, reuse=True) as w:  # its start recovers
        message = await w.h.steward.stores.messages.get(message_id)
        failed = await w.h.steward.stores.approvals.get(prompt.approval_id)
    assert failed is not None and failed.status is ApprovalStatus.FAILED
    assert message is not None and message.status == InStatus.HANDLED


async def _asked_with_its_card_refused(tmp_path: Path, clock: FrozenClock) -> Approval:
    """A request asked for while the platform refused its card: pending, never shown."""

    class RefusingCards(RecordingChannel):
        async def send_approval(self, address: Any, prompt: Any) -> str | None:
            raise DeliveryError("the platform refused the card")

    async with trust_world(tmp_path, clock=clock) as w:
        w.h.steward.switchboard.register("test", RefusingCards())
        await w.h.say(instruction("shell", {"command": "mkdir later"}))
        (approval,) = await w.h.steward.stores.approvals.pending()
    return approval


async def test_a_paused_requests_card_never_shown_is_shown_at_the_next_start(
    tmp_path: Path,
) -> None:
    """R149: a request whose card was never shown (the platform refused it, or a stop came
    between the turn's pause and the card) waited unseen, and the same request asked again
    was merged into it: the next start shows its card."""
    clock = FrozenClock(datetime.now(UTC))
    approval = await _asked_with_its_card_refused(tmp_path, clock)
    clock.advance(timedelta(minutes=5))
    async with trust_world(tmp_path, clock=clock, reuse=True) as w:
        assert w.h.channel.approvals == []
        assert await show_unshown_cards(w.h.steward) == 1
        [(_, shown)] = w.h.channel.approvals
        assert shown.approval_id == approval.id
        left = round((approval.expires_at - clock.now()).total_seconds() / 60)
        assert f"Expires in {left} min." in shown.reason  # the time left, not the first lifetime
        assert await show_unshown_cards(w.h.steward) == 0  # shown once
        await w.h.say(f"/approve {approval.id}")
        assert (w.workspace / "later").is_dir()


async def test_a_card_never_shown_that_lapsed_while_steward_was_down_is_not_shown(
    tmp_path: Path,
) -> None:
    """R151: days later a card came out of the blue, "Expires in 15 min", and the sweep ended
    it a moment after."""
    clock = FrozenClock(datetime.now(UTC))
    await _asked_with_its_card_refused(tmp_path, clock)
    clock.advance(timedelta(days=5))
    async with trust_world(tmp_path, clock=clock, reuse=True) as w:
        assert await show_unshown_cards(w.h.steward) == 0
        assert w.h.channel.approvals == []
