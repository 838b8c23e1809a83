"""The keyed audit chain (issue 11): whoever can write steward.db but not read the data
directory's `audit.key` cannot forge the log, and the key never leaves that file.

The attacker here does what a process left behind by a command could: open the SQLite file, turn
an `ask` into `decision: allow`, and re-chain every event after it, with plain SHA-256 (as the
log was before keys) or with a key of its own. `steward audit verify` runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from trust_world import instruction, trust_world

from memory.audit import KEYED, AuditKey, AuditKeyError, AuditLog, read_key
from memory.clock import SystemClock
from memory.db import Database
from memory.stores import Stores

pytestmark = pytest.mark.trust

Signer = Callable[[str, sqlite3.Row], str]


def _fields(row: sqlite3.Row) -> list[str]:
    return [row["at"], row["kind"], row["actor"], row["subject"], row["detail"]]


def plain_sha256(prev: str, row: sqlite3.Row) -> str:
    """The pre-key algorithm, which anyone can read in the source."""
    canonical = json.dumps(_fields(row), separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def sha256_dressed_as_keyed(prev: str, row: sqlite3.Row) -> str:
    return KEYED + plain_sha256(prev, row)


ATTACKERS_KEY = AuditKey(secrets.token_bytes(32), 1)


def own_key(prev: str, row: sqlite3.Row) -> str:
    return ATTACKERS_KEY.mac(prev, *_fields(row))


def rechain(db: Path, start: int, sign: Signer) -> None:
    """Recompute prev_hash and hash of every event from `start` on, as an attacker would."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM audit_events ORDER BY id").fetchall()
        prev = "0" * 64
        for row in rows:
            if row["id"] >= start:
                digest = sign(prev, row)
                conn.execute(
                    "UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?",
                    (prev, digest, row["id"]),
                )
                prev = digest
            else:
                prev = row["hash"]


