"""Backups at their edges: a file rewritten while the archive is written, a target that is a
link, crafted manifests. A backup that says "written" restores; a restore of something else
says why in one line."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from harness import make_settings

from agent.config import Settings
from bot.backup import BackupError, create_backup, restore_backup
from memory.clock import SystemClock
from memory.stores import Stores


async def _data(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path / "data", None)
    stores = await Stores.open(settings.database_path, SystemClock())
    await stores.audit.record("test.first", actor="test")
    await stores.close()
    return settings


def _cut_when_opened(path: Path, keep: int, done: threading.Event) -> threading.Thread:
    """Another writer: the moment this process has `path` open (the backup reading it), cut
    it to `keep` bytes, as a log being rewritten is."""

    def watch() -> None:
        fds = Path("/proc/self/fd")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for fd in os.listdir(fds):
                try:
                    if os.readlink(fds / fd) == str(path):
                        os.truncate(path, keep)
                        done.set()
                        return
                except OSError:
                    pass

    return threading.Thread(target=watch, daemon=True)


async def test_a_file_cut_short_while_it_is_archived_leaves_an_archive_that_restores(
    tmp_path: Path,
) -> None:
    """tarfile wrote the member's header with the old size, then met the short read: the file
    was listed as skipped, the backup said "written", and no restore could read the archive."""
    settings = await _data(tmp_path)
    workspace = tmp_path / "data" / "workspace"
    workspace.mkdir(exist_ok=True)
    log = workspace / "a-build.log"
    original = os.urandom(24 << 20)  # incompressible: reading it through gzip takes a while
    log.write_bytes(original)
    (workspace / "b-after.txt").write_text("archived after the log\n")
    cut = threading.Event()
    writer = _cut_when_opened(log, 1000, cut)
    writer.start()
    report = create_backup(settings, tmp_path / "b.tar.gz")
    writer.join(10)
    assert cut.is_set(), "the writer never saw the backup open the file"

    restore_backup(make_settings(tmp_path / "fresh", None), tmp_path / "b.tar.gz")
    restored = tmp_path / "fresh" / "workspace"
    assert (restored / "b-after.txt").read_text() == "archived after the log\n"
    got = (restored / "a-build.log").read_bytes()
    assert original.startswith(got) and len(got) >= 1000, len(got)  # what was read, whole
    assert "workspace/a-build.log" not in " ".join(report.skipped)


async def test_a_backup_never_writes_through_a_link_nor_into_the_data_directory(
    tmp_path: Path,
) -> None:
    """`backup latest.tar.gz` with latest.tar.gz a link replaced the link by the archive; a
    path through a linked folder wrote the archive into the data directory itself."""
    settings = await _data(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "real.tar.gz").write_bytes(b"yesterday")
    (out / "latest.tar.gz").symlink_to("real.tar.gz")
    with pytest.raises(BackupError, match=r"latest\.tar\.gz is a symbolic link \(to real"):
        create_backup(settings, out / "latest.tar.gz")
    assert (out / "latest.tar.gz").is_symlink()
    assert (out / "real.tar.gz").read_bytes() == b"yesterday"

    (tmp_path / "alias").symlink_to(tmp_path / "data")
    with pytest.raises(BackupError, match="outside the data directory"):
        create_backup(settings, tmp_path / "alias" / "b.tar.gz")
    assert not (tmp_path / "data" / "b.tar.gz").exists()
    assert sorted(p.name for p in out.iterdir()) == ["latest.tar.gz", "real.tar.gz"]


def _archive(path: Path, manifest: Any, members: dict[str, bytes] | None = None) -> Path:
    body = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"manifest.json": body, **(members or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_DB = {"data/steward.db": _sha(b"db")}


@pytest.mark.parametrize(
    "manifest",
    [
        [1, 2],
        "a string",
        b"\xff\xfe not json",
        {"format": 1, "schema": "abc", "files": _DB},
        {"format": 1, "schema": True, "files": _DB},
        {"format": 1, "schema": 1, "files": ["data/steward.db"]},
        {"format": 1, "schema": 1, "files": {}},
        {"format": 1, "schema": 1, "files": {"data/steward.db": 5}},
        {"format": 1, "schema": 1, "files": {"data/steward.db": "00"}},
        {"format": 1, "schema": 1, "files": _DB, "created_at": 7},
        {"format": 1, "schema": 1, "files": _DB | {"../../tmp/x": _sha(b"x")}},
        {"format": 1, "schema": 1, "files": _DB | {"/etc/cron.d/x": _sha(b"x")}},
        {"format": 1, "schema": 1, "files": _DB | {"data/./x": _sha(b"x")}},
        {"format": 1, "schema": 1, "files": _DB | {"data/steward.lock": _sha(b"x")}},
        {"format": 1, "schema": 1, "files": _DB | {"elsewhere/x": _sha(b"x")}},
    ],
)
def test_a_crafted_manifest_is_refused_in_one_line(tmp_path: Path, manifest: Any) -> None:
    """`[1, 2]` gave "AttributeError: 'list' object has no attribute 'get'", a schema "abc"
    a ValueError: no traceback, but no reason either."""
    archive = _archive(tmp_path / "x.tar.gz", manifest, {"data/steward.db": b"db"})
    with pytest.raises(BackupError) as refused:
        restore_backup(make_settings(tmp_path / "data", None), archive)
    assert str(refused.value) == f"{archive} is not a Steward backup (its manifest is malformed)"
    assert not (tmp_path / "tmp").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] in ([], ["steward.lock"])


def test_a_manifest_of_another_format_or_none_says_so(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", None)
    other = _archive(tmp_path / "o.tar.gz", {"format": 2, "schema": 1, "files": _DB})
    with pytest.raises(BackupError, match="unknown backup format 2"):
        restore_backup(settings, other)
    with tarfile.open(tmp_path / "n.tar.gz", "w:gz") as tar:
        tar.addfile(tarfile.TarInfo("data/x"), io.BytesIO())
    with pytest.raises(BackupError, match=r"not a Steward backup \(no manifest\)"):
        restore_backup(settings, tmp_path / "n.tar.gz")


async def test_hard_linked_files_are_each_archived_whole(tmp_path: Path) -> None:
    """tarfile made the second name of a hard-linked file a link member, with no data, while
    the manifest took the hash of the bytes read for it (none): "damaged" at every restore."""
    settings = await _data(tmp_path)
    workspace = tmp_path / "data" / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "a.txt").write_text("hello\n")
    os.link(workspace / "a.txt", workspace / "b.txt")
    create_backup(settings, tmp_path / "b.tar.gz")
    restore_backup(make_settings(tmp_path / "fresh", None), tmp_path / "b.tar.gz")
    assert (tmp_path / "fresh" / "workspace" / "b.txt").read_text() == "hello\n"


async def test_a_backslash_in_a_file_name_backs_up_and_restores(tmp_path: Path) -> None:
    """R59: "notes\\2026.txt" (a zip made on Windows, unpacked here) went into an archive the
    backup verified, and restore refused the whole archive as malformed."""
    settings = await _data(tmp_path)
    workspace = tmp_path / "data" / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "notes\\2026.txt").write_text("odd but fine")
    (workspace / "plain.txt").write_text("hello")
    create_backup(settings, tmp_path / "b.tar.gz")
    restore_backup(make_settings(tmp_path / "restored", None), tmp_path / "b.tar.gz")
    restored = tmp_path / "restored" / "workspace"
    assert (restored / "notes\\2026.txt").read_text() == "odd but fine"
    assert (restored / "plain.txt").read_text() == "hello"


async def test_a_restore_cut_short_after_the_move_still_withdraws_what_was_pending(
    tmp_path: Path,
) -> None:
    """R147: the mark that withdraws what a backup held pending was set after the files were
    put in place, so a restore stopped there (killed, or failing) left a database whose old
    approvals could be approved, and run, again. Here the MCP file's place cannot be written,
    which fails the restore after the move."""
    import sqlite3
    from contextlib import closing

    from memory.backup import RESTORED_PENDING

    outside = tmp_path / "servers.json"
    outside.write_text('{"mcpServers": {}}')
    settings = await _data(tmp_path)
    settings = make_settings(settings.data_dir, None, STEWARD_MCP_CONFIG=str(outside))
    create_backup(settings, tmp_path / "b.tar.gz")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    fresh = make_settings(tmp_path / "fresh", None, STEWARD_MCP_CONFIG=str(blocker / "mcp.json"))
    with pytest.raises(Exception):  # noqa: B017 - how it fails is not the point
        restore_backup(fresh, tmp_path / "b.tar.gz")
    database = tmp_path / "fresh" / "steward.db"
    assert database.exists(), "the restore did not get as far as the move"
    with closing(sqlite3.connect(database)) as db:
        row = db.execute("SELECT value FROM state WHERE key = ?", (RESTORED_PENDING,)).fetchone()
    assert row == ("1",)


async def test_a_backup_that_cannot_hold_the_audit_key_is_not_written(tmp_path: Path) -> None:
    """R141: an audit key the backup could not read was only "not included", exit 0; the
    restore took the archive, and the restored Steward could not start (a keyed log, no key)."""
    settings = await _data(tmp_path)
    key = settings.data_dir / "audit.key"
    assert key.is_file(), "the audit log is keyed from the first event"
    key.rename(tmp_path / "key-elsewhere")
    key.symlink_to(tmp_path / "gone")  # a link to nothing: no key a backup can read
    with pytest.raises(BackupError, match=r"audit\.key"):
        create_backup(settings, tmp_path / "b.tar.gz")
    assert not (tmp_path / "b.tar.gz").exists()


async def test_a_policy_kept_as_a_link_is_backed_up_as_what_it_holds(tmp_path: Path) -> None:
    """R149: a `policy.toml` linked from a dotfiles folder (read through the link by Steward)
    failed every backup once a policy it could not archive did."""
    settings = await _data(tmp_path)
    kept = tmp_path / "dotfiles-policy.toml"
    kept.write_text('[[rules]]\ntool = "web_fetch"\nrisk = "read"\n')
    (settings.data_dir / "policy.toml").symlink_to(kept)
    report = create_backup(settings, tmp_path / "b.tar.gz")
    with tarfile.open(report.path) as tar:
        member = tar.extractfile("data/policy.toml")
        assert member is not None and member.read() == kept.read_bytes()


async def test_a_reminder_due_after_the_backup_is_marked_when_the_restore_sends_it(
    tmp_path: Path,
) -> None:
    """R169: a reminder that fired after `steward backup` fired again, plainly, once that
    backup was restored ("a possible duplicate is always marked"). One due between the
    backup's making and the restore now says it may have reached you already; one due after
    the restore does not."""
    import sqlite3
    from contextlib import closing
    from datetime import UTC, datetime

    from harness import running_steward, until

    from memory.clock import iso

    settings = make_settings(tmp_path / "data", None)
    async with running_steward(settings.data_dir, None) as h:
        await h.say("/remind 30m water the plants")
        await h.say("/remind 60m call the plumber")
    backup = create_backup(settings, tmp_path / "b.tar.gz")
    restored = restore_backup(settings, backup.path, force=True)
    made = datetime.fromisoformat(restored.created_at).astimezone(UTC)
    with closing(sqlite3.connect(settings.database_path)) as db, db:
        db.execute(  # fell due as the backup was made (its time, to the second): before now
            "UPDATE schedules SET next_run_at = ? WHERE payload LIKE '%plants%'",
            (iso(made),),
        )
    async with running_steward(settings.data_dir, None) as h:
        assert h.steward.scheduler is not None
        await h.steward.scheduler.run_due()  # the start's own catch-up may have taken it
        await until(lambda: [t for t in h.channel.texts() if "plants" in t], "the reminder")
        sent = h.channel.texts()
    [plants] = [t for t in sent if "water the plants" in t]
    assert "restored from a backup made before this fell due" in plants
    assert not [t for t in sent if "plumber" in t]  # not due yet


async def test_a_backups_time_is_when_its_database_was_copied(tmp_path: Path) -> None:
    """R175: the manifest's time was taken once the whole workspace was archived (seconds,
    minutes for a large one, after the database copy): a reminder sent in between fell outside
    the restore's window and came again unmarked."""
    from datetime import UTC, datetime, timedelta

    settings = await _data(tmp_path)
    (settings.workspace).mkdir(parents=True, exist_ok=True)
    # it must take over a second to archive (the manifest's time is in whole seconds): 48 MB
    # took 1.03 s on a fresh CI machine, too near; gzip takes 128 MB of noise at ~50 MB/s
    (settings.workspace / "video.bin").write_bytes(os.urandom(128 * 1024 * 1024))
    before = datetime.now(UTC)
    create_backup(settings, tmp_path / "b.tar.gz")
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        made = datetime.fromisoformat(json.load(member)["created_at"])
    assert datetime.now(UTC) - before > timedelta(seconds=1.1), "archived too fast to tell"
    assert made <= before + timedelta(milliseconds=50)
