"""The command line as a newcomer meets it: one data directory wherever Steward is started,
errors in one line with a non-zero status and no traceback, and `--version`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.paths import find_home, load_at_home

STEWARD = [sys.executable, "-m", "bot.cli"]
CHECKOUT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "STEWARD_"))}
    return env | {"STEWARD_EMBEDDER": "none", "STEWARD_LOG_LEVEL": "WARNING", **extra}


def steward(*args: str, cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*STEWARD, *args],
        cwd=cwd,
        env=_env(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("steward: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a `.env` naming a relative data directory, and one message remembered."""
    home = tmp_path_factory.mktemp("home")
    (home / ".env").write_text("STEWARD_DATA_DIR=state\nSTEWARD_TIMEZONE=Europe/Berlin\n")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = steward(
        "run",
        cwd=elsewhere,
        stdin="/remember the spare key is under the blue pot\n",
        STEWARD_HOME=str(home),
    )
    assert result.returncode == 0, result.stderr
    assert "Remembered #1" in result.stdout
    return home


def test_a_start_from_another_directory_finds_the_same_data(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "somewhere" / "else"
    other.mkdir(parents=True)
    result = steward("run", cwd=other, stdin="/memory\n/status\n", STEWARD_HOME=str(home))
    assert result.returncode == 0, result.stderr
    assert "the spare key is under the blue pot" in result.stdout
    assert f"Data: {home / 'state'}" in result.stdout  # absolute, as resolved at start-up
    assert not (other / "state").exists() and not (other / "data").exists()


def test_the_start_up_log_names_the_absolute_data_directory(home: Path, tmp_path: Path) -> None:
    result = steward(
        "run", cwd=tmp_path, stdin="", STEWARD_HOME=str(home), STEWARD_LOG_LEVEL="INFO"
    )
    assert result.returncode == 0, result.stderr
    assert f"data directory: {home / 'state'}" in result.stderr


def test_the_home_rule(tmp_path: Path) -> None:
    # STEWARD_HOME wins, relative to the current directory.
    found = find_home({"STEWARD_HOME": "inst"}, cwd=tmp_path)
    assert (found.dir, found.reason) == (tmp_path / "inst", "STEWARD_HOME")
    # Else the checkout Steward runs from, wherever it is started.
    found = find_home({}, cwd=tmp_path)
    assert (found.dir, found.reason) == (CHECKOUT, "the source checkout")
    # Else (an installed wheel) the current directory.
    found = find_home({}, cwd=tmp_path, checkout=None)
    assert found.dir == tmp_path
    # Relative paths become absolute against the home, once.
    (tmp_path / ".env").write_text("STEWARD_DATA_DIR=d\nSTEWARD_EMBEDDER_DIR=models/x\n")
    settings, _ = load_at_home(find_home({"STEWARD_HOME": str(tmp_path)}, cwd=Path("/")))
    assert settings.data_dir == tmp_path / "d"
    assert settings.embedder_dir == tmp_path / "models/x"
    assert settings.policy_path == tmp_path / "d" / "policy.toml"
    assert settings.workspace == tmp_path / "d" / "workspace"


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "verify"),
        ("audit", "export"),
        ("memory", "export"),
        ("policy", "check"),
        ("backup", "b.tar.gz"),
    ],
)
def test_admin_commands_refuse_a_directory_without_a_database(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = steward(*args, cwd=tmp_path, STEWARD_HOME=str(tmp_path))
    line = one_line_error(result)
    assert f"no Steward database in {tmp_path / 'data'}" in line
    assert not (tmp_path / "data" / "steward.db").exists()  # nothing was created


def test_cli_errors_are_one_line_without_traceback(home: Path, tmp_path: Path) -> None:
    where = {"cwd": tmp_path, "STEWARD_HOME": str(home)}
    folder = tmp_path / "backups"
    folder.mkdir()
    line = one_line_error(steward("backup", str(folder), **where))
    assert f"{folder} is a directory" in line and "steward.tar.gz" in line  # not a temp name
    line = one_line_error(steward("audit", "export", "-o", "/nonexistent/x", **where))
    assert "/nonexistent/x" in line and "No such file or directory" in line
    line = one_line_error(steward("memory", "export", "-o", "/nonexistent/y", **where))
    assert "/nonexistent/y" in line
    line = one_line_error(steward("restore", str(tmp_path / "missing.tar.gz"), **where))
    assert "no backup at" in line
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tarball")
    one_line_error(steward("restore", "--force", str(garbage), **where))


def test_an_unknown_option_shows_the_usage_of_the_command_given(home: Path, tmp_path: Path) -> None:
    """Review 80: `steward audit verify --bogus` showed steward's whole usage, not the
    command's."""
    where = {"cwd": tmp_path, "STEWARD_HOME": str(home)}
    result = steward("audit", "verify", "--bogus", **where)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: steward audit verify")
    assert "steward audit verify: error: unrecognized arguments: --bogus" in result.stderr
    result = steward("memory", "import", "a.jsonl", "b.jsonl", **where)
    assert result.stderr.startswith("usage: steward memory import")


def test_audit_export_to_a_file_says_what_it_wrote(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    result = steward("audit", "export", "-o", str(out), cwd=tmp_path, STEWARD_HOME=str(home))
    assert result.returncode == 0, result.stderr
    events = out.read_text().splitlines()
    assert events
    assert f"{len(events)} audit events written to {out}" in result.stderr


def test_a_closed_pipe_ends_quietly(home: Path) -> None:
    """`steward policy check | head -1`: no traceback, no 'Exception ignored'."""
    result = subprocess.run(
        f"{sys.executable} -m bot.cli policy check | head -1",
        shell=True,
        cwd=home,
        env=_env(STEWARD_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=60,
        executable="/bin/bash",
    )
    assert result.stdout.strip().endswith("policy.toml: valid")
    assert result.stderr == "", result.stderr
    piped = subprocess.run(
        # `true` reads nothing and exits at once: every write of Steward meets a closed pipe.
        f"set -o pipefail; {sys.executable} -m bot.cli policy check | true",
        shell=True,
        cwd=home,
        env=_env(STEWARD_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=60,
        executable="/bin/bash",
    )
    assert piped.returncode != 0 and piped.stderr == "", piped


def test_version(tmp_path: Path) -> None:
    result = steward("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("steward 0.")


def test_an_upgrade_applies_the_migrations_and_says_what_changed(tmp_path: Path) -> None:
    import asyncio

    from memory.db import Database, load_migrations

    migrations = load_migrations()
    older = migrations[:-1]

    async def make_old() -> None:
        db = await Database.open(tmp_path / "data" / "steward.db", older)
        await db.close()

    asyncio.run(make_old())
    newest = migrations[-1]
    result = steward("run", cwd=tmp_path, stdin="", STEWARD_HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    said = f"migration {newest.version:04d}_{newest.name}: {newest.summary}"
    assert said in result.stderr, result.stderr
    again = steward("run", cwd=tmp_path, stdin="", STEWARD_HOME=str(tmp_path))
    assert "migration" not in again.stderr  # applied once


def test_only_a_start_upgrades_the_database(tmp_path: Path) -> None:
    """`audit verify`, `memory export`, `web-link`… migrated the database: a newer checkout's
    command upgraded it under a Steward still running the old code, and cut off the way back."""
    import asyncio
    import sqlite3

    from memory.db import Database, load_migrations

    older = load_migrations()[:-1]

    async def make_old() -> None:
        db = await Database.open(tmp_path / "data" / "steward.db", older)
        await db.close()

    asyncio.run(make_old())
    where = {"cwd": tmp_path, "STEWARD_HOME": str(tmp_path)}
    for args in (("audit", "verify"), ("audit", "export"), ("memory", "export"), ("web-link",)):
        line = one_line_error(steward(*args, **where))
        assert f"schema version {older[-1].version}" in line and "steward run" in line, line
    with sqlite3.connect(tmp_path / "data" / "steward.db") as conn:
        [(version,)] = conn.execute("SELECT MAX(version) FROM schema_version").fetchall()
    assert version == older[-1].version  # untouched
    assert steward("run", stdin="", **where).returncode == 0
    assert steward("audit", "verify", **where).returncode == 0


def test_a_damaged_database_is_one_line_naming_it_and_the_way_back(tmp_path: Path) -> None:
    """`steward run` on a truncated or foreign steward.db printed a 30-line traceback and
    "DatabaseError: file is not a database", naming neither the file nor a way back."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)  # as Steward makes it (an open one adds its own warning line)
    (data / "steward.db").write_bytes(b"this is not SQLite at all, just bytes " * 200)
    result = steward("run", cwd=tmp_path, STEWARD_DATA_DIR=str(data))
    assert result.returncode == 1
    line = one_line_error(result)
    assert "steward.db" in line and "steward restore" in line, line


def test_a_database_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    """R55: "steward: error: OperationalError: unable to open database file", with neither the
    path nor what to look at."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "steward.db").mkdir()  # where the file should be, something else
    result = steward("run", cwd=tmp_path, STEWARD_DATA_DIR=str(data))
    assert result.returncode == 1
    line = one_line_error(result)
    assert str(data / "steward.db") in line and "cannot be opened" in line, line
    assert "OperationalError" not in line


def test_a_locked_database_is_not_called_damaged(tmp_path: Path) -> None:
    """Every DatabaseError was told to restore a backup, a lock too (and restoring loses all
    since the backup): only a file SQLite cannot read is."""
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    holder = sqlite3.connect(data / "steward.db", isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = steward("run", cwd=tmp_path, STEWARD_DATA_DIR=str(data))
    finally:
        holder.close()
    assert result.returncode != 0
    assert "steward restore" not in result.stderr, result.stderr


def test_no_command_writes_over_the_settings_the_database_or_another_file(
    home: Path, tmp_path: Path
) -> None:
    """R141: `steward backup ~/steward/.env` replaced the settings with an archive, and an
    export's `-o` into the data directory replaced the database or the audit key, each with
    exit 0; a backup replaced any file named. Each is refused in one line, the file kept; a
    backup still replaces an older backup (a daily `latest.tar.gz`)."""
    settings = (home / ".env").read_bytes()
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    database = home / "state" / "steward.db"
    before = database.read_bytes()
    for args, kept in (
        (("backup", str(home / ".env")), home / ".env"),
        (("backup", str(notes)), notes),
        (("audit", "export", "-o", str(database)), database),
        (("memory", "export", "-o", str(home / "state" / "audit.key")), None),
        (("memory", "export", "-o", str(home / ".env")), home / ".env"),
    ):
        line = one_line_error(steward(*args, cwd=tmp_path, STEWARD_HOME=str(home)))
        assert "cannot write" in line or "not a Steward backup" in line, line
        if kept is not None:
            assert kept.exists()
    assert (home / ".env").read_bytes() == settings and notes.read_text() == "mine"
    assert database.read_bytes()[:16] == before[:16]
    alias = tmp_path / "alias.jsonl"
    os.link(home / ".env", alias)  # R149: a hard link to the settings passed every check
    line = one_line_error(
        steward("audit", "export", "-o", str(alias), cwd=tmp_path, STEWARD_HOME=str(home))
    )
    assert "hard links" in line and (home / ".env").read_bytes() == settings
    piped = steward("audit", "export", "-o", "/dev/stdout", cwd=tmp_path, STEWARD_HOME=str(home))
    assert piped.returncode == 0 and '"kind"' in piped.stdout, piped.stderr
    latest = tmp_path / "latest.tar.gz"
    for _ in range(2):
        done = steward("backup", str(latest), cwd=tmp_path, STEWARD_HOME=str(home))
        assert done.returncode == 0, done.stderr


async def test_status_names_a_data_folder_whose_name_is_not_utf8(tmp_path: Path) -> None:
    """R141: its surrogate could not be stored, and /status failed ("something went wrong")."""
    from harness import running_steward

    data = tmp_path / os.fsdecode(b"d\xff")
    async with running_steward(data, None) as h:
        said = await h.say("/status")
    assert "Data: " in said and "d\\xff" in said


@pytest.mark.parametrize(
    ("args", "example"),
    [
        (("backup",), "example: steward backup "),
        (("restore",), "example: steward restore "),
        (("memory",), "example: steward memory export -o"),
        (("memory", "import"), "example: steward memory import memories.jsonl"),
        (("audit", "nonsense"), "example: steward audit verify"),
        # R155: a word too many after a command with no arguments had no example
        (("run", "x"), "example: steward run"),
        (("web-link", "x"), "example: steward web-link"),
        (("audit", "verify", "x"), "example: steward audit verify"),
        (("policy", "check", "x"), "example: steward policy check"),
        (("mcp", "check", "x"), "example: steward mcp check"),
    ],
)
def test_a_malformed_command_answers_with_its_usage_and_an_example(
    tmp_path: Path, args: tuple[str, ...], example: str
) -> None:
    """R141: `steward backup` gave argparse's usage alone, with no example."""
    result = steward(*args, cwd=tmp_path, STEWARD_HOME=str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: steward ") and example in result.stderr


def test_ctrl_c_while_the_command_line_loads_is_quiet(tmp_path: Path) -> None:
    """A Ctrl-C in the second or two the console script spends importing Steward ends it with
    status 130 and no traceback (it was raised in the script's own import line, out of reach of
    the command line's handlers). The interrupt is made certain, not timed: an import hook
    raises it when the settings module loads, as SIGINT would."""
    import tomllib

    script = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = script["steward"].split(":")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'agent.config':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, _Interrupt())\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; from {module} import {function} as m; sys.exit(m(['--version']))",
        ],
        cwd=CHECKOUT,
        env=_env(PYTHONPATH=str(hook)),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 130, result
    assert result.stderr == "", result.stderr


def test_a_settings_file_others_can_read_is_said_at_start(tmp_path: Path) -> None:
    """R155: a `.env` of mode 644 holding the API key started without a word (an audit key
    of that mode is warned of); one of mode 600 starts quietly."""
    home = tmp_path / "home"
    home.mkdir()
    env = home / ".env"
    env.write_text("STEWARD_DATA_DIR=state\n")
    env.chmod(0o644)
    warned = steward("run", cwd=tmp_path, stdin="", STEWARD_HOME=str(home))
    env.chmod(0o600)
    quiet = steward("run", cwd=tmp_path, stdin="", STEWARD_HOME=str(home))
    assert warned.returncode == 0 and quiet.returncode == 0, (warned.stderr, quiet.stderr)
    assert f"{env} is readable by other users" in warned.stderr and "chmod 600" in warned.stderr
    assert "readable by other users" not in quiet.stderr


def test_a_backup_to_a_fifo_is_refused_at_once(home: Path, tmp_path: Path) -> None:
    """R155: `steward backup <fifo>` read the FIFO to see whether it was an older backup, and
    waited for a writer for ever."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    line = one_line_error(steward("backup", str(fifo), cwd=tmp_path, STEWARD_HOME=str(home)))
    assert "is not a regular file" in line
