"""The services Steward talks to misbehave on demand; Steward recovers every time and tells the
user when it could not do what they asked. One `steward run` subprocess serves every case (a
start costs seconds); each case is counted on its own in the summary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from fakes.anthropic import FakeAnthropic, RecordedRequest, Reply
from fakes.slack import FakeSlack, event_body, message_event, post_signed
from faults_support import (
    OWNER_SLACK,
    OWNER_TG,
    StewardProcess,
    eventually,
    record,
    steward_env,
)
from unruly import UnrulyTelegram

GAVE_UP = "Sorry, I couldn't answer:"


def _model(request: RecordedRequest) -> Reply:
    if request.tool_results:
        return Reply.text("Done with the tools.")
    return Reply.text("re: " + request.last_user_text.rsplit("</context>", 1)[-1].strip())


async def test_steward_recovers_from_every_misbehaving_service(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(_model)
    failures: list[str] = []
    async with UnrulyTelegram() as tg, FakeSlack() as sl:
        env = steward_env(
            tmp_path / "data",
            fake_model,
            tg,
            sl,
            SLACK_SIGNING_SECRET=sl.signing_secret,
            STEWARD_MODEL_RETRIES="2",
        )
        base = f"http://127.0.0.1:{env['STEWARD_HTTP_PORT']}"
        steward = StewardProcess(env, tmp_path / "steward.log")
        await steward.start()
        await tg.wait_for("getUpdates", timeout=40)

        async def case(name: str, run: Callable[[], Awaitable[None]]) -> None:
            try:
                await run()
                assert steward.alive, "Steward exited"
                record("misbehaving fakes", True)
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
                record("misbehaving fakes", False)

        async def telegram_answer(text: str, timeout: float = 20) -> None:  # noqa: ASYNC109
            tg.push_message(text, user_id=OWNER_TG)
            await eventually(
                lambda: f"re: {text}" in tg.sent_texts(OWNER_TG), timeout, f"the answer to {text!r}"
            )

        async def telegram_says(text: str, expected: str, timeout: float = 25) -> str:  # noqa: ASYNC109
            before = len(tg.sent_texts(OWNER_TG))
            tg.push_message(text, user_id=OWNER_TG)
            said = await eventually(
                lambda: next((s for s in tg.sent_texts(OWNER_TG)[before:] if expected in s), None),
                timeout,
                f"{expected!r} after {text!r}",
            )
            return str(said)

        # -- Telegram ------------------------------------------------------------------------
        async def tg_429() -> None:
            tg.fail_next("sendMessage", status=429, retry_after=1)
            await telegram_answer("t429 hello")
            assert [c.status for c in tg.calls_to("sendMessage")][-2:] == [429, 200]

        async def tg_502() -> None:
            tg.fail_next("sendMessage", status=502, times=2)
            await telegram_answer("t502 hello")

        async def tg_poll_errors() -> None:
            tg.fail_next("getUpdates", status=502, times=2)
            tg.fail_next("getUpdates", status=429, retry_after=1)
            await asyncio.sleep(0.5)
            await telegram_answer("tpoll hello", timeout=30)

        async def tg_dropped() -> None:
            tg.drop_next("sendMessage", times=2)
            await telegram_answer("tdrop hello")
            assert tg.sent_texts(OWNER_TG).count("re: tdrop hello") == 1

        async def tg_dropped_poll() -> None:
            tg.drop_next("getUpdates", times=2)
            await asyncio.sleep(0.5)
            await telegram_answer("tdroppoll hello", timeout=30)

        async def tg_slow() -> None:
            tg.slow_next("sendMessage", 2)
            await telegram_answer("tslow hello")
            tg.stall_polls = True
            tg.push_message("tstall hello", user_id=OWNER_TG)
            await asyncio.sleep(1.5)
            tg.stall_polls = False
            await eventually(lambda: "re: tstall hello" in tg.sent_texts(OWNER_TG), 20, "stall")

        for name, run in [
            ("telegram 429 retry_after", tg_429),
            ("telegram 502", tg_502),
            ("telegram getUpdates 502/429", tg_poll_errors),
            ("telegram dropped connection (sendMessage)", tg_dropped),
            ("telegram dropped connection (getUpdates)", tg_dropped_poll),
            ("telegram slow replies and a stalled poll", tg_slow),
        ]:
            await case(name, run)

        # -- Slack ---------------------------------------------------------------------------
        async def slack_rate_limit() -> None:
            async with aiohttp.ClientSession() as http:
                await eventually(lambda: _healthy(http, f"{base}/healthz"), 20, "the HTTP server")
            sl.rate_limit_next("chat.postMessage", retry_after=1)
            event = message_event("slack hello", user=OWNER_SLACK, channel="DOWNER")
            status, _ = await post_signed(
                f"{base}/slack/events", sl.signing_secret, json_body=event_body(event)
            )
            assert status == 200

            def answers() -> int:
                posts = sl.posted("DOWNER")
                return sum(1 for c in posts if c.params.get("text") == "re: slack hello")

            await eventually(lambda: answers() >= 2, 20, "the Slack answer after the rate limit")
            await asyncio.sleep(0.5)
            assert answers() == 2, "rate-limited once, so posted exactly twice"

        await case("slack rate limit", slack_rate_limit)

        # -- the model -----------------------------------------------------------------------
        async def model_retried(status: int) -> None:
            fake_model.fail(status, retry_after=0.2)
            await telegram_answer(f"m{status} hello")

        async def model_gives_up() -> None:
            fake_model.fail(500, times=3, retry_after=0.1)
            said = await telegram_says("mgiveup hello", GAVE_UP)
            assert "the model API is having trouble" in said, said
            await telegram_answer("mafter hello")

        async def model_overloaded_gives_up() -> None:
            fake_model.fail(529, times=3, retry_after=0.1)
            said = await telegram_says("moverload hello", GAVE_UP)
            assert "overloaded" in said, said

        async def model_rate_limited_gives_up() -> None:
            fake_model.fail(429, times=3, retry_after=0.1)
            said = await telegram_says("mrate hello", GAVE_UP)
            assert "rate-limiting" in said, said

        async def model_cut_once() -> None:
            fake_model.cut_stream()
            await telegram_answer("mcut hello")

        async def model_cut_always() -> None:
            # One streamed attempt (a break mid-stream is asked again without streaming), then
            # the non-streamed request and its two retries.
            for _ in range(4):
                fake_model.cut_stream()
            said = await telegram_says("mcut3 hello", GAVE_UP)
            assert "could not reach the model API" in said, said
            await telegram_answer("mcutafter hello")

        async def model_malformed_tool_call() -> None:
            fake_model.malformed_tool_call("read_file")
            before = len(tg.sent_texts(OWNER_TG))
            tg.push_message("mmalformed hello", user_id=OWNER_TG)
            await eventually(lambda: len(tg.sent_texts(OWNER_TG)) > before, 20, "an answer")
            said = tg.sent_texts(OWNER_TG)[before:]
            assert said and all(s.strip() for s in said), said
            answered = [r.tool_results for r in fake_model.requests if r.tool_results]
            if answered:  # not streamed: the model hears what was wrong
                assert answered[-1][0].get("is_error") is True, answered
            else:  # streamed: an unparsable tool input breaks the stream; the step is asked again
                streamed = [bool(r.body.get("stream")) for r in fake_model.requests[-2:]]
                assert streamed == [True, False], streamed
            await telegram_answer("mmalformedafter hello")

        for name, run in [
            ("model 429 (retried)", lambda: model_retried(429)),
            ("model 529 (retried)", lambda: model_retried(529)),
            ("model 500 (retried)", lambda: model_retried(500)),
            ("model 500 until it gives up", model_gives_up),
            ("model 529 until it gives up", model_overloaded_gives_up),
            ("model 429 until it gives up", model_rate_limited_gives_up),
            ("model response cut mid-body (retried)", model_cut_once),
            ("model response cut every time", model_cut_always),
            ("model malformed tool call", model_malformed_tool_call),
        ]:
            await case(name, run)

        assert steward.alive, steward.current_log()[-3000:]
        code = await steward.stop()
    assert not failures, "\n".join(failures) + f"\nlog: {steward.log}"
    assert code == 0, steward.current_log()[-3000:]
    assert "Traceback" not in steward.log_text(), steward.log_text()[-5000:]


async def _healthy(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False
