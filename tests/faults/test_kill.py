"""SIGKILL `steward run` at random points, restart it on the same data directory, and check after
every restart that nothing was lost: each incoming message answered or marked interrupted with a
note to the user, each reminder sent once (a send under way at the kill may go once more, marked
as resent), approvals still pending or cleanly expired,
SQLite and Chroma holding the same memory ids, and `steward audit verify` exiting 0.

FAULTS_KILLS sets how many kills (5 under plain pytest, 50+ under `make faults`); FAULTS_SEED
makes the random kill points repeatable (the seed is printed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.telegram import FakeTelegram
from faults_support import (
    OWNER_TG,
    StewardProcess,
    audit_verify,
    eventually,
    kills_wanted,
    query,
    record,
    steward_env,
)

from agent.delivery import RESENT

KILLS = kills_wanted()
SCENARIOS = ("model_wait", "tool_gap", "approval", "reminder", "memory")
PENDING_APPROVALS = "SELECT id FROM approvals WHERE status = 'pending'"
ACTIVE_MEMORIES = "SELECT id, user_id FROM memories WHERE superseded_at IS NULL"
NOTE = "I was restarted before I could finish answering “{}”"


@dataclass
class World:
    """What the scripted model does, and what the test has seen Steward promise."""

    slow_model: float = 0.0  # seconds a plain chat request waits
    slow_tool_result: float = 0.0  # seconds the request carrying tool results waits
    remembered: dict[int, str] = field(default_factory=dict)  # memory id -> text, acknowledged
    reminders: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


def _user_text(request: RecordedRequest) -> str:
    return request.last_user_text.rsplit("</context>", 1)[-1].strip()


def _model(world: World):  # type: ignore[no-untyped-def]
    async def respond(request: RecordedRequest) -> Reply:
        if request.tool_results:
            if world.slow_tool_result:
                await asyncio.sleep(world.slow_tool_result)
            return Reply.text("Done with the tools.")
        text = _user_text(request)
        if world.slow_model:
            await asyncio.sleep(world.slow_model)
        if text.startswith("use a tool"):
            return Reply.tool_use("list_files", {"path": "."})
        if text.startswith("run shell"):
            n = text.rsplit(" ", 1)[-1]
            return Reply.tool_use("shell", {"command": f"rm -rf scratch-{n}"})
        return Reply.text("re: " + text)

    return respond


async def _until_polling(tg: FakeTelegram, since: int, steward: StewardProcess) -> None:
    def polling() -> bool:
        assert steward.alive, "steward exited:\n" + steward.current_log()[-3000:]
        return any(c.method == "getUpdates" for c in tg.calls[since:])

    await eventually(polling, 40, "the restarted Steward to poll Telegram")


def _settled(db: Path, tg: FakeTelegram) -> bool:
    if tg.pending_updates:
        return False
    busy = query(
        db,
        "SELECT (SELECT count(*) FROM messages WHERE direction='in' AND status='received')"
        " + (SELECT count(*) FROM turns WHERE status='running')"
        " + (SELECT count(*) FROM messages WHERE direction='out' AND status='pending')",
    )
    return busy == [(0,)]


def _chroma_ids(chroma: Path) -> dict[int, set[int]]:
    import chromadb
    from chromadb.api.client import SharedSystemClient
    from chromadb.config import Settings

    SharedSystemClient.clear_system_cache()
    settings = Settings(anonymized_telemetry=False)
    client = chromadb.PersistentClient(path=str(chroma), settings=settings)
    found: dict[int, set[int]] = {}
    for collection in client.list_collections():
        match = re.fullmatch(r"steward_user_(\d+)", collection.name)
        if match:
            ids = client.get_collection(collection.name).get(include=[])["ids"]
            found[int(match[1])] = {int(i) for i in ids}
    SharedSystemClient.clear_system_cache()
    return found


async def _check_after_restart(
    cycle: int,
    world: World,
    db: Path,
    data: Path,
    tg: FakeTelegram,
    steward: StewardProcess,
    pending_before: set[str],
    env: dict[str, str],
) -> tuple[list[str], int]:
    """Every check; returns (problems, data lost)."""
    problems: list[str] = []
    lost = 0
    audit = asyncio.create_task(audit_verify(env))
    try:
        await eventually(lambda: _settled(db, tg), 25, "Steward to settle after the restart")
    except AssertionError as exc:
        problems.append(str(exc))

    # every incoming message: answered, or interrupted with a note to the user (the notes go
    # out once the channel is up, a moment after recovery marked the messages interrupted)
    def notes_out() -> bool:
        sent = tg.sent_texts(OWNER_TG)
        return all(
            any(NOTE.format(t if len(t) <= 80 else t[:77] + "...") in s for s in sent)
            for t, st in query(db, "SELECT text, status FROM messages WHERE direction='in'")
            if st == "interrupted"
        )

    with contextlib.suppress(AssertionError):
        await eventually(notes_out, 25, "the restart notes")
    sent = tg.sent_texts(OWNER_TG)
    for text, status in query(db, "SELECT text, status FROM messages WHERE direction='in'"):
        if status == "interrupted":
            quoted = text if len(text) <= 80 else text[:77] + "..."
            if not any(NOTE.format(quoted) in s for s in sent):
                problems.append(f"interrupted without a note to the user: {text!r}")
                lost += 1
        elif status != "handled":
            problems.append(f"incoming message left {status!r}: {text!r}")
            lost += 1
        elif text.startswith("hello ") and f"re: {text}" not in sent:
            problems.append(f"handled but never answered: {text!r}")
            lost += 1
    # reminders: once each, none lost (everything due has been sent by now)
    now = time.time()

    async def reminders_due_done() -> bool:
        rows = query(db, "SELECT status FROM schedules WHERE kind='reminder'")
        return all(status == "done" for (status,) in rows) or time.time() - now > 8

    await eventually(reminders_due_done, 10, "due reminders")
    for schedule_id, payload, status in query(
        db, "SELECT id, payload, status FROM schedules WHERE kind='reminder'"
    ):
        what = re.search(r'"text":\s*"([^"]*)"', payload)
        label = what[1] if what else payload
        texts = tg.sent_texts(OWNER_TG)
        times = sum(1 for s in texts if s.split("\n")[0] == f"Reminder: {label}")
        # a send under way at the kill may have reached Telegram: sent again, it is marked
        marked = sum(1 for s in texts if s == f"{RESENT}\n\nReminder: {label}")
        if status == "done" and not ((times == 1 and marked <= 1) or (times == 0 and marked == 1)):
            problems.append(
                f"reminder #{schedule_id} {label!r} sent {times} times ({marked} marked resent)"
            )
            lost += 1
        elif status != "done":
            problems.append(f"reminder #{schedule_id} {label!r} still {status} after it fell due")
            lost += 1
    # approvals: still pending or cleanly expired; none ran without a decision
    statuses = dict(query(db, "SELECT id, status FROM approvals"))
    for approval_id in pending_before:
        if statuses.get(approval_id) not in ("pending", "expired"):
            problems.append(f"approval {approval_id} was pending, now {statuses.get(approval_id)}")
            lost += 1
    for approval_id, status in statuses.items():
        if status in ("approved", "executing", "executed"):
            problems.append(f"approval {approval_id} is {status} though nobody decided it")
            lost += 1
    # memory: what Steward acknowledged is kept; SQLite and Chroma agree
    active = query(db, ACTIVE_MEMORIES)
    kept = {memory_id for memory_id, _ in active}
    for memory_id, text in world.remembered.items():
        if memory_id not in kept:
            problems.append(f"memory #{memory_id} {text!r} was acknowledged, then lost")
            lost += 1
    try:
        await eventually(
            lambda: "hybrid search ready" in steward.current_log(), 30, "Chroma to be reconciled"
        )
        # Both read afresh, and again for a few seconds: the restarted process may be saving a
        # memory right now (a redelivered update), between its SQLite commit and its vector.
        differences: dict[int, set[int]] = {}

        async def agree() -> bool:
            in_sqlite: dict[int, set[int]] = {}
            for memory_id, user_id in query(db, ACTIVE_MEMORIES):
                in_sqlite.setdefault(user_id, set()).add(memory_id)
            in_chroma = await asyncio.to_thread(_chroma_ids, data / "chroma")
            differences.clear()
            for user_id in set(in_sqlite) | set(in_chroma):
                want, have = in_sqlite.get(user_id, set()), in_chroma.get(user_id, set())
                if want != have:
                    differences[user_id] = want ^ have
            return not differences

        with contextlib.suppress(AssertionError):
            await eventually(agree, 10, "SQLite and Chroma to agree", every=0.5)
        for user_id, ids in differences.items():
            problems.append(f"SQLite and Chroma disagree for user {user_id}: {ids}")
            lost += len(ids)
    except AssertionError as exc:
        problems.append(str(exc))
    code, out = await audit
    if code != 0:
        problems.append(f"audit verify exited {code}: {out.strip()}")
        lost += 1
    return [f"after kill {cycle}: {p}" for p in problems], lost


async def _drive(
    scenario: str,
    n: int,
    rng: random.Random,
    world: World,
    tg: FakeTelegram,
    model: FakeAnthropic,
    steward: StewardProcess,
) -> str:
    """Send the scenario's traffic and return once it is time to kill; says where it killed."""
    asked = len(model.requests)

    def model_reached(tool_results: bool = False) -> bool:
        assert steward.alive, "steward exited:\n" + steward.current_log()[-3000:]
        return any(bool(r.tool_results) == tool_results for r in model.requests[asked:])

    if scenario == "model_wait":
        world.slow_model = 30
        tg.push_message(f"hello {n}")
        if rng.random() < 0.25:
            await asyncio.sleep(rng.uniform(0, 0.4))
            return "right after the message arrived"
        await eventually(model_reached, 15, "the turn to reach the model")
        await asyncio.sleep(rng.uniform(0, 0.3))
        return "while the turn waited for the model"
    if scenario == "tool_gap":
        world.slow_tool_result = 30
        tg.push_message(f"use a tool {n}")
        await eventually(lambda: model_reached(True), 15, "the tool result to reach the model")
        await asyncio.sleep(rng.uniform(0, 0.2))
        return "between the tool call and the model's answer to its result"
    if scenario == "approval":
        sends = len(tg.calls_to("sendMessage"))
        tg.push_message(f"run shell {n}")
        if rng.random() < 0.5:
            await eventually(model_reached, 15, "the turn to reach the model")
            await asyncio.sleep(rng.uniform(0, 0.15))
            return "while the approval was being asked"

        def prompted() -> bool:
            return any("reply_markup" in c.params for c in tg.calls_to("sendMessage")[sends:])

        await eventually(prompted, 15, "the approval prompt")
        await asyncio.sleep(rng.uniform(0, 0.5))
        return "while the approval was pending"
    if scenario == "reminder":
        label = f"ping-{n}"
        world.reminders.add(label)
        tg.push_message(f"/remind 2s {label}")
        await eventually(
            lambda: any(label in s and s.startswith("OK, #") for s in tg.sent_texts(OWNER_TG)),
            15,
            "the reminder to be set",
        )
        if rng.random() < 0.4:
            await eventually(
                lambda: f"Reminder: {label}" in tg.sent_texts(OWNER_TG), 10, "the reminder"
            )
            await asyncio.sleep(rng.uniform(0, 0.05))
            return "right after the reminder was sent"
        await asyncio.sleep(rng.uniform(1.6, 2.4))
        return "while the reminder was firing"
    if scenario == "memory":
        text = f"fact {n}: the locker code is {rng.randint(1000, 9999)}"
        tg.push_message(f"/remember {text}")
        await asyncio.sleep(rng.uniform(0, 0.5))
        return "in the middle of a memory write"
    raise AssertionError(scenario)


