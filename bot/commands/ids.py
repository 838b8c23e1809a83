"""A record's id as a command takes it: `12` or `#12`.

ASCII digits only (`²` is a digit to `str.isdigit` but not to `int`), and no larger than
SQLite's integer (a longer number overflowed in the query and the command failed instead of
answering). `problem` is the reply when the text is not such an id.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from bot.commands.registry import UsageError

__all__ = [
    "MAX_ID",
    "GivenIds",
    "LeadingIds",
    "as_id",
    "digits_of_id",
    "ids_and_skipped",
    "ids_from",
    "leading_ids",
]

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
    ("3 finally!"): the first id alone then (`ids_and_skipped` also says which other ids the
    text held, for an answer to name). /goal done and /remind cancel take `leading_ids` (R231)."""
    return ids_and_skipped(text, problem).ids


class GivenIds(NamedTuple):
    ids: list[int]
    """The ids to act on."""
    skipped: list[int]
    """Other ids the text held, not acted on: "/memory forget 1 2 please" acts on #1 only
    (a remark may hold a number that is no id: "forget 12, it was 2 days ago"), and says so."""


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text.strip()) if w and w.lower() not in ("and", "&")]


def ids_and_skipped(text: str, problem: str) -> GivenIds:
    """As `ids_from`, with the ids left out when words that are not ids came with them."""
    words = _words(text)
    first = as_id(words[0]) if words else None
    if first is None:
        raise UsageError(problem)
    more = [as_id(word) for word in words[1:]]
    if all(m is not None for m in more):  # an id of 0 is an id (one no list holds)
        return GivenIds([first, *[m for m in more if m is not None]], [])
    skipped = [m for m in dict.fromkeys(more) if m is not None and m != first]
    return GivenIds([first], skipped)


QUOTED = 40
"""The most of the left-out words an answer quotes (R231: not 30,000 characters back)."""
MEANT = 10
"""The most ids among them the answer offers to take too."""


class LeadingIds(NamedTuple):
    ids: list[int]
    """The ids given before any other word, each once: the ones to act on."""
    left: str
    """The words from the first that is not an id on, as one text ("" for none): not acted on."""

    def left_said(self, again: str) -> str:
        """What the answer adds of the words left out, when they hold a number a person may
        have meant as an id ("1 -2", "1 ٢", "1 please 2"); nothing for a remark ("finally")."""
        if not any(c.isdigit() for c in self.left):
            return ""
        quoted = self.left if len(self.left) <= QUOTED else self.left[: QUOTED - 1] + "…"
        said = f"Not taken as ids, so left out: “{quoted}”"
        given = [_id_in(w) for w in _words(self.left)]
        meant = [n for n in dict.fromkeys(given) if n is not None and n not in self.ids]
        if not meant:
            return said + "."
        numbers = [f"#{n}" for n in meant[:MEANT]]
        named = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " and " + numbers[-1]
        ids = " ".join(str(n) for n in meant[:MEANT])
        return f"{said} (if you meant {named} too: {again} {ids})."


def _id_in(word: str) -> int | None:
    return as_id(word.rstrip(".!?;:"))


def leading_ids(text: str, problem: str) -> LeadingIds:
    """R231: the ids given ("/remind cancel 1 2" takes #1 and #2), with any words after them
    for the answer to name and offer (`ids_from` took #1 of "1 2 please" and dropped #2
    unsaid); UsageError(problem) when the first word is no id. With a remark after several
    numbers, only the first is taken (R234: "3 2 weeks late"). A full stop or "!" after an id
    is punctuation: "/goal done 2 3." closes both."""
    words = _words(text)
    ids: list[int] = []
    for at, word in enumerate(words):
        number = _id_in(word)
        if number is None:
            if not ids:
                raise UsageError(problem)
            # R234: with a remark after them, the numbers may be the remark's ("/goal done
            # 3 2 weeks late" closed #2): the first is taken, the others offered, not done
            return LeadingIds(ids[:1], " ".join(words[1 if len(ids) > 1 else at :]))
        ids.append(number)
    if not ids:
        raise UsageError(problem)
    return LeadingIds(list(dict.fromkeys(ids)), "")
