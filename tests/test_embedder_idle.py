"""An idle Steward lets its embedder's model go (STEWARD_EMBEDDER_IDLE, issue 19): `steward run`
with a one-second window releases it after a reply, loads it again for the next message's
search, and answers as before. Observed through GET /metrics (the embedder's own counters)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from fakes.anthropic import FakeAnthropic, Reply
from fakes.telegram import FakeTelegram
from harness import run_env, said_last, steward_process

from agent.config import ConfigError, load_settings

OWNER_TG = 1001


async def _embedder(url: str) -> dict | None:
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return (await response.json())["embedder"] if response.status == 200 else None
    except aiohttp.ClientError:
        return None


async def _until(url: str, check, what: str, process: asyncio.subprocess.Process) -> dict:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(90):  # start-up imports on a busy 2-core machine
        while True:
            assert process.returncode is None, "steward exited"
            stats = await _embedder(url)
            if stats is not None and check(stats):
                return stats
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover


async def test_an_idle_steward_lets_the_embedder_go_and_loads_it_again_for_the_next_message(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda request: Reply.text("re: " + said_last(request)))
    async with FakeTelegram() as tg:
        env = run_env(tmp_path, fake_model, tg, OWNER_TG, STEWARD_EMBEDDER_IDLE="1")
        metrics = f"http://127.0.0.1:{env['STEWARD_HTTP_PORT']}/metrics"
        async with steward_process(env, tmp_path / "steward.log") as process:
            tg.push_message("the boiler needs a service in May", user_id=OWNER_TG)
            await tg.wait_for("sendMessage", timeout=90)
            first = await _until(metrics, lambda s: s["loads"] >= 1, "a load", process)
            released = await _until(
                metrics, lambda s: s["releases"] >= 1, "a release after 1 s idle", process
            )
            assert released["loads"] == first["loads"]
            tg.push_message("when is the boiler service?", user_id=OWNER_TG)
            replies = await tg.wait_for("sendMessage", count=2, timeout=60)
            assert "re: when is the boiler service?" in replies[-1].params["text"]
            again = await _until(
                metrics, lambda s: s["loads"] > released["loads"], "a reload", process
            )
            assert again["calls"] > released["calls"]


@pytest.mark.parametrize("idle", ["120", "0"])
async def test_a_fresh_start_lets_the_model_go_until_the_first_search_unless_told_to_keep_it(
    idle: str, tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Loaded to prove it works and reconcile, then let go at once (idle RSS), not after the
    idle window; the first message loads it again. STEWARD_EMBEDDER_IDLE=0 keeps it."""
    fake_model.on_request(lambda request: Reply.text("re: " + said_last(request)))
    async with FakeTelegram() as tg:
        env = run_env(tmp_path, fake_model, tg, OWNER_TG, STEWARD_EMBEDDER_IDLE=idle)
        metrics = f"http://127.0.0.1:{env['STEWARD_HTTP_PORT']}/metrics"
        async with steward_process(env, tmp_path / "steward.log") as process:
            loaded = await _until(metrics, lambda s: s["loads"] >= 1, "a load", process)
            if idle == "0":
                await asyncio.sleep(3.0)
                assert (await _embedder(metrics) or {}).get("releases") == 0
                return
            released = await _until(
                metrics, lambda s: s["releases"] >= 1, "a release right after start", process
            )
            assert released["loads"] == loaded["loads"] == 1
            tg.push_message("the boiler needs a service in May", user_id=OWNER_TG)
            await tg.wait_for("sendMessage", timeout=60)
            await _until(metrics, lambda s: s["loads"] == 2, "a load for the search", process)


@pytest.mark.parametrize("value", ["-1", "soon", "100000"])
def test_a_bad_idle_window_is_refused_naming_the_setting(
    value: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STEWARD_EMBEDDER_IDLE", value)
    with pytest.raises(ConfigError, match="STEWARD_EMBEDDER_IDLE"):
        load_settings()
