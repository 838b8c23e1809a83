"""A record's id as a command takes it: `12` or `#12`.

ASCII digits only (`²` is a digit to `str.isdigit` but not to `int`), and no larger than
SQLite's integer (a longer number overflowed in the query and the command failed instead of
answering). `problem` is the reply when the text is not such an id.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from bot.commands.registry import UsageError

__all__ = ["MAX_ID", "GivenIds", "as_id", "digits_of_id", "ids_and_skipped", "ids_from"]

MAX_ID = 2**63 - 1


def as_id(text: str) -> int | None:
    """The id `text` spells (`12`, `#12`), or None (also for one too large to be stored)."""
    value = text.strip().lstrip("#")
    # the length first: int() refuses strings of more than 4,300 digits with a ValueError
    if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > 19:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def digits_of_id(text: str, problem: str) -> str:
    """The id's digits as typed (so a reply can quote `#007`), or UsageError(problem)."""
    if as_id(text) is None:
        raise UsageError(problem)
    return text.strip().lstrip("#")


def ids_from(text: str, problem: str) -> list[int]:
    """The ids a command was given (`2 3`, `2, 3`, `2,3`, `#2 and #3`), or UsageError(problem)
    when the first is none; words after the first id that are not all ids are a remark
    ("/goal done 3 finally!"): the first id alone then (`ids_and_skipped` also says which
    other ids the text held, for an answer to name)."""
    return ids_and_skipped(text, problem).ids


class GivenIds(NamedTuple):
    ids: list[int]
    """The ids to act on."""
    skipped: list[int]
    """Other ids the text held, not acted on: "/memory forget 1 2 please" acts on #1 only
    (a remark may hold a number that is no id: "forget 12, it was 2 days ago"), and says so."""


def ids_and_skipped(text: str, problem: str) -> GivenIds:
    """As `ids_from`, with the ids left out when words that are not ids came with them."""
    words = [w for w in re.split(r"[\s,]+", text.strip()) if w and w.lower() not in ("and", "&")]
    first = as_id(words[0]) if words else None
    if first is None:
        raise UsageError(problem)
    more = [as_id(word) for word in words[1:]]
    if all(m is not None for m in more):  # an id of 0 is an id (one no list holds)
        return GivenIds([first, *[m for m in more if m is not None]], [])
    skipped = [m for m in dict.fromkeys(more) if m is not None and m != first]
    return GivenIds([first], skipped)
