"""Shared pieces of `make bench`: timed fakes, process helpers, percentiles.

Both peers are measured the same way: a FakeTelegram subclass timestamps the moment a getUpdates
response hands an update out and the moment a sendMessage arrives; FakeAnthropic answers with a
fixed latency and records every request's usage. Turn overhead = sendMessage arrival - update
handed out - latency x the model calls made for that turn.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply  # noqa: E402
from fakes.telegram import FakeTelegram  # noqa: E402

MARK = re.compile(r"\bq(\d+)x(\d+)q\b")  # q<chat>x<seq>q tags a benchmark message


def marker(chat: int, seq: int) -> str:
    return f"q{chat}x{seq}q"


class TimedTelegram(FakeTelegram):
    """Timestamps hand-outs and replies; resolves a future per marker when its reply arrives."""

    def __init__(self) -> None:
        super().__init__()
        # ids go on rising across restarts: a restarted bot confirms its stored offset and
        # drops message ids it has seen, as it would with the real server
        base = int(time.time() * 1000)
        self._next_update_id = base
        self._message_ids = itertools.count(base)
        self.handed_out: dict[int, float] = {}
        self.first_poll_at: float | None = None
        self.replies: dict[str, tuple[float, float, str]] = {}  # marker -> (perf, wall, text)
        self.reply_order: dict[int, list[int]] = {}  # chat -> seqs in the order replies came
        self.sends = 0
        self._waiters: dict[str, asyncio.Future[tuple[float, float, str]]] = {}
        self._methods["setmessagereaction"] = lambda params: True  # nanobot reacts to messages
        self._canonical["setmessagereaction"] = "setMessageReaction"

    async def _get_updates(self, params: dict[str, Any], request: Any) -> list[Any]:
        if self.first_poll_at is None:
            self.first_poll_at = time.perf_counter()
        ready = await super()._get_updates(params, request)
        now = time.perf_counter()
        for update in ready:
            self.handed_out.setdefault(update["update_id"], now)
        return ready

    def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        perf, wall = time.perf_counter(), time.time()
        result = super()._m_sendMessage(params)
        self.sends += 1
        text = str(params.get("text", ""))
        for found in MARK.finditer(text):
            key = found.group(0)
            if key in self.replies:
                continue
            self.replies[key] = (perf, wall, text)
            self.reply_order.setdefault(int(found.group(1)), []).append(int(found.group(2)))
            waiter = self._waiters.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(self.replies[key])
        return result

    async def reply_to(self, key: str, timeout: float = 60.0) -> tuple[float, float, str]:  # noqa: ASYNC109
        if key in self.replies:
            return self.replies[key]
        future = self._waiters.setdefault(key, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(future, timeout)


class TimedAnthropic(FakeAnthropic):
    """Answers "pong <marker>" to benchmark turns, records usage and time spent per request."""

    def __init__(self, latency: float) -> None:
        super().__init__()
        self.latency = latency
        self.busy: list[float] = []
        self.called_at: dict[str, float] = {}  # marker -> when its turn's model call came in
        self.usages: list[tuple[str | None, dict[str, Any]]] = []  # (marker, usage)
        self.calls_for: dict[str, int] = {}
        self.on_request(self._answer)

    def _answer(self, request: RecordedRequest) -> Reply:
        if request.system_text.startswith("You keep the long-term memory"):
            # Steward's memory upkeep (extraction / compaction), off the reply path
            return Reply.text('{"memories": [], "summary": "Benchmark chatter.", "facts": []}')
        keys = MARK.findall(request.last_user_text)
        if keys:
            return Reply.text(f"pong {marker(int(keys[-1][0]), int(keys[-1][1]))}")
        return Reply.text("[]")  # memory extraction and other side calls: nothing to add

    def _message(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        message = super()._message(reply, body)
        key = None
        for block in reply.content:
            if found := MARK.search(str(block.get("text", ""))):
                key = found.group(0)
        if key:
            self.calls_for[key] = self.calls_for.get(key, 0) + 1
        self.usages.append((key, dict(message.get("usage") or {})))
        return message

    async def _messages(self, request: Any) -> Any:
        started = time.perf_counter()
        try:
            text = RecordedRequest(body=await request.json(), headers={}).last_user_text
        except ValueError:  # not JSON: the fake answers 400
            text = ""
        if keys := MARK.findall(text):
            self.called_at.setdefault(marker(int(keys[-1][0]), int(keys[-1][1])), started)
        try:
            return await super()._messages(request)
        finally:
            self.busy.append(time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tree_rss_mib(pid: int) -> float:
    """VmRSS summed over pid and its descendants, MiB."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(k) for k in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total / 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dir_mib(path: Path) -> float:
    if not path.exists():
        return 0.0
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": round(pct(ms, 50), 1),
        "p95": round(pct(ms, 95), 1),
        "p99": round(pct(ms, 99), 1),
        "max": round(max(ms), 1) if ms else float("nan"),
        "mean": round(statistics.mean(ms), 1) if ms else float("nan"),
    }


def token_figures(fa: TimedAnthropic, chat: int, turns: int) -> dict[str, Any]:
    """Input tokens per turn and the share read from the prompt cache, over `turns` turns."""
    keys = {marker(chat, i) for i in range(turns)}
    per_turn: dict[str, int] = {}
    read = total = 0
    for key, usage in fa.usages:
        if key not in keys:
            continue
        fresh = int(usage.get("input_tokens") or 0)
        created = int(usage.get("cache_creation_input_tokens") or 0)
        cached = int(usage.get("cache_read_input_tokens") or 0)
        per_turn[key] = per_turn.get(key, 0) + fresh + created + cached
        read += cached
        total += fresh + created + cached
    return {
        "turns": len(per_turn),
        "input_tokens_per_turn_mean": round(total / max(1, len(per_turn))),
        "input_tokens_first_last": [
            per_turn.get(marker(chat, 0)),
            per_turn.get(marker(chat, turns - 1)),
        ],
        "cache_read_share": round(read / total, 3) if total else None,
    }


async def drive_turns(
    tg: TimedTelegram,
    fa: TimedAnthropic,
    turns: int,
    *,
    chat: int = 1001,
    start_seq: int = 0,
    gap: float = 0.0,
    timeout: float = 60.0,  # noqa: ASYNC109
) -> list[float]:
    """Send `turns` messages one after another in one chat; per-turn overhead in seconds."""
    overheads: list[float] = []
    for i in range(start_seq, start_seq + turns):
        if gap and i > start_seq:
            await asyncio.sleep(gap)
        key = marker(chat, i)
        update_id = tg.push_message(f"please note {key}", user_id=chat)
        sent_at, _, _ = await tg.reply_to(key, timeout)
        calls = fa.calls_for.get(key, 1)
        overheads.append(sent_at - tg.handed_out[update_id] - calls * fa.latency)
    return overheads


async def first_poll(
    tg: TimedTelegram, proc: asyncio.subprocess.Process, started: float, limit: float = 120.0
) -> str | None:
    """Wait for the process's first getUpdates (it is ready); why not, if it never came."""
    while tg.first_poll_at is None:
        if proc.returncode is not None:
            return f"exited ({proc.returncode})"
        if time.perf_counter() - started > limit:
            return "never polled Telegram"
        await asyncio.sleep(0.002)
    return None


async def terminate(proc: asyncio.subprocess.Process, timeout: float = 20.0) -> float:  # noqa: ASYNC109
    """SIGTERM, wait (the fakes keep serving meanwhile); seconds it took."""
    started = time.perf_counter()
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return time.perf_counter() - started
