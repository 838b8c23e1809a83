"""Two messages sent quickly, while the first is being answered: the next turn's history pairs
each answer with the message it answers (R156: it read "first / second" as one user turn and
"re: first / re: second" as one answer)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from harness import running_steward, said_last


def _texts(message: dict) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return " / ".join(b["text"] for b in content if b.get("type") == "text")


async def test_answers_follow_the_messages_they_answer_in_the_history(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.latency = 0.3
    fake_model.on_request(lambda request: Reply.text("re: " + said_last(request)))
    async with running_steward(tmp_path, fake_model.base_url) as h:
        first, second, third = (
            h.message(text, platform_id=str(n))
            for n, text in enumerate(("first", "second", "third"))
        )
        running = [asyncio.create_task(h.router.dispatch(first))]
        await asyncio.sleep(0.05)  # the second and third come while the first is answered
        running += [asyncio.create_task(h.router.dispatch(m)) for m in (second, third)]
        await asyncio.gather(*running)
        await h.say("fourth")
    assert h.channel.texts()[:3] == ["re: first", "re: second", "re: third"]
    last = next(r for r in reversed(fake_model.requests) if said_last(r) == "fourth")
    history = [(m["role"], _texts(m)) for m in last.messages[:-1]]
    pairs = [(m, t) for m, t in history if "first" in t or "second" in t or "third" in t]
    assert pairs == [
        ("user", "first"),
        ("assistant", "re: first"),
        ("user", "second"),
        ("assistant", "re: second"),
        ("user", "third"),
        ("assistant", "re: third"),
    ], history