def steward(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEWARD_DATA_DIR": str(data)}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _an_asked_fetch(tmp_path: Path) -> int:
    """Audited work holding an `ask`; returns that event's id."""
    async with trust_world(tmp_path) as w:
        w.web.pages["/p"] = "<p>hi</p>" + instruction("web_fetch", {"url": "http://x.example/"})
        await w.h.say(instruction("web_fetch", {"url": w.web.base_url + "/p"}))
        asked = [e for e in await w.audit_kinds("tool.requested") if e.detail["decision"] == "ask"]
        await w.check_invariants()
        return asked[0].id


def _forge_allow(db: Path, event_id: int) -> None:
    with sqlite3.connect(db) as conn:
        (detail,) = conn.execute(
            "SELECT detail FROM audit_events WHERE id = ?", (event_id,)
        ).fetchone()
        forged = json.dumps(
            {**json.loads(detail), "decision": "allow"}, sort_keys=True, separators=(",", ":")
        )
        conn.execute("UPDATE audit_events SET detail = ? WHERE id = ?", (forged, event_id))


@pytest.mark.parametrize("sign", [plain_sha256, sha256_dressed_as_keyed, own_key])
def test_a_chain_rebuilt_without_the_key_fails_verify_naming_the_event(
    tmp_path: Path, sign: Signer
) -> None:
    asked = asyncio.run(_an_asked_fetch(tmp_path))
    data = tmp_path / "data"
    _forge_allow(data / "steward.db", asked)
    rechain(data / "steward.db", asked, sign)
    result = steward(data, "audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"BROKEN at event {asked}:" in result.stdout


def test_an_untouched_keyed_chain_verifies(tmp_path: Path) -> None:
    asyncio.run(_an_asked_fetch(tmp_path))
    data = tmp_path / "data"
    result = steward(data, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    key = read_key(data / "audit.key")
    assert key is not None and key.keyed_from == 1
    assert result.stdout.startswith("audit chain ok:")
    assert f"keyed from event 1 with key {key.key_id}" in result.stdout
    with sqlite3.connect(data / "steward.db") as conn:
        hashes = [h for (h,) in conn.execute("SELECT hash FROM audit_events")]
    assert hashes and all(h.startswith(KEYED) for h in hashes)


def _cut(db: Path, sql: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql)


@pytest.mark.parametrize(
    "attack",
    ["the newest two", "all of them", "the head file", "a head of its own"],
)
def test_cutting_the_logs_end_fails_verify_and_is_recorded_at_the_next_start(
    tmp_path: Path, attack: str
) -> None:
    """The chain alone proves no event came after the newest: deleting the newest events (an
    approval decided, a login), or all of them, left a valid, shorter chain. The head kept
    beside the key says how far the log reached."""
    asyncio.run(_an_asked_fetch(tmp_path))
    data = tmp_path / "data"
    db = data / "steward.db"
    with sqlite3.connect(db) as conn:
        (last,) = conn.execute("SELECT MAX(id) FROM audit_events").fetchone()
    if attack == "the newest two":
        _cut(db, f"DELETE FROM audit_events WHERE id > {last - 2}")
    elif attack == "all of them":
        _cut(db, "DELETE FROM audit_events")
    elif attack == "the head file":
        _cut(db, f"DELETE FROM audit_events WHERE id > {last - 2}")
        (data / "audit.head").unlink()
    else:  # a head naming an earlier event, MACed with a key of the attacker's
        _cut(db, f"DELETE FROM audit_events WHERE id > {last - 2}")
        from memory.audit_head import write_head

        write_head(data / "audit.head", ATTACKERS_KEY, last - 2, "x")
    result = steward(data, "audit", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "audit head" in result.stdout, result.stdout
    assert "event None" not in result.stdout  # R155: no event to name is not "event None"

    async def start() -> list[str]:
        stores = await Stores.open(db, SystemClock())
        try:
            return [e.detail["problem"] for e in await stores.audit.recent(kind="audit.truncated")]
        finally:
            await stores.close()

    [recorded] = asyncio.run(start())  # in the log for good, and the log goes on from there
    assert "audit head" in recorded or "missing" in recorded, recorded
    after = steward(data, "audit", "verify")
    assert after.returncode == 0 and "WARNING: it was cut short 1 time(s)" in after.stdout
    assert asyncio.run(start()) == [recorded]  # a clean start records nothing more


def test_cutting_the_logs_end_while_steward_runs_is_recorded_at_the_next_event(
    tmp_path: Path,
) -> None:
    """Each append moves the head on; it used to do so over a log cut short meanwhile (the
    newest decisions deleted by anything that can write steward.db), erasing the trace."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "steward.db"

    async def run() -> list[str]:
        stores = await Stores.open(db, SystemClock())
        try:
            for n in range(5):
                await stores.audit.record("approval.decided", actor="owner", subject=f"a{n}")
            _cut(db, "DELETE FROM audit_events WHERE id > (SELECT MAX(id) - 2 FROM audit_events)")
            await stores.audit.record("turn.started", actor="steward")
            return [e.kind for e in await stores.audit.recent(3)]
        finally:
            await stores.close()

    assert asyncio.run(run()) == ["approval.decided", "audit.truncated", "turn.started"]
    result = steward(data, "audit", "verify")
    assert "WARNING: it was cut short 1 time(s)" in result.stdout, result.stdout


async def _old_then_upgraded(data: Path) -> None:
    """Three events written before keys existed, then two by a Steward with a key."""
    db = await Database.open(data / "steward.db")
    old = AuditLog(db, SystemClock())  # no key: the log as it was
    for n in range(3):
        await old.record("tool.requested", actor="user:1", subject="shell", decision="ask", n=n)
    await db.close()
    stores = await Stores.open(data / "steward.db", SystemClock())
    try:
        for n in range(2):
            await stores.audit.record("tool.ran", actor="user:1", subject="shell", n=n)
        assert (await stores.audit.verify()).ok
    finally:
        await stores.close()


def test_an_old_unkeyed_log_upgrades_and_its_keyed_part_cannot_pass_as_old(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    asyncio.run(_old_then_upgraded(data))
    key_file = data / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = read_key(key_file)
    assert key is not None and key.keyed_from == 4
    db = data / "steward.db"
    with sqlite3.connect(db) as conn:
        hashes = [h for (h,) in conn.execute("SELECT hash FROM audit_events ORDER BY id")]
    assert [h.startswith(KEYED) for h in hashes] == [False, False, False, True, True]
    result = steward(data, "audit", "verify")
    assert result.returncode == 0 and "keyed from event 4" in result.stdout
    assert "WARNING: events 1 to 3 are older than the audit key (made " in result.stdout
    # R196: an upgrade's events are named for what they may be, not only a removed key's
    assert "written by a Steward from before audit keys (an upgrade), or, if" in result.stdout

    rechain(db, 5, plain_sha256)  # pass the newest event off as one from before the key
    result = steward(data, "audit", "verify")
    assert "BROKEN at event 5: it is not keyed" in result.stdout

    _forge_allow(db, 2)  # edit an old event and re-chain everything the old way
    rechain(db, 2, plain_sha256)
    result = steward(data, "audit", "verify")
    assert result.returncode == 1 and "BROKEN at event 4: it is not keyed" in result.stdout

    with sqlite3.connect(db) as conn:  # drop the keyed events and the log looks complete
        conn.execute("DELETE FROM audit_events WHERE id >= 3")
    rechain(db, 1, plain_sha256)
    result = steward(data, "audit", "verify")
    assert result.returncode == 1 and "BROKEN at event 3: event 3 is missing" in result.stdout
    with pytest.raises(AuditKeyError, match="truncated"):  # and Steward will not start on it
        asyncio.run(Stores.open(db, SystemClock()))


def test_a_missing_key_fails_verify_and_start_up_in_one_line(tmp_path: Path) -> None:
    asyncio.run(_an_asked_fetch(tmp_path))
    data = tmp_path / "data"
    (data / "audit.key").unlink()
    result = steward(data, "audit", "verify")
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert output.splitlines() == [
        f"audit chain cannot be verified: the audit key {data / 'audit.key'} is missing,"
        " but event 1 is keyed"
    ]
    started = steward(data, "run")  # no new key over a keyed log
    assert started.returncode == 2 and "Traceback" not in started.stderr
    assert "audit key" in started.stderr and "is missing" in started.stderr
    assert not (data / "audit.key").exists()


def test_a_wrong_key_file_fails_verify(tmp_path: Path) -> None:
    asyncio.run(_an_asked_fetch(tmp_path))
    data = tmp_path / "data"
    stored = json.loads((data / "audit.key").read_text())
    stored["key"] = secrets.token_bytes(32).hex()
    (data / "audit.key").write_text(json.dumps(stored))
    result = steward(data, "audit", "verify")
    assert result.returncode == 1
    assert "BROKEN at event 1: its content does not match its MAC" in result.stdout
    (data / "audit.key").write_text("not a key")
    result = steward(data, "audit", "verify")
    assert result.returncode == 1 and "is not a valid audit key file" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    asyncio.run(_legacy_events(data))
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from memory.clock import SystemClock\n"
        "from memory.stores import Stores\n"
        "async def main():\n"
        "    s = await Stores.open(Path(sys.argv[1]), SystemClock())\n"
        "    await s.audit.record('x', actor='t')\n"
        "    print((await s.audit.verify()).key_id)\n"
        "    await s.close()\n"
        "asyncio.run(main())\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(data / "steward.db")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    ids = {run.communicate(timeout=60)[0].strip() for run in runs}
    key = read_key(data / "audit.key")
    assert key is not None and ids == {key.key_id} and key.keyed_from == 3
    assert sorted(p.name for p in data.iterdir() if "audit" in p.name) == [
        "audit.head",
        "audit.key",
    ]
    assert steward(data, "audit", "verify").returncode == 0


async def _legacy_events(data: Path) -> None:
    db = await Database.open(data / "steward.db")
    for n in range(2):
        await AuditLog(db, SystemClock()).record("old", actor="t", n=n)
    await db.close()


async def test_the_key_never_reaches_the_model_a_log_or_a_tool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, SQLite statements included
    async with trust_world(tmp_path) as w:
        key_file = w.data_dir / "audit.key"
        for order in (
            instruction("read_file", {"path": "../audit.key"}),
            instruction("read_file", {"path": str(key_file)}),
            instruction("shell", {"command": "cat ../audit.key"}),
            instruction("shell", {"command": f"cat {key_file}"}),
        ):
            await w.h.say(order)
        await w.h.say("/audit")
        results = [str(r.tool_results[0]["content"]) for r in w.model.requests if r.tool_results]
        assert len(results) == 4 and all("refused" in c for c in results)
        # (third-party DEBUG lines quote the canaries planted in the context; not the key)
        await w.check_invariants(
            "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
        )
        key = read_key(key_file)
        assert key is not None
        secret = key.secret
        forms = [secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode()]
        seen = [json.dumps(r.body) for r in w.model.requests]
        seen += [text for _, text in w.h.channel.sent] + [caplog.text, repr(key)]
        for form in forms:
            for text in seen:
                assert form not in text, "the audit key leaked"
    exported = steward(w.data_dir, "audit", "export")
    assert exported.returncode == 0 and exported.stdout.count("\n") > 3
    assert f"audit key {key.key_id}" in exported.stderr
    for form in forms:
        assert form not in exported.stdout + exported.stderr


def test_a_log_rewritten_the_old_way_with_its_key_removed_is_not_called_ok(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review 72: whoever can write the data directory deletes `audit.key` and `audit.head`
    (never reading them), drops an event and re-chains the rest the pre-key way. `verify` said
    "ok, unkeyed"; the next start made a new key over it silently and /audit said verified."""
    asyncio.run(_an_asked_fetch(tmp_path))
    data = tmp_path / "data"
    db = data / "steward.db"
    with sqlite3.connect(db) as conn:
        (total,) = conn.execute("SELECT COUNT(*) FROM audit_events").fetchone()
        conn.execute("DELETE FROM audit_events WHERE id = 2")
        conn.execute("UPDATE audit_events SET id = id - 1 WHERE id > 2")
    rechain(db, 1, plain_sha256)
    (data / "audit.key").unlink()
    (data / "audit.head").unlink()
    result = steward(data, "audit", "verify")
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("audit chain cannot be verified: there is no audit key")

    async def start_and_check() -> tuple[str, str, str]:
        stores = await Stores.open(db, SystemClock())  # a start: a new key, said loudly
        try:
            check = await stores.audit.verify()
            return check.before_key_note, check.key_id, await stores.audit.anchor()
        finally:
            await stores.close()

    with caplog.at_level(logging.INFO, logger="memory.audit_key"):
        note, key_id, anchor = asyncio.run(start_and_check())
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned and f"over {total - 1} earlier events" in warned[0], warned
    # the journal's anchor (logged at each start): where the log stands, and the key's name
    assert anchor.startswith(f"{total - 1} events, the last ")
    assert anchor.endswith(f"; key {key_id} (from event {total})")
    assert note.startswith(f"events 1 to {total - 1} are older than the audit key (made 2")
    result = steward(data, "audit", "verify")
    assert result.returncode == 0 and f"WARNING: {note}" in result.stdout, result.stdout


def test_a_log_with_its_key_from_the_first_event_has_nothing_to_warn_of(tmp_path: Path) -> None:
    asyncio.run(_an_asked_fetch(tmp_path))
    result = steward(tmp_path / "data", "audit", "verify")
    assert result.returncode == 0 and "WARNING" not in result.stdout, result.stdout
