"""Names the command line cannot use, said in one line (R186, R183): a data folder name too
long for the file system, a start in a deleted folder, a backup or export named "-" or blank,
an export over a file others can read, and an import's bad record in the database's words."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from test_ops_cli import STEWARD, _env, one_line_error, steward

LONG = "x" * 300


def one_line(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result
    return one_line_error(result)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a database: one memory and a few audit events."""
    home = tmp_path_factory.mktemp("home")
    result = steward(
        "run",
        cwd=home,
        stdin="/remember the spare key is under the blue pot\n",
        STEWARD_HOME=str(home),
    )
    assert result.returncode == 0, result.stderr
    return home


@pytest.mark.parametrize("where", ["/tmp/" + LONG, LONG, f"/tmp/{LONG}/data"])
@pytest.mark.parametrize("command", [("run",), ("policy", "check")])
def test_a_data_folder_name_too_long_is_one_line_naming_the_setting(
    tmp_path: Path, where: str, command: tuple[str, ...]
) -> None:
    result = steward(*command, cwd=tmp_path, STEWARD_HOME=str(tmp_path), STEWARD_DATA_DIR=where)
    line = one_line(result, 2)
    assert line == (
        "steward: configuration error: STEWARD_DATA_DIR: cannot be used: File name too long"
    )


def test_a_start_in_a_folder_since_deleted_is_one_line(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    result = subprocess.run(
        [
            "sh",
            "-c",
            'cd "$1" && rmdir "$1" && shift && exec "$@"',
            "sh",
            str(gone),
            *STEWARD,
            "policy",
            "check",
        ],
        cwd=tmp_path,
        env=_env(STEWARD_HOME="home"),  # relative: the current folder is needed
        capture_output=True,
        text=True,
        timeout=90,
    )
    line = one_line(result, 2)
    assert "the current directory cannot be used (No such file or directory)" in line, line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("backup", "-"), "backup writes a file, not stdout: name it, e.g. steward backup ~/"),
        (("backup", "   "), "backup needs a file name, not a blank one: e.g. steward backup ~/"),
        (("backup", ""), "backup needs a file name, not a blank one: e.g. steward backup ~/"),
        (("restore", "-"), "restore reads a file, not stdin: name it, e.g. steward restore ~/"),
        (("restore", " "), "restore needs a file name, not a blank one: e.g. steward restore ~/"),
        (
            ("audit", "export", "-o", ""),
            "audit export -o needs a file name (or - for stdout), not a blank one: "
            "e.g. steward audit export -o audit.jsonl",
        ),
        (
            ("memory", "export", "-o", "  "),
            "memory export -o needs a file name (or - for stdout), not a blank one: "
            "e.g. steward memory export -o memories.jsonl",
        ),
        (
            ("memory", "import", ""),
            "memory import needs a file name (or - for stdin), not a blank one: "
            "e.g. steward memory import memories.jsonl",
        ),
    ],
)
def test_a_dash_or_blank_file_name_is_refused_with_an_example(
    home: Path, tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = steward(*args, cwd=tmp_path, STEWARD_HOME=str(home))
    assert says in one_line(result, 2)
    assert list(tmp_path.iterdir()) == []  # no file named "-" or by spaces
    assert result.stdout == ""


@pytest.mark.parametrize("what", ["audit", "memory"])
def test_an_export_over_a_file_others_can_read_is_the_owners_alone(
    home: Path, tmp_path: Path, what: str
) -> None:
    target = tmp_path / "export.jsonl"
    earlier = steward(what, "export", cwd=tmp_path, STEWARD_HOME=str(home)).stdout
    target.write_text(earlier)  # an earlier export of the same kind: replaced (R196)
    target.chmod(0o644)
    result = steward(what, "export", "-o", str(target), cwd=tmp_path, STEWARD_HOME=str(home))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    lines = target.read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.jsonl"]  # no part left
    to_stdout = steward(what, "export", "-o", "-", cwd=tmp_path, STEWARD_HOME=str(home))
    assert to_stdout.returncode == 0 and to_stdout.stdout.splitlines()[0] == lines[0]


def test_a_bad_memory_record_is_named_in_plain_words(home: Path, tmp_path: Path) -> None:
    exported = steward("memory", "export", cwd=tmp_path, STEWARD_HOME=str(home))
    good = json.loads(exported.stdout.splitlines()[0])
    bad = [
        {"text": ""},
        {"text": "\x00"},
        {"text": "\u200b"},
        {"text": "x" * 100_000},
        {"created_at": "9999-12-31T23:59:59-05:00"},
        {"superseded_at": "0001-01-01T00:00:00+01:00"},
        {"created_at": "yesterday"},
        {"importance": 5},
        {"kind": "bogus"},
        {"user": "joe"},
        {"chat": "the family group"},
    ]
    records = [
        good
        | {"id": 100 + n, "text": f"memory {n}", "created_at": f"2026-01-{n:02d}T09:00:00Z"}
        | change
        for n, change in enumerate(bad, 1)
    ]
    file = tmp_path / "bad.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = steward("memory", "import", str(file), cwd=tmp_path, STEWARD_HOME=str(home))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    said = [line.strip() for line in result.stderr.splitlines()[1:]]
    assert said == [
        "record 1: its text is empty",
        "record 2: its text is empty",
        "record 3: its text is empty",
        "record 4: its text is 100,000 characters long; a memory is at most 4,000",
        "record 5: its created_at is out of range (years 1 to 9999): "
        "e.g. 2026-12-07T09:30:00+00:00",
        "record 6: its superseded_at is out of range (years 1 to 9999): "
        "e.g. 2026-12-07T09:30:00+00:00",
        "record 7: its created_at is not a date and time: e.g. 2026-12-07T09:30:00+00:00",
        "record 8: its importance is not a number from 0 to 1",
        "record 9: its kind is not one of fact, preference, episode, goal_note, briefing, note",
        'record 10: its user is not {"identities": [...]}: e.g. "user": {"identities": '
        '["telegram:123456"]}',
        'record 11: its chat is not {"channel": …, "platform_chat_id": …}',
    ]
