"""`steward`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from agent.config import ConfigError, Settings, load_settings
from agent.policy import PolicyError
from memory.audit import AuditKeyError
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

    policy = commands.add_parser("policy", help="the tool policy file")
    policy_commands = policy.add_subparsers(dest="action", metavar="ACTION", required=True)
    policy_commands.add_parser("check", help="validate policy.toml and print the effective rules")

    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    audit_commands.add_parser("verify", help="check every link of the hash chain")
    export = audit_commands.add_parser("export", help="write every event as JSON lines")
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")

    memory = commands.add_parser("memory", help="long-term memory: export or import as JSONL")
    memory_commands = memory.add_subparsers(dest="action", metavar="ACTION", required=True)
    memory_export = memory_commands.add_parser("export", help="write every memory as JSON lines")
    memory_export.add_argument("-o", "--output", default="-", help="file (default: stdout)")
    memory_import = memory_commands.add_parser("import", help="read memories back from JSONL")
    memory_import.add_argument("file", help="the JSONL file from `memory export` (- for stdin)")
    return parser


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        from bot.app import run

        return asyncio.run(run(settings))
    from bot import admin

    if args.command == "policy":
        return admin.policy_check(settings)
    if args.command == "audit" and args.action == "verify":
        return asyncio.run(admin.audit_verify(settings))
    if args.command == "audit" and args.action == "export":
        return asyncio.run(admin.audit_export(settings, args.output))
    if args.command == "memory":
        from bot.commands.memory import memory_cli

        path = args.output if args.action == "export" else args.file
        return asyncio.run(memory_cli(settings, args.action, path))
    return 2


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
    try:
        return _dispatch(args, settings)
    except (SchemaTooNew, PolicyError, AuditKeyError) as exc:
        print(f"steward: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
