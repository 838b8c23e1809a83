"""Start-up imports only what the first poll and the first reply need (issue 19).

A fresh interpreter imports `bot.app` and builds the core the way `steward run` does, with the
default settings (no MCP file, no mailbox, no Slack): the heavy optional libraries must not be in
`sys.modules` afterwards. They load when configured or first used (MCP, e-mail, Slack, PDFs,
images), in the background after the first poll (the embedder and Chroma), or not at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOT_AT_START = [
    "mcp",  # agent.mcp: only with an mcp.json
    "chromadb",  # memory vectors: loaded in the background once the channels are up
    "onnxruntime",
    "slack_bolt",  # only with SLACK_BOT_TOKEN
    "jinja2",  # the web console's templates: started after the first poll
    "aiogram",  # gone from the Telegram channel (issue 19)
    "apscheduler",  # the scheduler's alarm clock starts after the first poll
    "PIL",  # images: on the first one received
    "pypdf",  # PDFs: on the first one received
    "aiosmtplib",  # e-mail: only with a mailbox
    "aioimaplib",
    "httpx",  # web_fetch, speech-to-text, Slack files (the SDK has its own httpx2): on first use
    "rich",  # httpx's command line, with click
]

PROBE = """
import asyncio, json, sys
from pathlib import Path
from agent.config import Settings
from memory.clock import SystemClock
from memory.stores import Stores
import bot.app
import bot.channels.telegram  # as a start with TELEGRAM_BOT_TOKEN imports it

async def main():
    settings = Settings(_env_file=None, data_dir=Path(sys.argv[1]))
    clock = SystemClock()
    stores = await Stores.open(settings.database_path, clock)
    try:
        steward = await bot.app.build_steward(settings, stores, clock)
        await steward.aclose()
    finally:
        await stores.close()

asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""


def test_default_start_leaves_optional_libraries_unimported(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STEWARD_", "EMAIL_", "SLACK_", "TELEGRAM_", "ANTHROPIC_", "CHROMA_"))
    }
    env["STEWARD_HOME"] = str(tmp_path)  # no .env of the checkout
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "data")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "bot.app" in loaded and "agent.memory_service" in loaded  # the probe did run
    imported = [name for name in NOT_AT_START if name in loaded]
    assert imported == [], f"imported at start-up although not configured: {imported}"
