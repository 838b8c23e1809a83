"""Text that any UTF-8 encoder takes: a lone surrogate (from JSON's "\\ud83d", a UTF-7 or
UTF-16 mail part) becomes U+FFFD. Left in, it fails the turn where the text is next stored or
sent, far from where it came in."""

from __future__ import annotations

__all__ = ["well_formed"]


def well_formed(text: str) -> str:
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
