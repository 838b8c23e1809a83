"""`steward run` turns on uvloop (bot/event_loop.py, issue 19) unless STEWARD_EVENT_LOOP=asyncio,
and answers the same on either: a real process, its loop read through GET /metrics, a message
answered through the fake model and Telegram, its settled heap frozen (bot/gc_pauses.py), and a
clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from fakes.anthropic import FakeAnthropic, Reply
from fakes.telegram import FakeTelegram
from harness import make_settings, run_env, said_last, steward_process
from mcp_servers.support import write_config

from agent.config import ConfigError, load_settings
from agent.mcp import build_mcp
from bot.event_loop import loop_factory, loop_name

OWNER_TG = 1001


async def _metrics(url: str, process: asyncio.subprocess.Process) -> dict:
    async with asyncio.timeout(90):  # start-up imports on a busy 2-core machine
        while True:
            assert process.returncode is None, "steward exited"
            try:
                async with aiohttp.ClientSession() as http, http.get(url) as response:
                    if response.status == 200:
                        return await response.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def _frozen(url: str, process: asyncio.subprocess.Process) -> dict:
    """The collector's figures once the start-up heap is frozen (GET /metrics' "gc")."""
    async with asyncio.timeout(90):
        while True:
            gc = (await _metrics(url, process))["gc"]
            if gc["frozen"]:
                return gc
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
async def test_steward_runs_on_the_loop_it_is_told_and_answers_on_it(
    choice: str, tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda request: Reply.text("re: " + said_last(request)))
    async with FakeTelegram() as tg:
        env = run_env(tmp_path, fake_model, tg, OWNER_TG, STEWARD_EVENT_LOOP=choice)
        url = f"http://127.0.0.1:{env['STEWARD_HTTP_PORT']}/metrics"
        async with steward_process(env, tmp_path / "steward.log") as process:
            assert (await _metrics(url, process))["event_loop"] == choice
            tg.push_message("is the loop quick?", user_id=OWNER_TG)
            sent = await tg.wait_for("sendMessage", timeout=90)
            assert "re: is the loop quick?" in sent[-1].params["text"]
            # once memory is up and the turn is done, the start-up heap is frozen out of the
            # collector's walks (bot/gc_pauses.py) and the collections are timed
            gc = await _frozen(url, process)
            assert gc["frozen"] > 50_000 and gc["collections"][2] >= 1
            process.terminate()
            assert await asyncio.wait_for(process.wait(), 30) == 0


def test_the_factory_makes_the_loop_asked_for() -> None:
    factory = loop_factory("uvloop")
    assert factory is not None
    loop = factory()
    try:
        assert loop_name(loop) == "uvloop"
        assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
    finally:
        loop.close()
    assert loop_factory("asyncio") is None


def test_an_unknown_loop_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_EVENT_LOOP", "trio")
    with pytest.raises(ConfigError, match="STEWARD_EVENT_LOOP"):
        load_settings()


@pytest.mark.parametrize("choice", ["uvloop", "asyncio"])
def test_a_missing_mcp_command_is_named_on_either_loop(choice: str, tmp_path: Path) -> None:
    """uvloop's spawn error carries no file name (asyncio's does): the server's state still
    names the command that is missing, as `steward mcp` and the console show it."""
    path = write_config(tmp_path / "mcp.json", {"t": {"command": "/no/such/dir/server"}})
    settings = make_settings(tmp_path / "data", None, STEWARD_MCP_CONFIG=str(path))

    async def start() -> str:
        supervisor, _ = build_mcp(settings, lambda name: None, backoff=(5.0, 5.0))
        await supervisor.start()
        try:
            await supervisor.settled(20)
            assert loop_name() == choice
            return supervisor.states()[0].error or ""
        finally:
            await supervisor.stop()

    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:  # type: ignore[arg-type]
        assert runner.run(start()) == "command not found: /no/such/dir/server"
