"""The first model call after a start does its slow first-time work off the event loop.

Building the SDK's HTTP client the first time imports its transport (httpcore2, trio,
truststore: ~0.2 s) and loads the trust store; done on the loop, the first turn after a start
froze every chat (R260: 120-260 ms). A fresh interpreter records, by an audit hook, which
modules are imported on the loop's thread during `warm_up()` and two model calls."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading
    sys.path[:0] = ["tests"]
    import bot.app  # what `steward run` has imported when the first turn comes
    from fakes.anthropic import FakeAnthropic
    from harness import echo_reply
    from agent.model import AnthropicModel, warm_up

    on_loop = []
    watching = False
    loop_thread = threading.get_ident()

    def hook(event, args):
        if watching and event == "import" and threading.get_ident() == loop_thread:
            on_loop.append(args[0])

    sys.addaudithook(hook)

    async def main():
        global watching
        async with FakeAnthropic() as fake:
            fake.on_request(echo_reply)
            model = AnthropicModel(
                api_key="sk-ant-test", model="claude-sonnet-4-5",
                base_url=fake.base_url, max_retries=0,
            )
            watching = True
            await warm_up()
            for _ in range(2):
                reply = await model.complete(
                    system=[{"type": "text", "text": "s"}],
                    messages=[{"role": "user", "content": "hi"}],
                    tools=[],
                )
            watching = False
            assert reply is not None
        for name in sorted(set(on_loop)):
            print(name)

    asyncio.run(main())
    """
)


def test_the_first_model_call_imports_nothing_heavy_on_the_loop() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = done.stdout.split()
    heavy = [
        n
        for n in imported
        if n.split(".")[0] in {"anthropic", "httpcore2", "trio", "truststore", "h11"}
    ]
    assert heavy == [], f"imported on the event loop's thread: {heavy}"
