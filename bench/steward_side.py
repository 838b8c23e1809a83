"""Steward's side of `make bench`: `steward run` as a subprocess against the loopback fakes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    TimedAnthropic,
    TimedTelegram,
    cpu_seconds,
    dir_mib,
    drive_turns,
    first_poll,
    free_port,
    marker,
    summary_ms,
    terminate,
    token_figures,
    tree_rss_mib,
)

sys.path.insert(0, str(ROOT))

from memory_prefill import populate_memories, retrieval_latency

OWNER_TG = 1001
CROWD = range(2001, 2201)  # the concurrency phase's chats (allow-listed users)
STEWARD = [sys.executable, "-m", "bot.cli", "run"]
SETTLE_S = 10  # the footprint run's STEWARD_EMBEDDER_IDLE


@dataclass
class Running:
    proc: asyncio.subprocess.Process
    tg: TimedTelegram
    fa: TimedAnthropic
    ready_s: float
    started: float
    http_port: int = 0

    async def vector_side_up(self, limit: float = 60.0) -> float | None:
        """Seconds from start until the embedder has loaded (its counter says so), None if it
        did not within `limit` (keyword-only, or slower)."""
        give_up = time.perf_counter() + limit
        while time.perf_counter() < give_up:
            if (await self.embedder_stats()).get("loads"):
                return round(time.perf_counter() - self.started, 2)
            await asyncio.sleep(0.25)
        return None

    async def embedder_let_go(self, limit: float = 30.0) -> bool:
        """Whether the embedder's model was let go (its counter) within `limit` seconds."""
        give_up = time.perf_counter() + limit
        while time.perf_counter() < give_up:
            if (await self.embedder_stats()).get("releases"):
                return True
            await asyncio.sleep(0.25)
        return False

    async def embedder_stats(self) -> dict[str, Any]:
        """The embedder's cumulative calls and CPU seconds (GET /metrics), {} when unreadable."""
        return dict((await self.metrics()).get("embedder") or {})

    async def metrics(self) -> dict[str, Any]:
        """GET /metrics (the embedder's counters, the collector's pauses), {} when unreadable."""
        import aiohttp

        url = f"http://127.0.0.1:{self.http_port}/metrics"
        try:
            async with aiohttp.ClientSession() as client, client.get(url) as response:
                return dict(await response.json())
        except (aiohttp.ClientError, ValueError, TimeoutError):
            return {}


def steward_env(data: Path, tg: TimedTelegram, fa: TimedAnthropic) -> dict[str, str]:
    # PYTHONDONTWRITEBYTECODE is left out: an installed Steward has its .pyc files, as the
    # peer's venv has (pip compiles them); without them every start compiles our sources again
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "STEWARD_", "TELEGRAM_", "SLACK_", "CHROMA_"))
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    return env | {
        "STEWARD_DATA_DIR": str(data),
        "STEWARD_LOG_LEVEL": "WARNING",
        "STEWARD_OWNER": f"telegram:{OWNER_TG}",
        "ANTHROPIC_API_KEY": "sk-ant-bench",
        "ANTHROPIC_BASE_URL": fa.base_url,
        "STEWARD_MODEL_RETRIES": "0",
        "STEWARD_DAILY_TOKEN_BUDGET": "0",
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_BASE": tg.base_url,
        "TELEGRAM_ALLOWED_USERS": ",".join(str(u) for u in CROWD),
        "STEWARD_HTTP_HOST": "127.0.0.1",
        "STEWARD_HTTP_PORT": str(free_port()),
    }


