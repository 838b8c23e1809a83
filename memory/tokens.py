"""The one token estimate Steward budgets with (R211), in Python and as SQLite counts it.

Four characters a token holds for English only: Chinese and Japanese run about a character a
token, so a history "within" STEWARD_HISTORY_TOKENS was four times it, and a chat with the
setting high got stuck past the model's context, compaction (which counted the same way) never
starting. The estimate is read off the text's UTF-8 length, which SQLite knows too, so the
compaction check can sum it in one query: three eighths of a token per byte, less one eighth per
character. ASCII (1 byte) comes to a quarter of a token a character, as before; a Chinese,
Japanese or Korean character (3 bytes) to one, as the API counts them; Cyrillic, Greek, Arabic
or Hebrew (2 bytes) to five eighths; an emoji (4 bytes) to eleven eighths. Plus one a text.
"""

from __future__ import annotations

__all__ = ["SQL_TOKENS", "estimate_tokens"]

SQL_TOKENS = "((3 * LENGTH(CAST(text AS BLOB)) - LENGTH(text)) / 8 + 1)"
"""`estimate_tokens` of a row's `text` column, as SQLite computes it (a UTF-8 database)."""


def estimate_tokens(text: str) -> int:
    """An estimate of `text`'s tokens (the module's note says how): one per four ASCII
    characters, one per Chinese, Japanese or Korean character, plus one."""
    size = len(text.encode("utf-8", "surrogatepass"))
    chars = len(text.partition("\0")[0])  # as SQLite's LENGTH counts them, to a NUL (R214)
    return (3 * size - chars) // 8 + 1
