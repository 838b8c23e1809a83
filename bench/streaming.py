"""Streamed replies: how soon the first words are visible after the model's first token.

    python bench/streaming.py           # 20 turns in a private chat (draft), 20 in a group (edit)
    python bench/streaming.py --turns 10

The real core (router, turn loop, the Anthropic SDK streaming from the loopback FakeAnthropic)
and the real Telegram channel (its client against the loopback FakeTelegram) run in this process, so
both ends stamp `time.perf_counter()`: the fake model when it writes a streamed answer's first
text delta, the fake Telegram when the first preview request (sendMessageDraft in a private chat,
the preview sendMessage in a group) arrives. Target (issue 17): <= 300 ms. Prints p50/p95 and
whether the target was met (a missed target is printed, not an error: `make bench` goes on).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, FakeAnthropic, FakeTelegram, Reply, pct

sys.path.insert(0, str(ROOT))
from harness import OWNER, running_steward

from agent.types import Address, ChatKind, IncomingMessage
from bot.channels.telegram import TelegramChannel
from memory.people import Identity

OWNER_TG = 1001
GROUP = -1001234567890
TARGET_MS = 300.0
ANSWER = "Here is what I found: " + "a steady stream of words, one after another. " * 8


async def measure(turns: int, delay: float) -> dict[str, list[float]]:
    """Seconds from the first token to the first preview, per turn, per chat kind."""
    found: dict[str, list[float]] = {"draft (private chat)": [], "edit (group)": []}
    async with FakeAnthropic() as model, FakeTelegram() as tg:
        model.stream_delay = delay
        model.on_request(lambda request: Reply.text(ANSWER))
        with tempfile.TemporaryDirectory(prefix="steward-bench-stream-") as scratch:
            async with running_steward(
                Path(scratch),
                model.base_url,
                STEWARD_OWNER=f"{OWNER},telegram:{OWNER_TG}",
                STEWARD_EMBEDDER="none",
            ) as h:
                channel = TelegramChannel(token=tg.token, api_base=tg.base_url, poll_timeout=1)
                h.steward.switchboard.register(channel.name, channel)
                await channel.start(h.router.dispatch)
                try:
                    for name, chat, method in (
                        ("draft (private chat)", OWNER_TG, "sendMessageDraft"),
                        ("edit (group)", GROUP, "sendMessage"),
                    ):
                        kind = ChatKind.PRIVATE if chat > 0 else ChatKind.GROUP
                        for n in range(turns):
                            seen = len(tg.calls_to(method))
                            tokens = len(model.first_token_at)
                            message = IncomingMessage(
                                sender=Identity("telegram", str(OWNER_TG)),
                                address=Address("telegram", str(chat)),
                                text=f"@{tg.bot_username} tell me something ({n})",
                                platform_message_id=f"{chat}:{n + 1}",
                                chat_kind=kind,
                            )
                            await h.router.dispatch(message)
                            first = tg.calls_to(method)[seen]
                            found[name].append(first.at - model.first_token_at[tokens])
                finally:
                    await channel.stop()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20, help="turns per chat kind")
    parser.add_argument("--delay", type=float, default=0.03, help="s between streamed events")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    found = asyncio.run(measure(args.turns, args.delay))
    print(
        f"Streamed replies: first words visible after the model's first token ({args.turns} turns)"
    )
    for name, seconds in found.items():
        ms = [s * 1000 for s in seconds]
        p50, p95 = pct(ms, 50), pct(ms, 95)
        verdict = "met" if p95 <= TARGET_MS else "MISSED"
        print(f"  {name:<22} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   target <= 300 ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
