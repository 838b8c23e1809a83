"""Administrative subcommands: `steward policy check`, `steward audit verify|export`."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from typing import TextIO

from agent.config import Settings
from agent.policy import load_policy
from agent.tools import Risk, default_registry
from memory.audit import AUDIT_KEY_FILE, AuditKeyError, read_key
from memory.clock import SystemClock
from memory.stores import Stores

__all__ = ["audit_export", "audit_verify", "policy_check"]


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
    print("\nTools and their risk classes:")
    for tool in default_registry():
        print(f"  {tool.name:<16} {tool.risk.value}")
    print("\nIn a turn that holds outside content, every tool above read asks.")
    return 0


async def audit_verify(settings: Settings) -> int:
    """Check the chain and its MACs; one line either way, naming the first bad event."""
    stores = await Stores.open(settings.database_path, SystemClock(), audit_key=False)
    try:
        result = await stores.audit.verify()
    finally:
        await stores.close()
    if result.ok:
        keyed = (
            f", keyed from event {result.keyed_from} with key {result.key_id}"
            if result.key_id
            else ", unkeyed (no audit key yet: Steward creates it at its next start)"
        )
        print(f"audit chain ok: {result.events} events{keyed}")
        return 0
    if result.unverifiable:
        print(f"audit chain cannot be verified: {result.problem}")
    else:
        print(f"audit chain BROKEN at event {result.first_broken_id}: {result.problem}")
    return 1


async def audit_export(settings: Settings, output: str) -> int:
    stores = await Stores.open(settings.database_path, SystemClock(), audit_key=False)
    try:
        lines = [json.dumps(e.__dict__, ensure_ascii=False) async for e in stores.audit.all()]
    finally:
        await stores.close()
    _write_lines(lines, output)
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


def _write_lines(lines: list[str], output: str) -> None:
    target: TextIO
    with (
        nullcontext(sys.stdout) if output == "-" else open(output, "w", encoding="utf-8")
    ) as target:
        for line in lines:
            target.write(line + "\n")
