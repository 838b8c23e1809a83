"""A paused turn ended without being resumed keeps only what came after its prompt (R256).

Paused for an approval, a turn stores its whole transcript, the history it was sent included,
to go on from there; resumed and finished, it keeps only what came after the prompt. Ended
instead (its request expired days ago, a restart closing it, a crash after it resumed), it kept
the whole prompt: forgetting a message left its words in `turns.transcript`, in backups and on
the console's turn page."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import OWNER
from test_memory_forget import memory_ready
from trust_world import World, instruction, trust_world

from bot.recovery import RESUME_WITHIN, recover_interrupted, resume_decided
from memory.clock import FrozenClock
from memory.turns import TurnStatus

SECRET = "QZX4921PLOVER"


def turns_holding(world: World, text: str) -> list[tuple[int, str]]:
    """(id, status) of every turn whose stored transcript holds `text`."""
    with closing(sqlite3.connect(world.h.settings.database_path)) as conn:
        rows = conn.execute(
            "SELECT id, status FROM turns WHERE instr(transcript, ?) > 0 ORDER BY id", (text,)
        ).fetchall()
    return [(int(i), str(s)) for i, s in rows]


async def _paused_after_a_secret(world: World) -> int:
    """The owner tells a secret, then asks for a command: its turn pauses, the secret in its
    history. The paused turn's id."""
    await memory_ready(world.h)
    await world.h.say(f"My bank PIN is {SECRET}, keep it in mind.")
    await world.h.say(instruction("shell", {"command": "mkdir late"}))
    [pending] = await world.h.steward.stores.approvals.pending()
    assert (pending.turn_id, TurnStatus.AWAITING_APPROVAL.value) in turns_holding(world, SECRET)
    return pending.turn_id


async def _forget_the_secret(world: World) -> None:
    """`/memory search` finds the message; `/memory forget` takes it; no turn keeps it."""
    await memory_ready(world.h)
    shown = await world.h.say("/memory search bank PIN")
    number = re.search(rf"message #(\d+): you wrote[^\n]*\n\s+> you[^\n]*{SECRET}", shown)
    assert number, shown
    assert "Forgotten" in await world.h.say(f"/memory forget {number.group(1)}")
    assert turns_holding(world, SECRET) == []


async def test_a_turn_whose_request_expired_days_ago_keeps_no_prompt(tmp_path: Path) -> None:
    """The reviewer's case: expired while Steward was down, the turn is closed unanswered."""
    clock = FrozenClock(datetime.now(UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        turn_id = await _paused_after_a_secret(w)
    clock.advance(timedelta(days=5))
    async with trust_world(tmp_path, reuse=True, clock=clock) as w:
        assert await w.h.steward.expire_approvals() == 1
        assert await w.h.steward.stores.turns.status_of(turn_id) == TurnStatus.INTERRUPTED
        assert (turn_id, TurnStatus.INTERRUPTED.value) not in turns_holding(w, SECRET)
        stored = await w.h.steward.stores.turns.stored(turn_id)
        assert stored is not None and "mkdir late" in (stored.transcript or "")  # its step stays
        await _forget_the_secret(w)


@pytest.mark.parametrize("crashed_resuming", [False, True], ids=["closed", "crashed-resuming"])
async def test_a_turn_a_restart_ends_keeps_no_prompt(
    tmp_path: Path, crashed_resuming: bool
) -> None:
    """Decided, then stopped before the turn went on: a restart long after closes it
    (`resume_decided`); or the stop came while it went on, and the start marks it interrupted."""
    clock = FrozenClock(datetime.now(UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        turn_id = await _paused_after_a_secret(w)
        [pending] = await w.h.steward.stores.approvals.pending()
        approvals = w.h.steward.approvals
        assert approvals is not None
        await approvals.decide(
            pending.id,
            identity=OWNER,
            user=await w.h.steward.stores.people.owner(),
            approve=False,
            ctx_for=w.h.steward._ctx_for,
        )
        if crashed_resuming:  # as a stop in its model call leaves it
            turns = w.h.steward.stores.turns
            assert await turns.claim_paused(turn_id, label=await turns.label_of(turn_id))
    clock.advance(RESUME_WITHIN + timedelta(hours=1))
    async with trust_world(tmp_path, reuse=True, clock=clock) as w:
        if crashed_resuming:
            await recover_interrupted(w.h.steward)  # the start did; again, nothing changes
        else:
            assert await resume_decided(w.h.steward) == 0
        assert await w.h.steward.stores.turns.status_of(turn_id) == TurnStatus.INTERRUPTED
        assert (turn_id, TurnStatus.INTERRUPTED.value) not in turns_holding(w, SECRET)
        await _forget_the_secret(w)
