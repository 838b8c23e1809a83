"""R253: an approved read or write reaches the file that was approved, and no other.

The approval's check resolved the path and the open resolved it again: a path turned into a
link to another workspace file in between (a confined command running alongside, a process an
unconfined one left) passed the check, and the open followed the link, O_NOFOLLOW too late to
see it. The path is now resolved once, for the check and the open, and the handle's identity
(device, inode) is compared with the approved one before a byte is read or truncated.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.errors import ToolError
from agent.sandbox import Sandbox
from agent.tools import workspace as w
from agent.tools.workspace_open import Pinned, as_approved, open_pinned

DIARY = "SECRET DIARY\n"
SCRIPT = "#!/bin/sh\necho important\n"


def _world(tmp_path: Path) -> tuple[Path, Sandbox]:
    ws = tmp_path / "workspace"
    for folder in ("shared", "private", "notes", "scripts"):
        (ws / folder).mkdir(parents=True)
    (ws / "shared" / "readme.md").write_text("public readme\n")
    (ws / "private" / "diary.md").write_text(DIARY)
    (ws / "notes" / "todo.md").write_text("todo\n")
    (ws / "scripts" / "important.sh").write_text(SCRIPT)
    return ws, Sandbox(ws)


def _to_link(at: Path, target: str) -> None:
    """`at` becomes a link to `target` in one step (a rename over it), as a command does it."""
    tmp = at.with_name(".swap")
    os.symlink(target, tmp)
    os.rename(tmp, at)


def test_a_path_made_a_link_after_the_card_is_not_read_or_written(tmp_path: Path) -> None:
    ws, sb = _world(tmp_path)
    read_ok, write_ok = w._where(sb, "shared/readme.md"), w._file_state(sb, "notes/todo.md")
    _to_link(ws / "shared" / "readme.md", "../private/diary.md")
    _to_link(ws / "notes" / "todo.md", "../scripts/important.sh")
    with pytest.raises(ToolError, match="changed after it was approved; nothing was read"):
        w._approved_read(sb, "shared/readme.md", read_ok)
    with pytest.raises(ToolError, match="changed after it was approved; nothing was written"):
        w._write(sb, "notes/todo.md", b"the card's words\n", write_ok)
    assert (ws / "scripts" / "important.sh").read_text() == SCRIPT


def test_a_path_made_a_link_after_the_check_passed_is_not_opened(tmp_path: Path) -> None:
    """The narrow case, step by step: the check passes, then the swap, then the open (of what
    was checked, not of where the path leads by then)."""
    ws, sb = _world(tmp_path)
    read_ok, write_ok = w._where(sb, "shared/readme.md"), w._file_state(sb, "notes/todo.md")
    read = as_approved(sb, "shared/readme.md", read_ok, Pinned.where, "nothing was read")
    write = as_approved(sb, "notes/todo.md", write_ok, Pinned.state, "nothing was written")
    _to_link(ws / "shared" / "readme.md", "../private/diary.md")
    _to_link(ws / "notes" / "todo.md", "../scripts/important.sh")
    with pytest.raises(ToolError, match="changed after it was approved; nothing was read"):
        open_pinned(sb, read, write=False, undone="nothing was read")
    with pytest.raises(ToolError, match="changed after it was approved; nothing was written"):
        open_pinned(sb, write, write=True, undone="nothing was written")
    assert (ws / "scripts" / "important.sh").read_text() == SCRIPT


def test_another_file_put_in_the_checked_place_is_not_opened(tmp_path: Path) -> None:
    """Not the path only: the file. Another file renamed over the checked one after the check
    (the diary; a copy of the script) is refused by its identity, before it is read or
    truncated; so is a new file's name taken in between."""
    ws, sb = _world(tmp_path)
    read = as_approved(sb, "shared/readme.md", w._where(sb, "shared/readme.md"), Pinned.where, "x")
    write = as_approved(sb, "notes/todo.md", w._file_state(sb, "notes/todo.md"), Pinned.state, "x")
    new = as_approved(sb, "notes/new.sh", w._file_state(sb, "notes/new.sh"), Pinned.state, "x")
    os.rename(ws / "private" / "diary.md", ws / "shared" / "readme.md")
    (ws / "notes" / ".copy").write_text(SCRIPT)
    os.rename(ws / "notes" / ".copy", ws / "notes" / "todo.md")
    (ws / "notes" / "new.sh").write_text(SCRIPT)
    with pytest.raises(ToolError, match="changed after it was approved; nothing was read"):
        open_pinned(sb, read, write=False, undone="nothing was read")
    for pinned in (write, new):
        with pytest.raises(ToolError, match="changed after it was approved; nothing was"):
            open_pinned(sb, pinned, write=True, undone="nothing was written")
    assert (ws / "notes" / "todo.md").read_text() == SCRIPT
    assert (ws / "notes" / "new.sh").read_text() == SCRIPT