@contextlib.asynccontextmanager
async def steward(
    data: Path, latency: float, log: Path, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Running]:
    """Fakes up, `steward run` started; ready = its first getUpdates on the fake."""
    async with TimedAnthropic(latency) as fa, TimedTelegram() as tg:
        with log.open("ab") as out:
            started = time.perf_counter()
            env = steward_env(data, tg, fa) | (extra_env or {})
            proc = await asyncio.create_subprocess_exec(
                *STEWARD,
                env=env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
            try:
                if why := await first_poll(tg, proc, started):
                    raise RuntimeError(f"steward {why}; see {log}")
                assert tg.first_poll_at is not None
                yield Running(
                    proc,
                    tg,
                    fa,
                    tg.first_poll_at - started,
                    started,
                    int(env["STEWARD_HTTP_PORT"]),
                )
            finally:
                await terminate(proc)


async def footprint_and_turns(
    work: Path, *, turns: int, latency: float, idle_wait: float, concurrency: dict[str, Any]
) -> dict[str, Any]:
    """Fresh data dir: start-to-ready, idle RSS, `turns` turns in one chat (overhead, RSS,
    disk growth, tokens over the first 50), then the 200-chat burst."""
    data = work / "data"
    out: dict[str, Any] = {}
    # the embedder is let go after SETTLE_S without a search (STEWARD_EMBEDDER_IDLE, 120 s by
    # default): shorter here so that the settled idle RSS is measured without waiting minutes
    settle = {"STEWARD_EMBEDDER_IDLE": str(SETTLE_S)}
    async with steward(data, latency, work / "steward.log", settle) as run:
        out["start_to_ready_s"] = round(run.ready_s, 3)
        await asyncio.sleep(idle_wait)
        # idle means everything started: the embedder and Chroma load in the background after
        # the first poll, and an RSS taken before they are up would flatter Steward
        out["vector_side_up_s"] = await run.vector_side_up()
        # ...and settled: the model, loaded to prove it works and reconcile, is let go until
        # the first search (unless STEWARD_EMBEDDER_IDLE=0)
        out["embedder_let_go_at_start"] = await run.embedder_let_go()
        await asyncio.sleep(1.0)
        out["idle_rss_mib"] = round(tree_rss_mib(run.proc.pid), 1)
        # one warm-up turn creates the chat (and loads the embedder again); disk and RSS
        # growth are measured from here
        await drive_turns(run.tg, run.fa, 1, chat=OWNER_TG, start_seq=10**6)
        await asyncio.sleep(1.0)
        out["rss_after_first_turn_mib"] = round(tree_rss_mib(run.proc.pid), 1)
        db0 = dir_mib(data / "steward.db") + dir_mib(data / "steward.db-wal")
        chroma0 = dir_mib(data / "chroma")
        cpu0 = cpu_seconds(run.proc.pid)
        embed0 = await run.embedder_stats()
        gc0 = (await run.metrics()).get("gc")
        print(f"  steward: {turns} turns in one chat ...", flush=True)
        overheads = await drive_turns(run.tg, run.fa, turns, chat=OWNER_TG)
        out["cpu_ms_per_turn"] = round((cpu_seconds(run.proc.pid) - cpu0) / turns * 1000, 1)
        await asyncio.sleep(1.0)  # what the turns left to do behind them (vectors) is done
        out.update(embedder_per_turn(embed0, await run.embedder_stats(), turns))
        out["gc"] = gc_over(gc0, (await run.metrics()).get("gc"), turns)
        await asyncio.sleep(1.0)
        out["rss_after_turns_mib"] = round(tree_rss_mib(run.proc.pid), 1)
        out["turns"] = turns
        out["overhead_ms"] = summary_ms(overheads)
        out["overhead_ms_per_100_p50"] = [
            summary_ms(overheads[i : i + 100])["p50"] for i in range(0, len(overheads), 100)
        ]
        db1 = dir_mib(data / "steward.db") + dir_mib(data / "steward.db-wal")
        chroma1 = dir_mib(data / "chroma")
        out["db_mib_per_1000_turns"] = round((db1 - db0) / turns * 1000, 2)
        out["chroma_mib_per_1000_turns"] = round((chroma1 - chroma0) / turns * 1000, 2)
        out["db_mib"] = round(db1, 2)
        out["tokens"] = token_figures(run.fa, OWNER_TG, min(50, turns))
        print("  steward: 200 chats at once ...", flush=True)
        out["concurrency"] = await burst(run, **concurrency)
        out["idle_settled_rss_mib"] = await settled_rss(run)
    return out


async def settled_rss(run: Running) -> float | None:
    """RSS once the process has been idle long enough to let its embedder go (after all the
    turns above: what a Steward that is not being talked to holds); None if it never did."""
    before = (await run.embedder_stats()).get("releases", 0)
    give_up = time.perf_counter() + SETTLE_S + 30
    while time.perf_counter() < give_up:
        if (await run.embedder_stats()).get("releases", 0) > before:
            await asyncio.sleep(1.0)
            return round(tree_rss_mib(run.proc.pid), 1)
        await asyncio.sleep(0.5)
    return None


def gc_over(before: dict[str, Any] | None, after: dict[str, Any] | None, turns: int) -> dict:
    """The collector over the turns (GET /metrics' cumulative "gc"): full collections and their
    pauses, and every collection's ms per turn; what was frozen at start (bot/gc_pauses.py)."""
    if not before or not after:
        return {}
    return {
        "full_collections": after["collections"][2] - before["collections"][2],
        "full_pause_ms": round(after["pause_ms"][2] - before["pause_ms"][2], 1),
        "ms_per_turn": round((sum(after["pause_ms"]) - sum(before["pause_ms"])) / turns, 2),
        "frozen": after["frozen"],
    }


def embedder_per_turn(before: dict[str, Any], after: dict[str, Any], turns: int) -> dict[str, Any]:
    """The embedder's own CPU ms and calls per turn (its counter, read over the turns), the
    column the process CPU includes."""
    if not before or not after:
        return {}
    return {
        "embedder_cpu_ms_per_turn": round(
            (after["cpu_s"] - before["cpu_s"]) / max(1, turns) * 1000, 1
        ),
        "embedder_calls_per_turn": round((after["calls"] - before["calls"]) / max(1, turns), 2),
    }


async def burst(run: Running, *, chats: int, per_chat: int, latency: float) -> dict[str, Any]:
    """`chats` chats each send `per_chat` messages at once; time until every reply is out."""
    run.fa.latency = latency
    users = list(CROWD)[:chats]
    keys = [marker(u, i) for i in range(per_chat) for u in users]
    started = time.perf_counter()
    for i in range(per_chat):
        for user in users:
            run.tg.push_message(f"please note {marker(user, i)}", user_id=user)
    missing = 0
    try:
        await asyncio.wait_for(
            asyncio.gather(*(run.tg.reply_to(k, 600) for k in keys)), 120 + 10 * latency
        )
    except TimeoutError:
        missing = sum(1 for k in keys if k not in run.tg.replies)
    last = max((run.tg.replies[k][0] for k in keys if k in run.tg.replies), default=started)
    elapsed = last - started
    in_order = sum(1 for u in users if run.tg.reply_order.get(u) == list(range(per_chat)))
    rounds = []  # when each round's model calls came in and its replies went out
    for i in range(per_chat):
        mine = keys[i * chats : (i + 1) * chats]
        calls = sorted(run.fa.called_at[k] - started for k in mine if k in run.fa.called_at)
        out = sorted(run.tg.replies[k][0] - started for k in mine if k in run.tg.replies)
        rounds.append({"model_calls_s": _spread(calls), "replies_s": _spread(out)})
    return {
        "chats": chats,
        "messages": len(keys),
        "model_latency_s": latency,
        "all_replies_s": round(elapsed, 2),
        "messages_per_s": round((len(keys) - missing) / elapsed, 1) if elapsed else None,
        "missing_replies": missing,
        "chats_in_order": in_order,
        "rounds": rounds,
    }


def _spread(times: list[float]) -> list[float]:
    """First, median and last of sorted times (s), or [] for none."""
    return [round(times[int(q * (len(times) - 1))], 2) for q in (0, 0.5, 1)] if times else []


# -- with memories ----------------------------------------------------------------------------


async def overhead_with_memories(
    work: Path,
    *,
    total: int,
    turns: int,
    latency: float,
    idle_wait: float,
    rounds: int,
    alongside: Awaitable[Any] | None = None,
) -> dict[str, Any]:
    """`alongside`: set-up work (the peer's install) that runs while the store fills and is
    finished before anything is timed."""
    data = work / "data"
    print(f"  steward: populating {total:,} memories ...", flush=True)
    built = await populate_memories(data, total)
    if alongside is not None:
        await alongside
    async with steward(data, latency, work / "steward.log") as run:
        await asyncio.sleep(idle_wait)
        await run.vector_side_up()  # the embedder and Chroma load in the background
        print(f"  steward: {turns} turns with {total:,} memories ...", flush=True)
        cpu0 = cpu_seconds(run.proc.pid)
        embed0 = await run.embedder_stats()
        overheads = await drive_turns(run.tg, run.fa, turns, chat=OWNER_TG, start_seq=total)
        cpu_ms = round((cpu_seconds(run.proc.pid) - cpu0) / turns * 1000, 1)
        await asyncio.sleep(1.0)
        embedder = embedder_per_turn(embed0, await run.embedder_stats(), turns)
        rss = tree_rss_mib(run.proc.pid)
    print(f"  memory: retrieval latency at {total:,} memories ...", flush=True)
    retrieval = await retrieval_latency(data, rounds)
    return {
        "retrieval": retrieval,
        "memories": total,
        "populate": built,
        "start_to_ready_s": round(run.ready_s, 3),
        "overhead_ms": summary_ms(overheads),
        "cpu_ms_per_turn": cpu_ms,
        **embedder,
        "rss_mib": round(rss, 1),
    }


async def scheduler(
    work: Path, *, schedules: int, reminders: int, spread_s: float, lead_s: float, latency: float
) -> dict[str, Any]:
    """`schedules` schedules stored (most far in the future); `reminders` of them fall due over
    `spread_s` seconds starting `lead_s` after the process is started, plus one overdue reminder
    that fires as soon as the scheduler is up (its send marks scheduler start-up)."""
    from agent.types import Address, address_to_json
    from memory.clock import SystemClock
    from memory.stores import Stores

    data = work / "data"
    clock = SystemClock()
    stores = await Stores.open(data / "steward.db", clock)
    store = stores.schedules
    owner = await stores.people.owner()
    assert owner is not None
    chat_id = (await stores.people.chat("telegram", str(OWNER_TG))).id  # the owner wrote in it
    destination = address_to_json(Address("telegram", str(OWNER_TG), None))
    far = datetime.now(UTC) + timedelta(days=30)
    print(f"  steward: storing {schedules:,} schedules ...", flush=True)
    inserted = time.perf_counter()

    async def add(text: str, at: datetime) -> None:
        await store.add(
            user_id=owner.id,
            chat_id=chat_id,
            kind="reminder",
            trigger={"type": "once", "at": at.isoformat()},
            payload={"text": text},
            next_run_at=at,
            destination=destination,
        )

    for i in range(schedules - reminders - 1):
        await add(f"someday {i}", far + timedelta(minutes=i))
    insert_s = time.perf_counter() - inserted
    wall0 = time.time() + 1.0  # the process starts right after the last insert
    due: dict[str, float] = {}
    for i in range(reminders):
        at = wall0 + lead_s + spread_s * i / max(1, reminders - 1)
        key = marker(0, i)
        due[key] = at
        await add(f"tick {key}", datetime.fromtimestamp(at, UTC))
    await add(f"overdue {marker(0, 10**6)}", datetime.now(UTC) - timedelta(seconds=5))
    await stores.close()
    await asyncio.sleep(max(0.0, wall0 - time.time()))
    print(f"  steward: {reminders} reminders due over {spread_s:g}s ...", flush=True)
    async with steward(data, latency, work / "steward.log") as run:
        overdue = await run.tg.reply_to(marker(0, 10**6), 120)
        scheduler_up_s = overdue[0] - run.started
        late: list[float] = []
        missing = 0
        give_up = wall0 + lead_s + spread_s + 60.0  # later than a minute counts as missing
        for key, at in due.items():
            try:
                _, wall, _ = await run.tg.reply_to(key, max(0.01, give_up - time.time()))
                late.append(wall - at)
            except TimeoutError:
                missing += 1
    return {
        "schedules": schedules,
        "insert_s": round(insert_s, 1),
        "start_to_ready_s": round(run.ready_s, 3),
        "start_to_scheduler_up_s": round(scheduler_up_s, 3),
        "reminders": reminders,
        "spread_s": spread_s,
        "late_ms": summary_ms(late) if late else None,
        "missing": missing,
    }
