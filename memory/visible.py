"""Whether a text has anything to see: a reminder, goal or memory made of zero-width or
direction marks alone came out as a blank line (review 121)."""

from __future__ import annotations

import unicodedata

__all__ = ["visible"]

_UNSEEN = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Co", "Cn"})
"""Controls, format marks (zero-width, direction), spaces, combining marks alone, private use
and unassigned code points."""


def visible(text: str) -> bool:
    return any(unicodedata.category(char) not in _UNSEEN for char in text)
