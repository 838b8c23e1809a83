"""Replies first at start-up (issue 19): a message already waiting when `steward run` starts is
answered before the vector side (embedder, Chroma) and the web console start, since those would
share the interpreter (one GIL) with that first turn. Recall serves keyword-only meanwhile.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.telegram import FakeTelegram
from harness import run_env, steward_process

from agent.sequencer import ChatSequencer

OWNER_TG = 1001


async def _listening(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def test_quiet_waits_for_every_chat_including_those_that_come_in_meanwhile() -> None:
    seq = ChatSequencer()
    first = seq.take("a")
    quiet = asyncio.create_task(seq.quiet())
    await asyncio.sleep(0)
    second = seq.take("b")  # came in while quiet() waited
    first.release()
    await asyncio.sleep(0.01)
    assert not quiet.done()
    second.release()
    await asyncio.wait_for(quiet, 1)
    await asyncio.wait_for(seq.quiet(), 1)  # nothing in flight: at once


async def test_a_message_waiting_at_start_is_answered_before_the_console_starts(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    release = asyncio.Event()

    async def held(request: RecordedRequest) -> Reply:
        await release.wait()
        return Reply.text("pong")

    fake_model.on_request(held)
    async with FakeTelegram() as tg:
        tg.push_message("hello there", user_id=OWNER_TG)
        env = run_env(tmp_path, fake_model, tg, OWNER_TG)
        healthz = f"http://127.0.0.1:{env['STEWARD_HTTP_PORT']}/healthz"
        log = tmp_path / "steward.log"
        async with steward_process(env, log) as process:
            try:
                async with asyncio.timeout(60):  # the SDK's import, on a busy 2-core machine
                    while not fake_model.requests:
                        assert process.returncode is None, f"steward exited; see {log}"
                        await asyncio.sleep(0.05)
                # The SDK is imported (its request came): before, the console started now.
                for _ in range(20):
                    assert not await _listening(healthz), "the console started mid-turn"
                    await asyncio.sleep(0.1)
                release.set()
                (reply,) = await tg.wait_for("sendMessage", timeout=30)
                assert "pong" in reply.params["text"]
                async with asyncio.timeout(60):  # then the rest starts
                    while not await _listening(healthz):
                        assert process.returncode is None, f"steward exited; see {log}"
                        await asyncio.sleep(0.05)
            finally:
                release.set()
