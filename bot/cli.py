"""`steward`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from agent.config import ConfigError, load_settings
from memory.db import SchemaTooNew

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steward",
        description="Steward: a self-hosted personal agent for Telegram, Slack and the console.",
        epilog="Settings come from the environment and .env (see .env.example).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="start Steward with every configured channel")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"steward: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "run":
        from bot.app import run

        try:
            return asyncio.run(run(settings))
        except SchemaTooNew as exc:
            print(f"steward: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
