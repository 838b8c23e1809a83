"""The `steward` console script: `bot.cli` imported behind a Ctrl-C guard.

Importing the command line takes a second or two (pydantic, the settings, the storage); a
Ctrl-C in that time raised KeyboardInterrupt in the console script's own import line, out of
reach of `bot.cli.main`'s handlers, and printed a traceback. Here it is exit status 130, quietly.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    try:
        from bot.cli import main as run

        return run(argv)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
