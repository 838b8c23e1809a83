"""`steward`: the command line.

Settings are read once, here: `.env` from Steward's home and every relative path resolved
against it (agent/paths.py says which directory that is). An error is one line on stderr and a
non-zero exit status, never a traceback (`STEWARD_LOG_LEVEL=DEBUG` logs one for the unexpected).

(Some 450 lines: every command's parser, with its example, and the one place that turns each
kind of failure into its one line.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from agent.config import ConfigError, Settings
from agent.errors import PolicyError
from agent.paths import DataDirBusy, Home, load_at_home
from bot.errors import BackupError, CliError
from bot.output_target import output_problem
from memory.db import DatabaseLocked, SchemaTooNew, disk_full, storage_error
from memory.errors import AuditKeyError, SchemaBehind, StorageFailed

__all__ = ["main"]

log = logging.getLogger("steward")

# Chatty per-request INFO lines (their URLs can hold a bot token), and the SDKs whose DEBUG
# lines quote every message: Slack's (R195) and Anthropic's, each prompt whole with its memories,
# out of reach of forgetting (R213): warnings only, whatever STEWARD_LOG_LEVEL says.
_QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "aiohttp.access", "slack_sdk", "anthropic")


def _version() -> str:
    try:
        return metadata.version("steward")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """A parser whose usage error shows an example of the command done right, as every
    malformed command of Steward's answers (R141: `steward backup` gave the usage alone)."""

    def __init__(self, *args: Any, example: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.example = example

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        if self.example:
            print(f"example: {self.example}", file=sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        example="steward run",
        prog="steward",
        description="Steward: a self-hosted personal agent for Telegram, Slack and the console.",
        epilog="Settings come from the environment and .env in Steward's home "
        "(STEWARD_HOME, else the source checkout, else the current directory).",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"steward {_version()} (Python {sys.version.split()[0]})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser(
        "run", help="start Steward with every configured channel", example="steward run"
    )

    policy = commands.add_parser(
        "policy", help="the tool policy file", example="steward policy check"
    )
    policy_commands = policy.add_subparsers(dest="action", metavar="ACTION", required=True)
    policy_commands.add_parser(
        "check",
        help="validate policy.toml and print the effective rules",
        example="steward policy check",
    )

    mcp = commands.add_parser(
        "mcp", help="the MCP servers of mcp.json (STEWARD_MCP_CONFIG)", example="steward mcp check"
    )
    mcp_commands = mcp.add_subparsers(dest="action", metavar="ACTION", required=True)
    mcp_commands.add_parser(
        "check",
        help="validate it, start each server, list tools and risk",
        example="steward mcp check",
    )

    audit = commands.add_parser(
        "audit", help="the tamper-evident audit log", example="steward audit verify"
    )
    audit_commands = audit.add_subparsers(dest="action", metavar="ACTION", required=True)
    audit_commands.add_parser(
        "verify", help="check every link of the hash chain", example="steward audit verify"
    )
    export = audit_commands.add_parser(
        "export",
        help="write every event as JSON lines",
        example="steward audit export -o audit.jsonl",
    )
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")

    memory = commands.add_parser(
        "memory",
        help="long-term memory: export or import as JSONL",
        example="steward memory export -o memories.jsonl",
    )
    memory_commands = memory.add_subparsers(dest="action", metavar="ACTION", required=True)
    memory_export = memory_commands.add_parser(
        "export",
        help="write every memory as JSON lines",
        example="steward memory export -o memories.jsonl",
    )
    memory_export.add_argument("-o", "--output", default="-", help="file (default: stdout)")
    memory_import = memory_commands.add_parser(
        "import",
        help="read memories back from JSONL",
        example="steward memory import memories.jsonl",
    )
    memory_import.add_argument("file", help="the JSONL file from `memory export` (- for stdin)")
    commands.add_parser(
        "web-link",
        help="print a one-time login link to the web console",
        example="steward web-link",
    )

    backup = commands.add_parser(
        "backup",
        help="write a consistent snapshot of the data directory (safe while running)",
        example="steward backup ~/steward-$(date +%F).tar.gz",
    )
    backup.add_argument("file", help="the archive to write, e.g. steward-backup.tar.gz")
    restore = commands.add_parser(
        "restore",
        help="put a backup back (refused while Steward runs on the data directory)",
        example="steward restore ~/steward-2026-12-01.tar.gz",
    )
    restore.add_argument("file", help="an archive written by `steward backup`")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace a data directory that holds data (it is moved aside, not deleted)",
    )
    restore.add_argument(
        "--other-owner",
        action="store_true",
        help="restore a backup whose owner is not in STEWARD_OWNER: its memories and goals "
        "become STEWARD_OWNER's, and its reminders are cancelled",
    )
    return parser


