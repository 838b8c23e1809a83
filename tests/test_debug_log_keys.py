"""A DEBUG log holds Steward's own records, not the database's statements: aiosqlite printed
each with its parameters, so the fence secret (from which the ids of stored items' fences
come, R183) and every message's and memory's words, stored, were in the log of anyone who
turned DEBUG on. (What a model request holds is the SDK's own DEBUG record, which says so.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from harness import echo_reply, running_steward


async def test_a_debug_log_holds_no_statement_parameters(
    tmp_path: Path, fake_model: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake_model.on_request(echo_reply)
    caplog.set_level(logging.DEBUG)
    async with running_steward(tmp_path, fake_model.base_url, STEWARD_EMBEDDER="none") as h:
        assert await h.say("my locker code is 90817") == "re: my locker code is 90817"
        secret = await h.steward.stores.state.get("fence_secret")
    assert secret
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) > 10  # DEBUG records were kept: Steward's own
    assert secret not in logged
    assert not [r for r in caplog.records if r.name == "aiosqlite"]
