"""Names of files saved in the workspace's `inbox/`, made from the names senders gave them.

A sender chooses a file's name, so it is cleaned before it names anything: the last path part
only, letters and digits of any script, `.`, `_` and `-`; nothing invisible, no separator or
space; at most 80 characters (and 200 bytes), the suffix that says the format kept whole.
"""

from __future__ import annotations

import re
import unicodedata

from agent.cards import escape_invisible

__all__ = ["name_parts", "safe_name"]

_DROPPED = re.compile("\0+")  # a run of characters a name does not keep
_MAX_NAME = 80  # characters, the suffix included
_MAX_NAME_BYTES = 200  # UTF-8: room left under a file system's 255 for "-999" and ".txt"
_MAX_SUFFIX = 16
_MAX_READ = 1_000  # of a name's end: no file system takes more, and it is read in the event loop
_LEADING = re.compile(r"^[\W_]+")  # dots, dashes, a combining accent with nothing to sit on


def _kept(char: str) -> bool:
    """A character a saved file's name keeps: a letter or digit of any script (with its
    combining accents), `.`, `_` or `-`; never a path separator, a space, a control, bidi or
    other invisible character (a Hangul filler is a "letter" no one sees)."""
    if char.isascii():
        return char.isalnum() or char in "._-"
    if not (char.isalnum() or unicodedata.category(char).startswith("M")):
        return False
    return escape_invisible(char) == char


def _clean(text: str) -> str:
    return _DROPPED.sub("_", "".join(c if _kept(c) else "\0" for c in text))


def name_parts(name: str) -> tuple[str, str]:
    """A sender's file name as the stem and suffix ("report", ".pdf") of a name in inbox/:
    the last path part only, NFC-normalised, every run of characters not `_kept` one `_`, no
    leading dot, `_`, `-` or combining accent; the stem cut so that the whole name keeps to 80
    characters (and 200 bytes), the suffix (up to 16 letters or digits) never cut. The stem is
    "" when nothing is left of it."""
    base = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1][-_MAX_READ:])
    stem, dot, suffix = base.rpartition(".")
    if not dot or not (
        suffix.isalnum() and len(suffix) <= _MAX_SUFFIX and _clean(suffix) == suffix
    ):
        stem, suffix = base, ""
    suffix = f".{suffix}" if suffix else ""
    stem = _LEADING.sub("", _clean(stem))[: _MAX_NAME - len(suffix)]
    while len((stem + suffix).encode()) > _MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem if suffix else stem.rstrip("._"), suffix


def safe_name(name: str) -> str:
    """A sender's file name as it may name a file in inbox/ ("" when nothing of it is left)."""
    stem, suffix = name_parts(name)
    return stem + suffix if stem else ""
