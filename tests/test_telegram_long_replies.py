"""Replies the model commonly writes, as the owner gets them on Telegram: the real core and the
Telegram channel on the loopback Bot API fake. Long replies arrive in several messages; every
part must still read as what the model wrote (code as code, a list as a list, a link's URL
shown), and a note about an answer cut off must not land inside its code block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fakes.anthropic import FakeAnthropic, Reply
from fakes.telegram import FakeTelegram
from harness import OWNER, running_steward, telegram_channel

from memory.stores import Stores

OWNER_TG = 1001


@asynccontextmanager
async def _telegram(tmp_path: Path, model: FakeAnthropic) -> AsyncIterator[FakeTelegram]:
    """Steward (streaming off: the reply is sent whole) with its Telegram channel on the fake."""
    async with (
        FakeTelegram() as tg,
        running_steward(
            tmp_path,
            model.base_url,
            STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}",
            STEWARD_STREAMING="off",
        ) as h,
        telegram_channel(h, tg),
    ):
        tg.push_message("go", user_id=OWNER_TG)
        await _settled(h.steward.stores)
        yield tg


async def _settled(stores: Stores) -> None:
    """Once the reply went out, every part of it."""
    for _ in range(1200):
        outs = await stores.messages.all(direction="out")
        if outs and outs[-1].status != "pending":
            assert outs[-1].status == "sent", outs[-1]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the reply was never sent")


def _messages(tg: FakeTelegram) -> list[dict[str, Any]]:
    """What Telegram shows for each message sent: its text and entities."""
    return [call.result for call in tg.calls_to("sendMessage") if call.status == 200]


def _code(message: dict[str, Any], kinds: tuple[str, ...] = ("pre",)) -> list[str]:
    text = message["text"]
    return [
        text[e["offset"] : e["offset"] + e["length"]]
        for e in message.get("entities") or []
        if e["type"] in kinds
    ]


def _prose(message: dict[str, Any]) -> str:
    """The text outside code entities."""
    covered: set[int] = set()
    for e in message.get("entities") or []:
        if e["type"] in ("pre", "code"):
            covered.update(range(e["offset"], e["offset"] + e["length"]))
    return "".join(ch for i, ch in enumerate(message["text"]) if i not in covered)


async def test_a_reference_style_link_keeps_its_url(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text(
        "The full schedule is in [the city notice][1].\n\n[1]: https://example.org/notice-42"
    )
    async with _telegram(tmp_path, fake_model) as tg:
        (message,) = _messages(tg)
    assert "https://example.org/notice-42" in message["text"]
    (link,) = [e for e in message["entities"] if e["type"] == "text_link"]
    assert link["url"] == "https://example.org/notice-42"


async def test_code_in_a_numbered_step_arrives_as_written(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text(
        "1. Put this in `job.py`:\n\n"
        "   ```python\n"
        "   import os\n"
        "   if os.getcwd():\n"
        "       print(os.getcwd())\n"
        "   ```\n"
        "2. Run it."
    )
    async with _telegram(tmp_path, fake_model) as tg:
        (message,) = _messages(tg)
    assert _code(message) == ["import os\nif os.getcwd():\n    print(os.getcwd())"]


async def test_a_long_code_block_in_a_list_item_stays_code_across_parts(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    code = [f"total_{i} = a_{i}*b*c_{i}  # step {i}" for i in range(150)]
    fake_model.reply_text(
        "1. Replace the function:\n\n   ```python\n"
        + "\n".join("   " + line for line in code)
        + "\n   ```\n\n2. Run the tests with `make test`.\n\nDone."
    )
    async with _telegram(tmp_path, fake_model) as tg:
        messages = _messages(tg)
    assert len(messages) >= 2
    delivered = [line for m in messages for block in _code(m) for line in block.split("\n")]
    assert delivered == code, "every code line arrives as code, unchanged, once"
    prose = "".join(_prose(m) for m in messages)
    assert "Run the tests" in prose and "Done." in prose
    assert "```" not in prose and "*b*" not in prose


async def test_a_long_nested_list_stays_a_list_across_parts(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    lines = []
    for i in range(2):
        lines.append(f"- **Week {i}**: the plan")
        lines += [
            f"    - task {i}.{j}: water the *plants* and check the `mail` box" for j in range(60)
        ]
    fake_model.reply_text("\n".join(lines))
    async with _telegram(tmp_path, fake_model) as tg:
        messages = _messages(tg)
    assert len(messages) >= 2
    for message in messages:
        assert "`mail`" not in message["text"] and "*plants*" not in message["text"]
        assert not _code(message), "a part of the list became a code block"
    tasks = [line for m in messages for line in m["text"].split("\n") if "• task" in line]
    assert len(tasks) == 120


async def test_a_long_numbered_list_goes_on_with_its_numbers(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    # numbered as models often number: every item "1."; shown 1 … 80 across the parts
    fake_model.reply_text("\n".join("1. Step: " + "do the thing " * 8 for _ in range(80)))
    async with _telegram(tmp_path, fake_model) as tg:
        messages = _messages(tg)
    assert len(messages) >= 2
    numbers = [int(line.split(".")[0]) for m in messages for line in m["text"].split("\n") if line]
    assert numbers == list(range(1, 81))


@pytest.mark.parametrize(
    ("stop_reason", "note"), [("max_tokens", "cut off"), ("refusal", "declined to go on")]
)
async def test_the_note_on_an_unfinished_answer_is_not_inside_its_code_block(
    tmp_path: Path, fake_model: FakeAnthropic, stop_reason: str, note: str
) -> None:
    fake_model.reply(
        Reply.text(
            "Here is the script:\n\n```python\nimport os\nfor name in os.listdir('.'):\n"
            "    print(name",
            stop_reason=stop_reason,
        )
    )
    async with _telegram(tmp_path, fake_model) as tg:
        (message,) = _messages(tg)
    assert _code(message) == ["import os\nfor name in os.listdir('.'):\n    print(name"]
    assert note in _prose(message)


async def test_a_long_answer_cut_off_inside_code_keeps_every_part_as_code(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """STEWARD_MAX_TOKENS cuts long code answers mid-block: the fence is never closed, and the
    answer is longer than one message."""
    body = ["def main():"] + [
        f"    total = total + row[{i}]*weight[{i}]*scale  # step {i}" for i in range(140)
    ]
    fake_model.reply(
        Reply.text("Here is the script:\n\n```python\n" + "\n".join(body), stop_reason="max_tokens")
    )
    async with _telegram(tmp_path, fake_model) as tg:
        messages = _messages(tg)
    assert len(messages) >= 2
    delivered = [line for m in messages for block in _code(m) for line in block.split("\n")]
    assert delivered == body
    assert "cut off" in _prose(messages[-1])
