"""Approve in the web console answers once the call ran; the turn goes on in the chat (R265).

The page had waited for the whole resumed turn (behind the chat's current turn, then the
model's calls): with a slow model the owner watched a loading page for minutes, with nothing
saying the call had run, which invites pressing again or closing the tab."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from harness import running_steward, until
from test_web_security import Web
from trust_world import instruction, obedient_model

from bot.http import HttpServer
from bot.web.serve import start_console


@pytest.fixture
async def slow_web(tmp_path: Path) -> AsyncIterator[tuple[Web, FakeAnthropic]]:
    async with FakeAnthropic() as model:
        model.on_request(obedient_model)
        async with running_steward(tmp_path / "data", model.base_url) as h:
            http = HttpServer("127.0.0.1", 0)
            assert await start_console(h.steward, http, [h.channel]) is not None
            try:
                yield Web(h, http.url, None, http), model  # type: ignore[arg-type]
            finally:
                await http.stop()


async def test_approve_on_the_web_answers_before_the_resumed_turn_ends(
    slow_web: tuple[Web, FakeAnthropic],
) -> None:
    web, model = slow_web
    await web.h.say(instruction("shell", {"command": "mkdir made-on-the-web"}))
    [pending] = await web.h.steward.stores.approvals.pending()
    cookie = await web.login()
    token = await web.csrf(cookie)
    sent_before = len(web.h.channel.texts())
    asked_before = len(model.requests)
    model.latency = 3.0  # the resumed turn's model call
    response, _ = await web.request(
        "POST",
        f"/approvals/{pending.id}",
        cookie=cookie,
        headers=web.origin(),
        data={"csrf": token, "choice": "approve"},
    )
    assert response.status == 303
    # the call ran before the page answered ...
    assert (web.h.settings.workspace / "made-on-the-web").is_dir()
    # ... and the turn's reply had not come yet: the page did not wait for the model
    assert len(web.h.channel.texts()) == sent_before
    # the turn goes on in the chat, and its reply arrives there
    await until(lambda: len(model.requests) > asked_before, "the resumed turn's model call", 10)
    await until(lambda: len(web.h.channel.texts()) > sent_before, "the resumed turn's reply", 15)
