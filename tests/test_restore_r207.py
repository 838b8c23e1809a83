"""R207: `steward restore` of another owner's backup, and of a backup damaged in storage.

A backup made under another STEWARD_OWNER was restored without a word, and the next start gave
that owner's memories and goals to the configured one and cancelled their reminders (logged at
INFO). A backup with a few bytes changed in storage was refused in gzip's words ("CRC check
failed 0x… != 0x…"), or as "not a Steward backup (no manifest)"."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from harness import OWNER, make_settings, running_steward
from test_ops_backup import STEWARD

from bot.backup import create_backup, restore_backup
from bot.channels.console import CONSOLE_IDENTITY
from bot.commands.access import apply_owner_settings
from memory.clock import SystemClock
from memory.people import Identity
from memory.stores import Stores

STRANGER = Identity("test", "stranger")


def _env(home: Path, owner: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return env | {
        "STEWARD_HOME": str(home),
        "STEWARD_DATA_DIR": str(home / "data"),
        "STEWARD_EMBEDDER": "none",
        "STEWARD_OWNER": owner,
    }


def _restore(home: Path, archive: Path, owner: str, *flags: str) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [*STEWARD, "restore", *flags, str(archive)],
        env=_env(home, owner),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _owners_backup(tmp_path: Path) -> Path:
    """A backup of test:owner's Steward, with a memory and a daily reminder, its owner recorded
    as `steward run` records it (the console's identity is every Steward's)."""
    async with running_steward(tmp_path / "data", None) as h:
        await h.say("/remember my dentist is Dr. Lee on Elm St.")
        assert "every day" in await h.say("/remind every day 9:00 take the pills")
        await apply_owner_settings(h.steward.stores, [CONSOLE_IDENTITY, OWNER])
        archive = tmp_path / "owner.tar.gz"
        create_backup(h.settings, archive)
    return archive


async def _backup_recording(tmp_path: Path, name: str, owner: list[Identity]) -> Path:
    """A backup of a Steward whose starts recorded `owner` (none: never started)."""
    settings = make_settings(tmp_path / name, None)
    stores = await Stores.open(settings.database_path, SystemClock())
    try:
        if owner:
            await apply_owner_settings(stores, owner)
    finally:
        await stores.close()
    create_backup(settings, tmp_path / f"{name}.tar.gz")
    return tmp_path / f"{name}.tar.gz"


def _refused_in_one_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


async def test_another_owners_backup_is_refused_unless_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    archive = await _owners_backup(tmp_path)
    # onto an empty data directory: refused, naming both, and nothing is put there
    fresh = tmp_path / "fresh"
    line = _refused_in_one_line(_restore(fresh, archive, str(STRANGER)))
    assert "belongs to test:owner" in line and "STEWARD_OWNER is test:stranger" in line, line
    assert "nothing was changed" in line and "--other-owner" in line, line
    assert "STEWARD_OWNER=test:owner,test:stranger" in line, line  # what to do if both are you
    assert not (fresh / "data" / "steward.db").exists()
    # onto data already there: --force (replace what is there) does not take it over
    settings = make_settings(fresh / "data", None, STEWARD_OWNER=str(STRANGER))
    stores = await Stores.open(settings.database_path, SystemClock())
    await stores.close()
    before = (fresh / "data" / "steward.db").read_bytes()
    line = _refused_in_one_line(_restore(fresh, archive, str(STRANGER), "--force"))
    assert "belongs to test:owner" in line, line
    assert (fresh / "data" / "steward.db").read_bytes() == before
    assert not [p for p in fresh.iterdir() if "before-restore" in p.name]
    assert not [p for p in (fresh / "data").iterdir() if "restore" in p.name]
    # taken over on purpose: restored; the start that unlinks test:owner warns of the reminder
    report = restore_backup(settings, archive, force=True, other_owner=True)
    assert report.moved_aside is not None
    stores = await Stores.open(settings.database_path, SystemClock())
    try:
        with caplog.at_level(logging.INFO, logger="bot.commands.access"):
            await apply_owner_settings(stores, [STRANGER])
    finally:
        await stores.close()
    [record] = [r for r in caplog.records if "no longer lists test:owner" in r.getMessage()]
    assert record.levelno == logging.WARNING, record
    assert "1 reminder(s) and task(s)" in record.getMessage(), record.getMessage()
    # the same owner's backup, and one that records none, restore as before
    done = _restore(tmp_path / "same", archive, "test:owner")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "same" / "data" / "steward.db").is_file()
    # the owner is one of several listed (a new account beside the old): the same person
    done = _restore(tmp_path / "both", archive, "telegram:123,test:owner")
    assert done.returncode == 0, done.stderr
    # no owner recorded (an older Steward), or the console's alone: restored as before
    for name, owner in (("never", []), ("console", [CONSOLE_IDENTITY])):
        made = await _backup_recording(tmp_path, name, owner)
        done = _restore(tmp_path / f"into-{name}", made, str(STRANGER))
        assert done.returncode == 0, (name, done.stderr)


async def test_a_backup_damaged_in_storage_is_refused_as_damaged(tmp_path: Path) -> None:
    archive = await _owners_backup(tmp_path)
    good = archive.read_bytes()
    assert len(good) > 4000, len(good)
    damaged = tmp_path / "damaged.tar.gz"
    for offset in (200, len(good) // 3, len(good) // 2):  # a first header, files, the middle
        for mask in (0xFF, 0x01):  # four bytes flipped whole, or one bit in each
            patch = bytes(byte ^ mask for byte in good[offset : offset + 4])
            damaged.write_bytes(good[:offset] + patch + good[offset + 4 :])
            home = tmp_path / f"home-{offset}-{mask}"
            line = _refused_in_one_line(_restore(home, damaged, "test:owner"))
            assert f"{damaged} is damaged" in line, (offset, mask, line)
            assert "nothing was changed" in line, line
            assert not (home / "data" / "steward.db").exists()
