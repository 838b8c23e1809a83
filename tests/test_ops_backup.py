"""Backups and restores: a snapshot taken while a turn is running holds every message, memory,
approval and audit event committed by then; a restore never overwrites a running instance's
data, and never deletes what it replaces."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

from fakes.anthropic import FakeAnthropic
from harness import RecordingChannel, make_settings, running_steward

from agent.paths import DataDirLock
from bot.backup import BackupError, create_backup, restore_backup
from memory.clock import SystemClock
from memory.stores import Stores

STEWARD = [sys.executable, "-m", "bot.cli"]


async def _everything(stores: Stores) -> dict[str, Any]:
    """What a backup must keep, read through the stores' named methods."""
    from memory.longterm import LongTermMemory

    records = LongTermMemory.from_stores(stores, SystemClock()).records
    return {
        "messages": [(m.id, m.text, m.direction) for m in await stores.messages.all()],
        "approvals": [(a.id, a.tool, a.status) for a in await stores.approvals.all()],
        "audit": [(e.id, e.kind, e.hash) async for e in stores.audit.all()],
        "memories": [(m.id, m.text) for m in await records.all()],
    }


async def test_a_backup_taken_during_a_turn_restores_everything(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_tool_use(
        "send_message", {"channel": "slack", "chat": "C0STATUS", "text": "All green"}
    )
    fake_model.reply_text("I asked for your approval.")
    async with running_steward(tmp_path / "data", fake_model.base_url) as h:
        h.steward.switchboard.register("slack", RecordingChannel(name="slack"))
        await h.say("/remember my locker code is 4711")
        await h.say("tell #status all is green")  # leaves an approval pending
        assert [p.tool for _, p in h.channel.approvals] == ["send_message"]
        # A turn that is still waiting for the model while the backup is taken.
        fake_model.latency = 3.0
        fake_model.reply_text("the answer, later")
        asked = len(fake_model.requests)
        turn = asyncio.create_task(h.say("what is the plan for today?"))
        for _ in range(1500):  # until the turn's model call has arrived (30 s at most)
            if len(fake_model.requests) > asked:
                break
            await asyncio.sleep(0.02)
        before = await _everything(h.steward.stores)
        report = await asyncio.to_thread(create_backup, h.settings, tmp_path / "b.tar.gz")
        after = await _everything(h.steward.stores)
        assert not turn.done()  # the backup really was taken mid-turn
        await turn
    assert before == after  # nothing was committed while the backup ran
    assert before["approvals"] and before["memories"] and before["audit"]
    assert "what is the plan for today?" in [text for _, text, _ in before["messages"]]
    assert stat.S_IMODE((tmp_path / "b.tar.gz").stat().st_mode) == 0o600  # it holds audit.key
    assert report.schema > 0

    restored = make_settings(tmp_path / "restored", None)
    result = await asyncio.to_thread(restore_backup, restored, tmp_path / "b.tar.gz")
    assert result.moved_aside is None
    assert (tmp_path / "restored" / "audit.key").read_bytes() == (
        tmp_path / "data" / "audit.key"
    ).read_bytes()
    assert (tmp_path / "restored" / "policy.toml").is_file()
    assert not (tmp_path / "restored" / "chroma").exists()  # vectors are rebuilt at start
    stores = await Stores.open(restored.database_path, SystemClock())
    try:
        everything = await _everything(stores)
        *kept, (_, note, _) = everything["audit"]  # the start records what was restored
        assert everything | {"audit": kept} == before and note == "audit.restored"
        check = await stores.audit.verify()
        assert check.ok and check.key_id, check  # the chain verifies with the restored key
    finally:
        await stores.close()


async def test_restore_replaces_only_with_force_and_keeps_the_old_data(tmp_path: Path) -> None:
    first = make_settings(tmp_path / "data", None)
    stores = await Stores.open(first.database_path, SystemClock())
    await stores.audit.record("test.first", actor="test")
    await stores.close()
    (tmp_path / "data" / "mcp.json").write_text('{"servers": {}}')
    backup = tmp_path / "first.tar.gz"
    create_backup(first, backup)
    with tarfile.open(backup) as tar:
        names = set(tar.getnames())
    assert {"data/steward.db", "data/audit.key", "data/mcp.json", "manifest.json"} <= names

    stores = await Stores.open(first.database_path, SystemClock())
    await stores.audit.record("test.second", actor="test")
    await stores.close()
    try:
        restore_backup(first, backup)
        raise AssertionError("restore replaced a database without --force")
    except Exception as exc:
        assert "--force" in str(exc)
    report = restore_backup(first, backup, force=True)
    assert report.moved_aside is not None and (report.moved_aside / "steward.db").is_file()
    stores = await Stores.open(first.database_path, SystemClock())
    try:
        events = [e async for e in stores.audit.all()]
        check = await stores.audit.verify()
    finally:
        await stores.close()
    kinds = [e.kind for e in events]
    assert "test.first" in kinds and "test.second" not in kinds
    # the log says an older copy was put back, and where it had ended before (the restore
    # left no trace in it: the events after the archive were simply gone)
    [restored] = [e for e in events if e.kind == "audit.restored"]
    assert restored.detail["moved_aside"] == str(report.moved_aside)
    assert restored.detail["log_ended_at"] > restored.detail["restored_to"]
    assert check.ok
    # an archive cut short (a full disk, a copy stopped half way) is named damaged, in one
    # line, and nothing is moved aside
    cut = tmp_path / "cut.tar.gz"
    for size in (backup.stat().st_size // 2, 100):  # 100 bytes: tarfile's own check raised
        cut.write_bytes(backup.read_bytes()[:size])  # EOFError, a traceback's words (R116)
        try:
            restore_backup(first, cut, force=True)
            raise AssertionError("a truncated archive was restored")
        except BackupError as exc:
            assert "damaged" in str(exc) or "cannot read" in str(exc), exc
        assert (tmp_path / "data" / "steward.db").is_file()


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return env | {"STEWARD_HOME": str(home), "STEWARD_EMBEDDER": "none"}


def test_restore_is_refused_while_steward_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    running = subprocess.Popen(
        [*STEWARD, "run"],
        cwd=tmp_path,
        env=_env(home) | {"STEWARD_LOG_LEVEL": "WARNING"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert running.stdin is not None
    try:
        running.stdin.write(b"/remember the boiler was serviced in May\n")
        running.stdin.flush()
        deadline = time.monotonic() + 60
        while DataDirLock.held(home / "data") is None:
            assert time.monotonic() < deadline and running.poll() is None, "never started"
            time.sleep(0.1)
        archive = tmp_path / "live.tar.gz"
        made = subprocess.run(
            [*STEWARD, "backup", str(archive)], env=_env(home), capture_output=True, text=True
        )
        assert made.returncode == 0, made.stderr
        assert f"backup written to {archive}" in made.stderr
        refused = subprocess.run(
            [*STEWARD, "restore", "--force", str(archive)],
            env=_env(home),
            capture_output=True,
            text=True,
        )
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr
        assert f"in use by Steward (pid {running.pid}, run)" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        second = subprocess.run(
            [*STEWARD, "run"], env=_env(home), capture_output=True, text=True, timeout=60
        )
        assert second.returncode != 0 and "Traceback" not in second.stderr
        assert f"in use by Steward (pid {running.pid}, run)" in second.stderr
    finally:
        running.stdin.close()
        running.wait(60)
    # Stopped: the backup restores into a fresh home, and Steward there has the memory.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    done = subprocess.run(
        [*STEWARD, "restore", str(archive)], env=_env(fresh), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [*STEWARD, "run"],
        env=_env(fresh),
        input="/memory\n",
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert "the boiler was serviced in May" in shown.stdout, shown.stdout + shown.stderr


def test_restoring_a_file_that_is_no_backup_makes_nothing(tmp_path: Path) -> None:
    """`steward restore /etc/passwd` made an empty data directory before refusing."""
    settings = make_settings(tmp_path / "data", None)
    not_a_backup = tmp_path / "passwd"
    not_a_backup.write_text("root:x:0:0:root:/root:/bin/bash\n")
    try:
        restore_backup(settings, not_a_backup)
        raise AssertionError("a text file was restored")
    except BackupError as exc:
        assert "not a Steward backup" in str(exc)
    assert not (tmp_path / "data").exists()


async def test_a_planted_restore_note_writes_no_event_of_its_own_choosing(tmp_path: Path) -> None:
    """The note's keys went into the event as they were: an 'actor' key failed every start,
    a note not in UTF-8 too, and any key or subject could be written as Steward's."""
    from memory.audit_head import RESTORE_NOTE

    settings = make_settings(tmp_path / "data", None)
    stores = await Stores.open(settings.database_path, SystemClock())
    await stores.close()
    note = tmp_path / "data" / RESTORE_NOTE
    for planted, expected in (
        (
            b'{"actor": "owner", "subject": "x\\ny", "log_ended_at": 7, "evil": 1}',
            {"log_ended_at": 7},
        ),
        (b"\xff\xfe not utf-8", {"note": "unreadable"}),
    ):
        note.write_bytes(planted)
        stores = await Stores.open(settings.database_path, SystemClock())
        try:
            [*_, event] = [e async for e in stores.audit.all()]
        finally:
            await stores.close()
        assert (event.kind, event.actor, event.subject) == ("audit.restored", "steward", "")
        assert event.detail == expected
        assert not note.exists()
    # a folder that cannot be removed: recorded once, not at every start
    note.mkdir()
    (note / "x").write_text("x")
    for _ in range(2):
        stores = await Stores.open(settings.database_path, SystemClock())
        try:
            kinds = [e.kind async for e in stores.audit.all()]
        finally:
            await stores.close()
    assert kinds.count("audit.restored") == 3 and not note.exists()
