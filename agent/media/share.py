"""What the model is given of one message's files together (R197).

`STEWARD_DOCUMENT_MAX_CHARS` capped each file, never a message: an album of ten text files
went to the model as 600,000 characters in one call, past the context the model takes (the
API's 400) and, from a guest, past their whole day's allowance (152,774 tokens against
100,000) before it was checked again. A `Share` is the room one message's files have: all
their text together gets `STEWARD_DOCUMENT_MAX_CHARS` characters, in the order they came (the
files of a message replied to after the message's own); and for someone other than the owner
no more than an estimate of what is left of their day's `STEWARD_GUEST_DAILY_TOKENS`
(`_guest_tokens`, erring high; an image about `IMAGE_TOKENS`). What is cut
stays whole in the file's `.txt`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from memory.tokens import estimate_tokens

__all__ = ["IMAGE_TOKENS", "Cut", "Share"]

IMAGE_TOKENS = 1_600
"""An image's tokens at most: the API scales a larger one down to about 1,600 (Anthropic's
vision guide: width × height / 750)."""


class Cut(StrEnum):
    """Why a file's text was given only in part."""

    NONE = ""
    MESSAGE = "message"
    """The message's files together came to more than `Share.limit` characters."""
    ALLOWANCE = "allowance"
    """A guest's day's allowance had less left than the text."""


@dataclass
class Share:
    """The room left for the text of one message's files (`take`) and its images (`image`)."""

    limit: int
    """Characters of text all the message's files get together."""
    tokens: int | None = None
    """An estimate of the tokens left of the sender's day (None: the owner, or no allowance)."""
    chars: int = field(init=False)

    def __post_init__(self) -> None:
        self.chars = self.limit

    def take(self, text: str) -> tuple[str, Cut]:
        """The beginning of `text` there is room for, and why the rest is left out."""
        end, cut = min(len(text), self.chars), Cut.NONE
        if end < len(text):
            cut = Cut.MESSAGE
        if self.tokens is not None and _guest_tokens(text[:end]) > self.tokens:
            end, cut = _fits(text, end, self.tokens), Cut.ALLOWANCE
        given = text[:end]
        self.chars -= end
        if self.tokens is not None and given:
            self.tokens -= _guest_tokens(given)
        return given, cut

    def image(self) -> bool:
        """Whether an image still fits (only a guest's allowance limits them), taking it."""
        if self.tokens is None:
            return True
        if self.tokens < IMAGE_TOKENS:
            return False
        self.tokens -= IMAGE_TOKENS
        return True


def _guest_tokens(text: str) -> int:
    """A guest's share errs high, as it did before R211: the history's estimate, or a token for
    each character that is not ASCII, whichever is more (R214: Cyrillic at five eighths of a
    token let a guest's file in at 1.55 times what it was)."""
    other = len(text) - len(text.encode("ascii", "ignore"))
    return max(estimate_tokens(text), (len(text) - other + 3) // 4 + other)


def _fits(text: str, end: int, budget: int) -> int:
    """The longest beginning of `text[:end]` whose estimate is within `budget` (a bisection:
    the estimate only grows with the text)."""
    low, high = 0, end
    while low < high:
        middle = (low + high + 1) // 2
        if _guest_tokens(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low
