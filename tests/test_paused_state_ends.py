"""A turn keeps its paused state only while it waits (session 33 left this open).

Paused for an approval, a turn stores the results of the step's calls that already ran, to go
on from there. Resumed and finished, or ended unresumed, it kept them: a `read_file` result
quoting a secret stayed in `turns.paused_state` after `/memory forget` took the secret from
every transcript, in backups and the database file. Now a turn's end drops its paused state,
and a start drops what an earlier version left on ended turns."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta

from test_memory_forget import memory_ready
from test_migrations import UNDO_0031
from test_r256_paused_transcript import SECRET, _forget_the_secret
from trust_world import World, instruction, trust_world

from memory.clock import FrozenClock
from memory.turns import TurnStatus


def paused_states(world: World) -> list[tuple[int, str, str]]:
    """(id, status, paused_state) of every turn that keeps a paused state."""
    with closing(sqlite3.connect(world.h.settings.database_path)) as conn:
        rows = conn.execute(
            "SELECT id, status, paused_state FROM turns WHERE paused_state IS NOT NULL"
        ).fetchall()
    return [(int(i), str(s), str(p)) for i, s, p in rows]


async def _paused_with_a_found_secret(world: World) -> str:
    """The owner tells a secret, also noted in a file; a later step reads the file (it runs,
    its result holds the secret) and asks for a command in the same step: the turn pauses with
    that result kept. The pending approval's id."""
    said = f"My bank PIN is {SECRET}, keep it in mind."
    (world.workspace / "pin.txt").write_text(said)
    await memory_ready(world.h)
    await world.h.say(said)
    read = instruction("read_file", {"path": "pin.txt"})
    shell = instruction("shell", {"command": "mkdir later", "network": False})
    await world.h.say(f"{read} {shell}")
    [pending] = await world.h.steward.stores.approvals.pending()
    [(turn_id, status, state)] = paused_states(world)
    assert turn_id == pending.turn_id and status == TurnStatus.AWAITING_APPROVAL.value
    assert SECRET in state  # the file's text, kept to resume with
    return pending.id


async def test_a_resumed_turn_keeps_no_paused_state_and_forgetting_leaves_no_copy(
    tmp_path,
) -> None:
    async with trust_world(tmp_path) as w:
        approval_id = await _paused_with_a_found_secret(w)
        await w.h.say(f"/approve {approval_id}")
        assert (w.workspace / "later").is_dir()
        assert paused_states(w) == []
        await _forget_the_secret(w)
        with closing(sqlite3.connect(w.h.settings.database_path)) as conn:
            [(left,)] = conn.execute(
                "SELECT count(*) FROM turns WHERE instr(COALESCE(paused_state, ''), ?) > 0"
                " OR instr(COALESCE(transcript, ''), ?) > 0",
                (SECRET, SECRET),
            ).fetchall()
        assert left == 0


async def test_a_turn_ended_unresumed_keeps_no_paused_state(tmp_path) -> None:
    clock = FrozenClock(datetime.now(UTC))
    async with trust_world(tmp_path, clock=clock) as w:
        await _paused_with_a_found_secret(w)
    clock.advance(timedelta(days=5))
    async with trust_world(tmp_path, reuse=True, clock=clock) as w:
        assert await w.h.steward.expire_approvals() == 1
        assert paused_states(w) == []


async def test_a_start_drops_the_paused_state_an_earlier_version_left(tmp_path) -> None:
    """An ended turn with a paused state, as versions before session 35 left them: the
    upgrade's migration takes it out; a turn still waiting keeps its own."""
    async with trust_world(tmp_path) as w:
        await _paused_with_a_found_secret(w)
        [(waiting, _, state)] = paused_states(w)
        await w.h.say("Thanks, that is all.")
        with closing(sqlite3.connect(w.h.settings.database_path)) as conn, conn:
            [(ended,)] = conn.execute(
                "SELECT max(id) FROM turns WHERE status = ?", (TurnStatus.COMPLETED.value,)
            ).fetchall()
            conn.execute("UPDATE turns SET paused_state = ? WHERE id = ?", (state, ended))
            for statement in UNDO_0031:  # as it was then
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version WHERE version >= 30")
        assert {t for t, _, _ in paused_states(w)} == {waiting, ended}
    async with trust_world(tmp_path, reuse=True) as w:
        assert [(t, s) for t, s, _ in paused_states(w)] == [
            (waiting, TurnStatus.AWAITING_APPROVAL.value)
        ]


