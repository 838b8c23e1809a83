"""Information-flow labels: whether a piece of stored data came from outside, and from where.

A label is data that travels with what it describes (a message, a turn, a memory, a goal, a
schedule), never text written into a prompt and parsed back. `Label()` is trusted: the owner's
own word or Steward's work on it. An untrusted label names its sources ("web:example.com",
"person:telegram:42", "feed:news.example"). Joining labels is set union, so anything made from
tainted parts is tainted, and the sources say why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["TRUSTED", "Label"]


@dataclass(frozen=True)
class Label:
    sources: tuple[str, ...] = ()

    @classmethod
    def untrusted(cls, *sources: str) -> Label:
        """An untrusted label; with no source named it still says it is from outside."""
        return cls(tuple(dict.fromkeys(s for s in sources if s)) or ("outside",))

    @classmethod
    def of(cls, tainted: bool, sources: Iterable[str] = ()) -> Label:
        """The label a stored `tainted` flag (and optional sources) stands for: named sources
        are outside content whatever the flag says (it never drops them silently)."""
        named = tuple(s for s in sources if s)
        return cls.untrusted(*named) if tainted or named else TRUSTED

    @property
    def trusted(self) -> bool:
        return not self.sources

    @property
    def tainted(self) -> bool:
        return bool(self.sources)

    def join(self, *others: Label) -> Label:
        merged = dict.fromkeys(self.sources)
        for other in others:
            merged.update(dict.fromkeys(other.sources))
        return Label(tuple(merged))

    def to_json(self) -> str:
        return json.dumps(list(self.sources), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> Label:
        return _from_json(text) if text else TRUSTED


@lru_cache(maxsize=512)
def _from_json(text: str) -> Label:
    """Labels are immutable and few distinct ones are stored (a turn reads ~90 rows' labels,
    nearly all `[]`), so a parsed one is shared."""
    sources = json.loads(text)
    return Label(tuple(str(s) for s in sources)) if sources else TRUSTED


TRUSTED = Label()
