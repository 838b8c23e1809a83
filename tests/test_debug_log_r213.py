"""R213: with STEWARD_LOG_LEVEL=DEBUG the Anthropic SDK logged every model request whole (each
message of the history, every recalled memory), so a memory forgotten later stayed in the log
for good. Its logger is kept at WARNING as the HTTP clients' are: what Steward logs of a turn
is its own lines.

The real `_configure_logging` and core against the fake Anthropic server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from harness import running_steward

from agent.config import load_settings
from bot.cli import _configure_logging


async def test_a_model_request_never_reaches_a_debug_log(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _configure_logging(load_settings(STEWARD_LOG_LEVEL="DEBUG"))  # as `steward run` does
    fake_model.reply_text("Noted.")
    async with running_steward(tmp_path, fake_model.base_url) as h:
        await h.say("I was diagnosed with zebra-fever-4471 last month.")
    assert fake_model.requests, "the model was asked"
    leaked = [r.name for r in caplog.records if "zebra-fever-4471" in r.getMessage()]
    assert leaked == [], leaked
