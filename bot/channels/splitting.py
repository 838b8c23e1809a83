"""Splitting a long reply into messages a platform accepts.

Long texts are split on paragraph (block) boundaries; a block too long on its own is split on
lines, then on spaces, then anywhere, and a code block split in parts keeps its fences. Each
piece keeps the Markdown it came from (the plain-text fallback when a platform rejects markup).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = ["Chunk", "markdown_chunks", "markdown_parser", "split_plain"]


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    """CommonMark with raw HTML off, tables and strikethrough on (shared with the renderers)."""
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["strikethrough", "table"]
    )


@dataclass(frozen=True)
class Chunk:
    """One message's worth: the platform markup and the Markdown it came from."""

    markup: str
    source: str


def split_plain(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Split plain text into pieces of at most `limit`: on blank lines, then lines, then spaces,
    then anywhere."""
    text = text.strip()
    if not text:
        return []
    if measure(text) <= limit:
        return [text]
    for separator in ("\n\n", "\n", " "):
        parts = text.split(separator)
        if len(parts) > 1:
            return _pack(parts, separator, limit, measure)
    cut = limit
    while cut > 1 and measure(text[:cut]) > limit:
        cut -= 1
    return [text[:cut], *split_plain(text[cut:], limit, measure)]


def _pack(parts: list[str], separator: str, limit: int, measure: Callable[[str], int]) -> list[str]:
    pieces: list[str] = []
    current = ""
    for part in parts:
        candidate = f"{current}{separator}{part}" if current else part
        if measure(candidate) <= limit:
            current = candidate
            continue
        if current.strip():
            pieces.append(current.strip())
        if measure(part) <= limit:
            current = part
        else:
            pieces.extend(split_plain(part, limit, measure))
            current = ""
    if current.strip():
        pieces.append(current.strip())
    return pieces


def _top_blocks(markdown: str) -> list[str]:
    """The Markdown source of each top-level block (paragraph, list, code block, …)."""
    lines = markdown.split("\n")
    blocks: list[str] = []
    root = SyntaxTreeNode(markdown_parser().parse(markdown))
    for node in root.children:
        if node.map is None:
            continue
        start, end = node.map
        source = "\n".join(lines[start:end]).strip("\n")
        if source.strip():
            blocks.append(source)
    return blocks or ([markdown.strip()] if markdown.strip() else [])


_FENCE = re.compile(r"^(\s{0,3})(`{3,}|~{3,})(.*)$")


def _split_block(block: str, fits: Callable[[str], bool]) -> list[str]:
    """A block too long for one message, in pieces that fit (a code block keeps its fences)."""
    lines = block.split("\n")
    opener = _FENCE.match(lines[0])
    if opener and len(lines) >= 2 and _FENCE.match(lines[-1]):
        head, tail, body = lines[0], lines[-1], lines[1:-1]
        wrap: Callable[[list[str]], str] = lambda part: "\n".join([head, *part, tail])  # noqa: E731
    else:
        body = lines
        wrap = "\n".join
    pieces: list[str] = []
    current: list[str] = []
    for line in body:
        if fits(wrap([*current, line])):
            current.append(line)
            continue
        if current:
            pieces.append(wrap(current))
            current = []
        if fits(wrap([line])):
            current = [line]
            continue
        # one line longer than a message: cut it on spaces, then anywhere
        words = line.split(" ")
        for word in words:
            candidate = [f"{current[0]} {word}"] if current else [word]
            if fits(wrap(candidate)):
                current = candidate
                continue
            if current:
                pieces.append(wrap(current))
            current = []
            while word and not fits(wrap([word])):
                cut = len(word)
                while cut > 1 and not fits(wrap([word[:cut]])):
                    cut = max(1, cut * 3 // 4)
                pieces.append(wrap([word[:cut]]))
                word = word[cut:]
            if word:
                current = [word]
    if current:
        pieces.append(wrap(current))
    return pieces


def markdown_chunks(
    markdown: str, render: Callable[[str], str], size: Callable[[str], int], limit: int
) -> list[Chunk]:
    """Messages for a Markdown text: whole top-level blocks packed while the rendered markup
    fits `limit` (as `size` measures it); a block too long alone is split with `_split_block`."""

    def fits(source: str) -> bool:
        return size(render(source)) <= limit

    chunks: list[Chunk] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            source = "\n\n".join(current)
            markup = render(source)
            if markup.strip():
                chunks.append(Chunk(markup, source))
            current.clear()

    for block in _top_blocks(markdown):
        if fits("\n\n".join([*current, block])):
            current.append(block)
            continue
        flush()
        if fits(block):
            current.append(block)
            continue
        *whole, last = _split_block(block, fits) or [block]
        chunks.extend(Chunk(render(piece), piece) for piece in whole)
        current.append(last)  # what follows may still fit beside the last piece
    flush()
    return chunks
