"""`steward` commands load what they use, not the whole agent: the command line, `backup`,
`restore` and `web-link` used to import retrieval, numpy, the tool registry and the console
channel (with aiogram) before parsing their arguments (~0.6 s of every command, and of each of
the suite's hundreds of CLI runs)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "numpy",
    "aiogram",
    "chromadb",
    "onnxruntime",
    "anthropic",
    "agent.tools",
    "bot.channels.console",
    "bot.commands",
    "memory.longterm.retrieval",
)


def test_the_command_line_and_its_light_commands_load_nothing_heavy() -> None:
    probe = (
        "import json, sys\n"
        "import bot.cli, bot.backup, bot.web.cli\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(done.stdout) == []


def test_memory_longterm_still_gives_every_name_it_lists() -> None:
    import memory.longterm as longterm

    for name in longterm.__all__:
        assert getattr(longterm, name) is not None
    assert "Weights" in dir(longterm)