def _used(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command's own parser that `args` were read with: `steward audit verify`'s."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = getattr(args, action.dest, None)
            if chosen in action.choices:
                return _used(action.choices[chosen], args)
    return parser


def _ended_by_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _terminated_cleanly() -> Iterator[None]:
    """SIGTERM (`timeout`, `kill`, systemd) ends a backup or restore as Ctrl-C does: through
    its clean-up, so no staging folder is left behind (its default ends the process there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _ended_by_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _backup(settings: Settings, file: str) -> int:
    from bot.backup import create_backup

    with _terminated_cleanly():
        report = create_backup(settings, Path(file))
    print(
        f"backup written to {report.path}: {report.files} files, {report.size:,} bytes, "
        f"database schema {report.schema} (memory vectors are rebuilt on restore)",
        file=sys.stderr,
    )
    for name in report.skipped:
        print(f"  not included: {name}", file=sys.stderr)
    return 0


def _restore(settings: Settings, file: str, force: bool, other_owner: bool) -> int:
    from bot.backup import restore_backup

    with _terminated_cleanly():
        report = restore_backup(settings, Path(file), force=force, other_owner=other_owner)
    aside = f"; the previous data is in {report.moved_aside}" if report.moved_aside else ""
    print(
        f"restored {report.files} files from the backup of {report.created_at} into "
        f"{report.data_dir}{aside}. The next `steward run` migrates the database if needed "
        "and rebuilds the memory vectors.",
        file=sys.stderr,
    )
    return 0


def _require_database(settings: Settings, where: str = "") -> None:
    """Refuse a data directory without a database (never create one)."""
    if settings.database_path.is_file():
        return
    raise CliError(
        f"no Steward database in {settings.data_dir.absolute()}{where}: "
        "start Steward there once with `steward run`, or point STEWARD_DATA_DIR "
        "(or STEWARD_HOME) at your data"
    )


def _dispatch(args: argparse.Namespace, settings: Settings, home: Home) -> int:
    if args.command == "run":
        from memory.allocator import tune_malloc

        tune_malloc()  # before any thread starts: glibc arenas capped (memory/allocator.py)
        from bot.open_files import raise_open_files_limit

        raise_open_files_limit()  # connections to the HTTP port come on top of Steward's own
        from bot.gc_pauses import GC_PAUSES

        GC_PAUSES.install()  # collections timed for GET /metrics (bot/gc_pauses.py)
        from bot.app import run
        from bot.event_loop import loop_factory

        log.debug("Steward %s, home %s", _version(), home.describe())
        with contextlib.suppress(OSError):  # started in a folder since deleted (R186)
            here = Path.cwd() / ".env"
            if here.is_file() and here.absolute() != home.env_file:
                log.warning("%s is not read: settings come from %s", here, home.env_file)
        with contextlib.suppress(OSError):  # as the audit key's is said (R155: not said of .env)
            if home.env_file.stat().st_mode & 0o077:
                log.warning(
                    "%s is readable by other users of this machine, and may hold your keys: "
                    "chmod 600 it",
                    home.env_file,
                )
        with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
            return runner.run(run(settings))
    if args.command == "restore":
        return _restore(settings, args.file, args.force, args.other_owner)
    if args.command == "mcp":
        from bot.mcp_cli import mcp_check

        return asyncio.run(mcp_check(settings))
    # Commands on existing data never create an empty database (or policy) in a wrong directory;
    # `policy check` may check a policy file written before the first start.
    if not (args.command == "policy" and settings.policy_path.is_file()):
        _require_database(settings, f" (home {home.describe()})")
    written = (
        args.file
        if args.command == "backup"
        else getattr(args, "output", "-")
        if getattr(args, "action", None) == "export"
        else "-"
    )

    if written != "-" and (
        problem := output_problem(Path(written), data_dir=settings.data_dir, env_file=home.env_file)
    ):
        raise CliError(f"cannot write {written}: {problem}")
    if args.command == "backup":
        return _backup(settings, args.file)
    from bot import admin

    if args.command == "policy":
        return admin.policy_check(settings)
    if args.command == "audit" and args.action == "verify":
        return asyncio.run(admin.audit_verify(settings))
    if args.command == "audit" and args.action == "export":
        return asyncio.run(admin.audit_export(settings, args.output))
    if args.command == "web-link":
        from bot.web.cli import web_link_cli

        return asyncio.run(web_link_cli(settings))
    if args.command == "memory":
        from bot.commands.memory_cli import memory_cli

        path = args.output if args.action == "export" else args.file
        return asyncio.run(memory_cli(settings, args.action, path))
    return 2


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def _no_temporary_folder() -> str | None:
    """R259: with no writable temporary folder (a read-only root filesystem) SQLite failed a
    new database's migration as "disk I/O error" and /status crashed; say what is missing."""
    try:
        tempfile.gettempdir()
    except FileNotFoundError:
        return (
            "no writable folder for temporary files (tried $TMPDIR, /tmp, /var/tmp and the"
            " current folder): set TMPDIR to a writable folder"
        )
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _quiet_broken_pipe() -> int:
    """The reader went away (`steward policy check | head`): stop quietly, and keep Python
    from complaining when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141  # as a shell reports a process ended by SIGPIPE


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # the usage of the command given, not steward's whole (review 80)
        _used(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    if problem := _file_name_problem(args):
        print(f"steward: {problem}", file=sys.stderr)
        return 2
    # what Steward writes (the database, backups, exports, inbox files) is the owner's alone,
    # whatever umask the shell had (review 63: 022 left steward.db readable by every user)
    os.umask(0o077)
    if (problem := _no_temporary_folder()) is not None:
        print(f"steward: {problem}", file=sys.stderr)
        return 2
    try:
        settings, home = load_at_home()
    except ConfigError as exc:
        print(f"steward: configuration error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # R186: a path the settings name that the system refuses to look at
        where = f"cannot use {exc.filename}: " if exc.filename else ""
        print(
            f"steward: configuration error: {where}{exc.strerror or _one_line(exc)}",
            file=sys.stderr,
        )
        return 2
    _configure_logging(settings)
    try:
        code = _dispatch(args, settings, home)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (KeyboardInterrupt, asyncio.CancelledError):  # a second Ctrl-C during start-up
        return 130
    except ConfigError as exc:  # found once the settings are in use (an owner's channel)
        print(f"steward: configuration error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (SchemaTooNew, SchemaBehind, PolicyError, AuditKeyError, DataDirBusy) as exc:
        print(f"steward: {_one_line(exc)}", file=sys.stderr)
        return 2
    except StorageFailed as exc:  # the disk full, read-only, or the file unusable: its path
        print(f"steward: {_one_line(exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"cannot use {exc.filename}: " if exc.filename else ""
        if not where and exc.errno in (errno.ENOSPC, errno.EDQUOT) and disk_full(settings.data_dir):
            where = f"{settings.data_dir}: "  # os.pwrite & co. name no file: the data's disk
        print(f"steward: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        held_or_full = _held_or_full(settings, exc)
        if held_or_full:  # met outside memory/db.py's helpers: still not a bug of ours
            print(f"steward: {held_or_full}", file=sys.stderr)
            return 1
        if isinstance(exc, sqlite3.DatabaseError) and _damaged(exc):
            # a damaged or foreign file, not a bug of ours (a lock or our own SQL is one)
            print(
                f"steward: {settings.database_path}: {_one_line(exc)}; put a backup back "
                "with `steward restore <archive>`",
                file=sys.stderr,
            )
            return 1

        if not isinstance(exc, CliError | BackupError):
            # A crash of `run` is a bug worth its traceback, in the log; elsewhere only at DEBUG.
            log.log(
                logging.ERROR if args.command == "run" else logging.DEBUG,
                "unexpected error",
                exc_info=True,
            )
            print(f"steward: error: {type(exc).__name__}: {_one_line(exc)}", file=sys.stderr)
            return 1
        print(f"steward: {_one_line(exc)}", file=sys.stderr)
        return 1


_BACKUP_EXAMPLE = "steward backup ~/steward-2026-12-07.tar.gz"
_RESTORE_EXAMPLE = "steward restore ~/steward-2026-12-07.tar.gz"


def _file_name_problem(args: argparse.Namespace) -> str:
    """Why a file name given is no name at all ("" when it is one), said before any setting is
    read (R183): `steward backup -` wrote a file named "-" where every other command means
    stdout, a blank name wrote a file named by spaces, and `audit export -o ''` answered
    "cannot write : No such file or directory"."""
    if args.command == "backup" and args.file == "-":
        return f"backup writes a file, not stdout: name it, e.g. {_BACKUP_EXAMPLE}"
    if args.command == "restore" and args.file == "-":  # an archive a backup named "-" is ./-
        return f"restore reads a file, not stdin: name it, e.g. {_RESTORE_EXAMPLE}"
    if args.command in ("backup", "restore") and not args.file.strip():
        example = _BACKUP_EXAMPLE if args.command == "backup" else _RESTORE_EXAMPLE
        return f"{args.command} needs a file name, not a blank one: e.g. {example}"
    action = getattr(args, "action", None)
    if args.command in ("audit", "memory") and action == "export" and not args.output.strip():
        example = "audit.jsonl" if args.command == "audit" else "memories.jsonl"
        return (
            f"{args.command} export -o needs a file name (or - for stdout), not a blank one: "
            f"e.g. steward {args.command} export -o {example}"
        )
    if args.command == "memory" and action == "import" and not args.file.strip():
        return (
            "memory import needs a file name (or - for stdin), not a blank one: "
            "e.g. steward memory import memories.jsonl"
        )
    return ""


def _held_or_full(settings: Settings, exc: Exception) -> str:
    """The one line for SQLite's words of the database locked by another program or its
    disk full ("" for anything else: a traceback there would only hide the cause)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return ""
    failed = storage_error(settings.database_path, exc)
    if isinstance(failed, DatabaseLocked) or "no space left" in str(failed):
        return _one_line(failed)
    return ""


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """The file is not (or no longer) a database SQLite can read: a restore is the way back."""
    text = str(exc).lower()
    return type(exc) is sqlite3.DatabaseError or any(
        word in text for word in ("not a database", "malformed", "disk image")
    )


if __name__ == "__main__":
    sys.exit(main())
