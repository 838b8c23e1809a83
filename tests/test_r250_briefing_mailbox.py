"""R250: a briefing whose only news is a mailbox that cannot be read (a changed password, the
server down) paid a model call every morning, only to "say so in one line", until the mailbox
was fixed; a failed feed in the same case goes out as fixed text with a footer (R176)."""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic
from harness import echo_reply, running_steward
from mailservers import PASSWORD, USER, free_port


async def test_a_briefing_whose_only_news_is_an_unreadable_mailbox_calls_no_model(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(echo_reply)
    closed = free_port()  # nothing listens there
    settings = {
        "EMAIL_IMAP_URL": f"imaps://{USER.replace('@', '%40')}@127.0.0.1:{closed}",
        "EMAIL_PASSWORD": PASSWORD,
        "EMAIL_FROM": f"Me <{USER}>",
    }
    async with running_steward(tmp_path / "data", fake_model.base_url, **settings) as h:
        assert "unread mail" in await h.say("/briefing mail on")
        before = len(fake_model.requests)
        said = await h.say("/briefing now")
        calls = len(fake_model.requests) - before
    assert calls == 0, said
    assert said.startswith("Good morning. Nothing new in your feeds today"), said
    assert "The mailbox could not be read this time: " in said, said
