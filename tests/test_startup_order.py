"""Replies first at start-up (issue 19): a message already waiting when `steward run` starts is
answered before the vector side (embedder, Chroma) and the web console start, since those would
share the interpreter (one GIL) with that first turn. Recall serves keyword-only meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.telegram import FakeTelegram

from agent.sequencer import ChatSequencer

OWNER_TG = 1001


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
    port = _free_port()
    healthz = f"http://127.0.0.1:{port}/healthz"
    async with FakeTelegram() as tg:
        tg.push_message("hello there", user_id=OWNER_TG)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ANTHROPIC_", "STEWARD_", "TELEGRAM_", "SLACK_", "CHROMA_"))
        } | {
            "STEWARD_HOME": str(tmp_path),
            "STEWARD_DATA_DIR": str(tmp_path / "data"),
            "STEWARD_OWNER": f"telegram:{OWNER_TG}",
            "ANTHROPIC_API_KEY": "sk-ant-test",
            "ANTHROPIC_BASE_URL": fake_model.base_url,
            "STEWARD_MODEL_RETRIES": "0",
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE": tg.base_url,
            "STEWARD_HTTP_HOST": "127.0.0.1",
            "STEWARD_HTTP_PORT": str(port),
        }
        log = tmp_path / "steward.log"
        with log.open("wb") as err:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "run",
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=err,
                stderr=err,
            )
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
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(process.wait(), 20)
                    except TimeoutError:
                        process.kill()
                        await process.wait()
