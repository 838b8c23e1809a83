"""Administrative subcommands: `steward policy check`, `steward audit verify|export`.

They work on an existing data directory only: one without a database is refused
(`require_database`) rather than created empty, so a command run with the wrong settings says
so instead of reporting on nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
from pathlib import Path

from agent.config import Settings
from agent.mcp.config import McpConfigError, load_mcp_config
from agent.policy import load_policy
from agent.policy_lint import rules_matching_nothing
from agent.tools import Risk, default_registry
from bot.errors import CliError
from bot.output_target import ExportKind, export_kind, file_export_kind
from memory.audit import AUDIT_KEY_FILE, AuditKeyError, read_key
from memory.clock import SystemClock
from memory.stores import Stores

__all__ = [
    "CliError",
    "audit_export",
    "audit_verify",
    "policy_check",
    "write_output",
]


def policy_check(settings: Settings) -> int:
    """Validate policy.toml (a bad file raises PolicyError) and print the effective rules."""
    policy = load_policy(settings.policy_path)
    print(f"{settings.policy_path}: valid")
    print("\nDefaults by risk class (a forbidden tool never runs):")
    for risk in Risk:
        print(f"  {risk.value:<16} {policy.default_for(risk).value}")
    print("\nRules, first match wins:")
    for rule in policy.rules:
        print(f"  {rule.describe()}")
    for user, user_policy in policy.users.items():
        print(f"\nRules for {user} (checked before the global ones):")
        for rule in user_policy.rules:
            print(f"  {rule.describe()}")
    names = [tool.name for tool in default_registry()]
    for problem in rules_matching_nothing(policy, names, _mcp_servers(settings)):
        print(f"\nWARNING: {problem}.")
    print("\nTools and their risk classes:")
    for tool in default_registry():
        mark = "  (the owner's own)" if tool.owner_data else ""
        print(f"  {tool.name:<16} {tool.risk.value}{mark}")
    print("\nIn a turn that holds outside content, every tool above read asks.")
    print(
        "The owner's own tools (and every MCP tool) ask when another person asks for them,"
        " unless a rule in that person's section allows it, and in a turn that holds outside"
        " content whose reply is not for the owner alone."
    )
    return 0


async def _open_to_read(settings: Settings) -> Stores:
    """The stores of a command that only reads: opened read-only (memory/db.py), so it works
    on a read-only copy of the data and never changes what it reports on."""
    return await Stores.open(
        settings.database_path, SystemClock(), audit_key=False, upgrade=False, read_only=True
    )


def _mcp_servers(settings: Settings) -> list[str] | None:
    """The server names the MCP file gives, disabled ones too; None when it cannot be read
    (`steward mcp check` says why)."""
    try:
        config = load_mcp_config(settings.mcp_config_path)
    except McpConfigError:
        return None
    return [spec.name for spec in config.servers] + list(config.disabled)


async def audit_verify(settings: Settings) -> int:
    """Check the chain and its MACs; one line either way, naming the first bad event."""
    stores = await _open_to_read(settings)
    try:
        result = await stores.audit.verify()
    finally:
        await stores.close()
    if result.ok:
        keyed = (
            f", keyed from event {result.keyed_from} with key {result.key_id}"
            if result.key_id
            else ""
        )
        print(f"audit chain ok: {result.events} events{keyed}")
        for note in (result.before_key_note, result.cut_note):
            if note:
                print(f"WARNING: {note}")
        return 0
    if result.unverifiable:
        print(f"audit chain cannot be verified: {result.problem}")
    elif result.first_broken_id is None:  # the head file gone or damaged: no event to name
        print(f"audit chain BROKEN: {result.problem}")
    else:
        print(f"audit chain BROKEN at event {result.first_broken_id}: {result.problem}")
    return 1


async def audit_export(settings: Settings, output: str) -> int:
    stores = await _open_to_read(settings)
    try:
        lines = [json.dumps(e.__dict__, ensure_ascii=False) async for e in stores.audit.all()]
    finally:
        await stores.close()
    write_output(output, "".join(line + "\n" for line in lines), kind="audit")
    if output != "-":
        print(f"{len(lines)} audit events written to {output}", file=sys.stderr)
    key = _audit_key_note(settings)
    if key:
        print(key, file=sys.stderr)
    return 0


def _audit_key_note(settings: Settings) -> str:
    """Which key MACs the exported events: its id only, never the key."""
    try:
        key = read_key(settings.data_dir / AUDIT_KEY_FILE)
    except AuditKeyError as exc:
        return f"note: {exc}"
    if key is None:
        return ""
    return f"audit key {key.key_id}: events from {key.keyed_from} on are keyed"


def write_output(output: str, text: str, *, kind: ExportKind | None = None) -> None:
    """`text` into the file an export names ("-": stdout), readable by the owner alone. R183: a
    file that existed was written in place and kept its mode (0644: every user of the machine
    could read the export; the umask shapes new files only). A regular file is now replaced by
    a new one (mode 0600, O_EXCL) written beside it; anything else (a terminal, a pipe, a link)
    is written where it is, a regular file among them made 0600 before a byte is in it. An
    existing file is replaced only if it is an earlier export of the same `kind` (told from
    `text` when not given): R196, `memory export -o` replaced a backup archive."""
    if output == "-":
        sys.stdout.write(text)
        return
    path = Path(output)
    _refuse_other_file(path, kind or export_kind(text.partition("\n")[0]))
    try:
        found = os.lstat(path)
    except OSError:
        found = None
    try:
        if found is not None and not stat.S_ISREG(found.st_mode):
            _write_in_place(path, text)
            return
        try:
            _replace_privately(path, text)
        except PermissionError:  # a file the owner may write, in a folder they may not
            if found is None:
                raise
            _write_in_place(path, text)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None


def _refuse_other_file(path: Path, kind: ExportKind | None) -> None:
    """CliError when `path` is a regular file (through a link too) holding something other than
    an earlier export of `kind` (of either kind when nothing is written, so none can be told):
    a backup, notes, another tool's data are the user's and cannot be made again."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return  # none there, or a terminal or a pipe (`-o /dev/stdout`)
    except OSError:
        return
    found = file_export_kind(path)
    if found == "empty" or (found is not None and kind in (None, found)):
        return
    what = f"an earlier {kind} export" if kind else "an earlier export"
    raise CliError(
        f"{path} exists and is not {what}, so it is kept: name a new file "
        f"(e.g. -o {path.with_name(_new_name(kind))}), or delete it first if it may go"
    )


def _new_name(kind: ExportKind | None) -> str:
    """An example file name for the refusal."""
    return f"{kind or 'steward'}-export.jsonl"


def _write_in_place(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as target:
        if stat.S_ISREG(os.fstat(target.fileno()).st_mode):
            os.fchmod(target.fileno(), 0o600)
        target.write(text)


def _replace_privately(path: Path, text: str) -> None:
    """Write a new 0600 file beside `path` and rename it over: never an old file's mode, and
    never half an export in its place."""
    fd, temporary = tempfile.mkstemp(prefix=".steward-", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as part:
            part.write(text)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