async def test_a_secret_forgotten_while_a_turn_that_read_it_waits_stays_forgotten(
    tmp_path,
) -> None:
    """Review 35: forgotten while the turn waited for its approval, the secret came back into
    that turn's transcript once it was approved and resumed (its paused results were left
    alone, and nothing scrubbed them after)."""
    async with trust_world(tmp_path) as w:
        approval_id = await _paused_with_a_found_secret(w)
        await memory_ready(w.h)
        shown = await w.h.say("/memory search bank PIN")
        number = re.search(rf"message #(\d+): you wrote[^\n]*\n\s+> you[^\n]*{SECRET}", shown)
        assert number, shown
        assert "Forgotten" in await w.h.say(f"/memory forget {number.group(1)}")
        [(_, _, state)] = paused_states(w)
        assert SECRET not in state
        await w.h.say(f"/approve {approval_id}")
        assert (w.workspace / "later").is_dir()  # the approved call ran; the turn went on
        with closing(sqlite3.connect(w.h.settings.database_path)) as conn:
            left = conn.execute(
                "SELECT id, status FROM turns WHERE instr(COALESCE(paused_state, ''), ?) > 0"
                " OR instr(COALESCE(transcript, ''), ?) > 0",
                (SECRET, SECRET),
            ).fetchall()
        assert left == []


async def test_a_resume_that_read_the_turn_before_a_forgetting_does_not_claim_it(
    tmp_path,
) -> None:
    """Review 35: a resume reads the waiting turn, then claims it several awaits later; a
    forgetting scrubbing the turn in between must not be undone by the resume carrying on from
    what it read. The claim holds only for what was read; the approval then resumes it from
    the scrubbed state."""
    async with trust_world(tmp_path) as w:
        approval_id = await _paused_with_a_found_secret(w)
        turns = w.h.steward.stores.turns
        [(turn_id, _, _)] = paused_states(w)
        read = await turns.stored(turn_id)
        assert read is not None
        await memory_ready(w.h)
        shown = await w.h.say("/memory search bank PIN")
        number = re.search(rf"message #(\d+): you wrote[^\n]*\n\s+> you[^\n]*{SECRET}", shown)
        assert number, shown
        assert "Forgotten" in await w.h.say(f"/memory forget {number.group(1)}")
        assert not await turns.claim_paused(turn_id, label=read.label, seen=read)
        assert await turns.status_of(turn_id) == TurnStatus.AWAITING_APPROVAL.value
        await w.h.say(f"/approve {approval_id}")
        assert (w.workspace / "later").is_dir()
        assert await turns.status_of(turn_id) == TurnStatus.COMPLETED.value
        with closing(sqlite3.connect(w.h.settings.database_path)) as conn:
            [(left,)] = conn.execute(
                "SELECT count(*) FROM turns WHERE instr(COALESCE(transcript, ''), ?) > 0",
                (SECRET,),
            ).fetchall()
        assert left == 0


async def test_a_message_forgotten_while_its_turn_waits_is_not_sent_when_it_resumes(
    tmp_path,
) -> None:
    """Session 35 left this open: a turn paused for an approval keeps its prompt (the history
    it was asked with) to resume with. The owner forgets a pasted secret from that history while
    it waits, then approves: the resumed model call was sent the secret once more. The waiting
    turn's prompt loses the words with the rest; what the model asked the tool to do stays."""
    async with trust_world(tmp_path) as w:
        await memory_ready(w.h)
        await w.h.say(f"My bank PIN is {SECRET}, keep it in mind.")
        await w.h.say(instruction("shell", {"command": "mkdir late", "network": False}))
        [pending] = await w.h.steward.stores.approvals.pending()
        shown = await w.h.say("/memory search bank PIN")
        number = re.search(rf"message #(\d+): you wrote[^\n]*\n\s+> you[^\n]*{SECRET}", shown)
        assert number, shown
        assert "Forgotten" in await w.h.say(f"/memory forget {number.group(1)}")
        asked_before = len(w.model.requests)
        await w.h.say(f"/approve {pending.id}")
        assert (w.workspace / "late").is_dir()  # the approved call ran
        resumed = w.model.requests[asked_before:]
        assert resumed  # the turn went on with the model
        for request in resumed:
            assert SECRET not in json.dumps(request.body, ensure_ascii=False)
        [(status,)] = _statuses(w, pending.turn_id)
        assert status == TurnStatus.COMPLETED.value


def _statuses(world: World, turn_id: int) -> list[tuple[str]]:
    with closing(sqlite3.connect(world.h.settings.database_path)) as conn:
        return conn.execute("SELECT status FROM turns WHERE id = ?", (turn_id,)).fetchall()
