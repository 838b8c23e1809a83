"""Keyword look-ups: the meaningful words of free text and the FTS5 query made of them.

Shared by the records' keyword search and by recall's interest ranking (which words of a
preference say something), so the stop-word list is kept in one place.
"""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "fts_query", "query_terms"]

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


def query_terms(text: str, *, max_terms: int = 12) -> list[str]:
    """The meaningful words of free text, lower-cased, in order, without repeats."""
    seen: dict[str, None] = {}
    for term in _TERM.findall(text.casefold()):
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
