"""Whether a text has anything to see: a reminder, goal or memory made of zero-width or
direction marks alone came out as a blank line (review 121)."""

from __future__ import annotations

import unicodedata

__all__ = ["visible"]

_UNSEEN = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Co"})
"""Controls, format marks (zero-width, direction), spaces, combining marks alone and private
use. Not the unassigned: Python's Unicode data trails the phones' (a newer emoji is one)."""

_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters and a symbol that print as nothing: the Hangul fillers and the braille blank."""


def visible(text: str) -> bool:
    return any(char not in _BLANK and unicodedata.category(char) not in _UNSEEN for char in text)