def _note_acknowledged(world: World, tg: FakeTelegram) -> None:
    for text in tg.sent_texts(OWNER_TG):
        if match := re.match(r"Remembered #(\d+): (.*)", text, re.S):
            world.remembered.setdefault(int(match[1]), match[2])


@pytest.mark.timeout(120 + KILLS * 25)
async def test_sigkill_at_random_points_loses_nothing(tmp_path: Path) -> None:
    seed = int(os.environ.get("FAULTS_SEED") or time.time())
    rng = random.Random(seed)
    world = World()
    data = tmp_path / "data"
    db = data / "steward.db"
    log = tmp_path / "steward.log"
    print(f"fault kill suite: {KILLS} kills, seed {seed}, log {log}")
    async with FakeAnthropic() as model, FakeTelegram() as tg:
        model.on_request(_model(world))
        env = steward_env(data, model, tg)
        steward = StewardProcess(env, log)
        await steward.start()
        await _until_polling(tg, 0, steward)
        order = [SCENARIOS[i % len(SCENARIOS)] for i in range(KILLS)]
        rng.shuffle(order)
        try:
            for cycle, scenario in enumerate(order, 1):
                t0 = time.monotonic()
                where = await _drive(scenario, cycle, rng, world, tg, model, steward)
                t1 = time.monotonic()
                await steward.kill()
                _note_acknowledged(world, tg)
                world.slow_model = world.slow_tool_result = 0
                pending = {a for (a,) in query(db, PENDING_APPROVALS)}
                since = len(tg.calls)
                await steward.start()
                await _until_polling(tg, since, steward)
                t2 = time.monotonic()
                problems, lost = await _check_after_restart(
                    cycle, world, db, data, tg, steward, pending, env
                )
                _note_acknowledged(world, tg)
                print(
                    f"kill {cycle}: {scenario}, {where}; {t1 - t0:.1f}s traffic, "
                    f"{t2 - t1:.1f}s restart, {time.monotonic() - t2:.1f}s checks"
                )
                record("kill", not problems, lost)
                world.problems += [f"{p} (killed {where}, {scenario})" for p in problems]
        finally:
            if steward.alive:
                await steward.stop()
    assert steward.starts == KILLS + 1
    assert not world.problems, "\n".join(world.problems) + f"\nseed {seed}; log {log}"
