"""Keyword look-ups: the meaningful words of free text and the FTS5 query made of them.

Shared by the records' keyword search and by recall's interest ranking (which words of a
preference say something), so the stop-word list is kept in one place.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache

import regex

__all__ = ["FILLER", "STOPWORDS", "content_words", "date_words", "fts_query", "query_terms"]

# Words that carry no meaning for a keyword look-up: without them, a question such as "what is my
# sister's name?" searches for "sister" and "name" only, and common words do not flood the OR.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each few
    for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just let me more most my myself no nor not now of off on once
    only or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves s t d ll m re ve don doesn didn isn aren wasn weren won wouldn
    shouldn couldn hasn haven remember recall know tell said say says told anything
    something thing things please also user owner steward get got like
    """.split()  # noqa: SIM905
)
# "like" is a stop word in questions ("what does she like") but a meaningful one in memories:
# the index keeps it; only the query drops it (the vector side covers preferences).

_TERM = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    """The runs of letters and digits in `text`, a letter's combining marks kept in its word:
    Python's `\\w` leaves them out, and "दिल्ली" or "சென்னையில்" (vowel signs, virama) fell
    apart into single letters that were then dropped, so a word typed exactly as saved was
    not found (R110). SQLite's tokenizer reads the quoted word back as the same run."""
    if text.isascii():
        return _TERM.findall(text)
    words: list[str] = []
    word: list[str] = []
    for char in text:
        if char.isalnum() or char == "_" or unicodedata.category(char)[0] == "M":
            word.append(char)
        elif word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    return words


def query_terms(text: str, *, max_terms: int = 12) -> list[str]:
    """The meaningful words of free text, lower-cased, in order, without repeats. Lower-cased
    as FTS5's unicode61 tokenizer does, not case-folded ("straße" stays, never "strasse")."""
    seen: dict[str, None] = {}
    for term in _words(text.lower()):
        if term in STOPWORDS or (len(term) < 2 and not term.isdigit()):
            continue
        seen.setdefault(term, None)
        if len(seen) >= max_terms:
            break
    return list(seen)


def fts_query(text: str, *, max_terms: int = 12) -> str | None:
    """An FTS5 MATCH expression for free text: its meaningful words, each quoted, OR-ed (the
    porter tokenizer stems them, so "birthdays" finds "birthday"). None when nothing meaningful
    is left."""
    terms = query_terms(text, max_terms=max_terms)
    return " OR ".join(f'"{t}"' for t in terms) if terms else None


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def date_words(moment: datetime) -> str:
    """The words of a moment's date (UTC) that FTS5 indexes next to a memory's text, so that "on
    6 September" or "in May" matches what was said then: "6 September 2025 2025-09-06 Saturday".
    Migration 0008 writes the same form in SQL for older rows."""
    day = moment.astimezone(UTC)
    return (
        f"{day.day} {_MONTHS[day.month - 1]} {day.year} {day:%Y-%m-%d} {_WEEKDAYS[day.weekday()]}"
    )


# Scripts written without spaces between words; Korean is counted alike, spaced or not.
_UNSPACED = regex.compile(r"([\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Hangul}]+)")


@lru_cache(maxsize=65536)
def content_words(text: str) -> int:
    """How many meaningful words a text holds ("Take care!" 1, "ok thanks" 0): the
    informativeness prior of the ranking keeps content-free turns from crowding results. Chinese,
    Japanese (and unspaced Korean) count one word per two characters: counted by spaces, a whole
    sentence was one or two words and ranked like "ok" (R211)."""
    count = 0
    for term in _words(text.casefold()):
        for i, part in enumerate(_UNSPACED.split(term) if not term.isascii() else [term]):
            if i % 2:  # a run of unspaced script
                count += len(part) // 2
            elif part and part not in STOPWORDS and part not in FILLER:
                count += len(part) > 1 or part.isdigit()
    return count


# Chat filler: words that make a turn polite, not informative.
FILLER = frozenset(
    """
    ok okay k kk yes yeah yep yup no nope sure thanks thank thx ty bye goodbye cya hi hello hey
    lol haha hahaha great cool nice awesome good fine sounds right alright wow oh ah hmm um
    morning night evening care soon later see talk cheers np welcome totally exactly indeed
    """.split()  # noqa: SIM905
)