def test_approvals_stored_before_still_match_and_run(tmp_path: Path) -> None:
    """The fingerprints kept their form: an approval stored before this change still runs."""
    ws, sb = _world(tmp_path)
    stored = f"{ws.resolve() / 'shared' / 'readme.md'}|symlink=False"
    assert w._where(sb, "shared/readme.md") == stored
    assert w._approved_read(sb, "shared/readme.md", stored) == "public readme\n"
    w._write(sb, "notes/todo.md", b"done\n", w._file_state(sb, "notes/todo.md"))
    w._write(sb, "notes/brand-new.md", b"new\n", w._file_state(sb, "notes/brand-new.md"))
    assert (ws / "notes" / "todo.md").read_text() == "done\n"
    assert (ws / "notes" / "brand-new.md").read_text() == "new\n"


_LIBC = ctypes.CDLL(None, use_errno=True)
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> None:
    """The two names swapped in one step (renameat2 RENAME_EXCHANGE): the plain file stays the
    same file, so the check passes whenever it finds it there."""
    if _LIBC.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), "renameat2")


def _race(at: Path, link_to: str, attempt: Callable[[], bool]) -> bool:
    """The reviewer's race, bounded: a thread swaps `at` with a link to `link_to` and back, again
    and again, while `attempt` runs an approved call, for at most 1.5 s (before the fix the
    other file was reached within a fraction of a second). True: `attempt` reached it."""
    link = at.with_name(".link")
    os.symlink(link_to, link)
    stop, flips = threading.Event(), [0]

    def flip() -> None:
        while not stop.is_set():
            _exchange(at, link)
            flips[0] += 1
            time.sleep(0.00005)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    try:
        deadline, reached = time.monotonic() + 1.5, False
        while not reached and time.monotonic() < deadline and flipper.is_alive():
            with contextlib.suppress(ToolError):
                reached = attempt()
    finally:
        stop.set()
        flipper.join()
    assert flips[0] > 10, "the path was never swapped: the race did not run"
    return reached


def test_a_link_flipped_in_and_out_never_reads_the_other_file(tmp_path: Path) -> None:
    ws, sb = _world(tmp_path)
    approved = w._where(sb, "shared/readme.md")

    def attempt() -> bool:
        return "SECRET" in w._approved_read(sb, "shared/readme.md", approved)

    assert not _race(ws / "shared" / "readme.md", "../private/diary.md", attempt)


def test_a_link_flipped_in_and_out_never_writes_the_other_file(tmp_path: Path) -> None:
    ws, sb = _world(tmp_path)
    approved = w._file_state(sb, "notes/todo.md")
    script = ws / "scripts" / "important.sh"

    def attempt() -> bool:
        w._write(sb, "notes/todo.md", b"todo\n", approved)  # the same words: it matches again
        return script.read_text() != SCRIPT

    assert not _race(ws / "notes" / "todo.md", "../scripts/important.sh", attempt)
    assert script.read_text() == SCRIPT
