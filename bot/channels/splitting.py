"""Splitting a long reply into messages a platform accepts.

A text is split between its top-level blocks (paragraph, list, code block, …), packed while the
rendered piece fits. A block too long on its own is split along its structure (markdown-it's
syntax tree), so that every piece still renders as what it was:

- a list between its items; a later piece of a numbered list goes on with its numbers. An item
  too long on its own is split between its blocks (taken out of the item: its text dedented to
  the item's content column), the first piece keeping the item's marker;
- a quote between its blocks, every piece quoted again;
- a code block between its lines, every piece with its opening fence (and language) and a
  closing one, a code block the text left unclosed too;
- a table between its rows, every piece with the header.

Only a paragraph (or a part nothing else splits) is cut on lines, then on spaces, then anywhere.
The text is parsed once as a whole, so that a reference-style link (`[text][1]` and
`[1]: https://…` elsewhere) keeps its URL in whatever piece it lands: every piece is rendered
with the text's link definitions. Each piece keeps the Markdown it came from (with the
definitions it uses), the plain-text fallback when a platform rejects markup.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.common.utils import normalizeReference
from markdown_it.tree import SyntaxTreeNode

__all__ = ["Chunk", "markdown_chunks", "markdown_parser", "split_plain"]

Render = Callable[[str, Mapping[str, Any] | None], str]
"""Markdown → platform markup, given the text's link definitions (`env["references"]`)."""
Fits = Callable[[str], bool]
"""Whether a piece of Markdown, rendered, fits one message."""


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


# ------------------------------------------------------------------------- Markdown


def markdown_chunks(
    markdown: str, render: Render, size: Callable[[str], int], limit: int
) -> list[Chunk]:
    """Messages for a Markdown text: whole top-level blocks packed while the rendered markup
    fits `limit` (as `size` measures it); a block too long alone is split along its structure."""
    env: dict[str, Any] = {}
    blocks = _blocks(markdown, env)  # the whole text parsed once: its link definitions
    references: Mapping[str, Any] = env.get("references") or {}
    lines = markdown.split("\n")

    def fits(source: str) -> bool:
        return size(render(source, references)) <= limit

    chunks: list[Chunk] = []
    for piece in _split_run(blocks, fits):
        markup = render(piece, references)
        if size(markup) <= limit:
            parts = [(markup, piece)]
        else:  # a safety net: every piece was measured as it is sent
            parts = [
                (render(p, references), p) for p in _split_lines(piece.split("\n"), "\n".join, fits)
            ]
        chunks.extend(
            Chunk(markup, _with_definitions(source, references, lines))
            for markup, source in parts
            if markup.strip()
        )
    return chunks


def _with_definitions(piece: str, references: Mapping[str, Any], lines: list[str]) -> str:
    """`piece` with the definition lines of the reference links it uses (its plain text)."""
    used: list[str] = []
    for label in dict.fromkeys(re.findall(r"\[([^\[\]]+)\]", piece)):
        found = references.get(normalizeReference(label))
        span = found.get("map") if isinstance(found, Mapping) else None
        if span:
            definition = "\n".join(lines[span[0] : span[1]]).strip()
            if definition and definition not in piece and definition not in used:
                used.append(definition)
    return "\n\n".join([piece, *used])


def _parse(markdown: str, env: dict[str, Any] | None = None) -> list[SyntaxTreeNode]:
    root = SyntaxTreeNode(markdown_parser().parse(markdown, {} if env is None else env))
    return [node for node in root.children if node.map is not None]


def _trimmed(lines: list[str]) -> list[str]:
    """`lines` without the blank lines at their end."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def _blocks(markdown: str, env: dict[str, Any] | None = None) -> list[str]:
    """The Markdown source of each top-level block (paragraph, list, code block, …); a code
    block the text left open gets its closing fence (so nothing put after it becomes code)."""
    lines = markdown.split("\n")
    blocks: list[str] = []
    for node in _parse(markdown, env):
        start, end = node.map  # type: ignore[misc]
        block = _trimmed(lines[start:end])
        if node.type == "fence" and not _closes(block, node.markup):
            block.append(_indent(block[0]) + node.markup)
        source = "\n".join(block)
        if source.strip():
            blocks.append(source)
    return blocks or ([markdown.strip()] if markdown.strip() else [])


def _closes(block: list[str], fence: str) -> bool:
    if len(block) < 2 or not fence:
        return False
    closer = rf"[ ]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*"
    return re.fullmatch(closer, block[-1]) is not None


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" "))]


def _split_run(blocks: list[str], fits: Fits) -> list[str]:
    """Blocks packed into pieces that fit, a block too long alone split (`_split_block`)."""
    pieces: list[str] = []
    current: list[str] = []
    for block in blocks:
        if fits("\n\n".join([*current, block])):
            current.append(block)
            continue
        if current:
            pieces.append("\n\n".join(current))
            current = []
        if fits(block):
            current = [block]
            continue
        *whole, last = _split_block(block, fits) or [block]
        pieces.extend(whole)
        current = [last]  # what follows may still fit beside the last piece
    if current:
        pieces.append("\n\n".join(current))
    return pieces


def _split_block(block: str, fits: Fits) -> list[str]:
    """One block too long for a message, in pieces that fit, split along its structure."""
    nodes = _parse(block)
    lines = block.split("\n")
    pieces: list[str] | None = None
    if len(nodes) == 1:
        node = nodes[0]
        if node.type in ("bullet_list", "ordered_list"):
            pieces = _split_list(node, lines, fits)
        elif node.type == "blockquote":
            pieces = _split_quote(lines, fits)
        elif node.type in ("fence", "code_block"):
            pieces = _split_code(node, fits)
        elif node.type == "table":
            pieces = _split_table(lines, fits)
        elif node.type == "paragraph":
            lines = [line.lstrip() for line in lines]  # an indented line alone would be code
    return pieces or _split_lines(lines, "\n".join, fits)


# --- lists


def _split_list(node: SyntaxTreeNode, lines: list[str], fits: Fits) -> list[str]:
    """A list between its items; an item too long alone split between its blocks."""
    items = [item for item in node.children if item.map is not None]
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1) or 1) if ordered else 0

    def marker(index: int) -> str:
        item = items[index]
        return f"{start + index}{item.markup}" if ordered else item.markup

    def group(first: int, end: int) -> str:
        """Items first … end-1 as written, the first one numbered as it is shown."""
        a, b = items[first].map[0], items[end - 1].map[1]  # type: ignore[index]
        source = _trimmed(lines[a:b])
        own = items[first].map[1] - a  # type: ignore[index]
        if ordered and items[first].info != str(start + first):
            body = _item_body(_trimmed(source[:own]))
            blank = source[len(_trimmed(source[:own])) : own]
            source = [*_as_item(body, marker(first)).split("\n"), *blank, *source[own:]]
        return "\n".join(source)

    pieces: list[str] = []
    first = 0
    while first < len(items):
        end = _most(first, len(items), lambda end, first=first: fits(group(first, end)))
        if end > first:
            pieces.append(group(first, end))
            first = end
            continue
        item = items[first]  # too long on its own
        a, b = item.map  # type: ignore[misc]
        pieces.extend(_split_item(_item_body(_trimmed(lines[a:b])), marker(first), fits))
        first += 1
    return pieces


def _split_item(body: str, marker: str, fits: Fits) -> list[str]:
    """An item too long alone, between its blocks: the first piece an item with `marker`, the
    rest of the item out of the list (dedented: an indented line would become code)."""
    # every piece must fit both ways: the first is sent as the item, the rest as they are
    inner = _split_run(_blocks(body), lambda text: fits(_as_item(text, marker)) and fits(text))
    return [_as_item(inner[0], marker), *inner[1:]] if inner else []


def _most(low: int, high: int, ok: Callable[[int], bool]) -> int:
    """The largest n in low+1 … high with ok(n), or `low` when none, for an `ok` that holds up
    to some n and no further (a group of items fits up to some size): a few renders, not one
    for each item."""
    good, step = low, 1
    while good + step <= high and ok(good + step):
        good, step = good + step, step * 2
    bad = min(good + step, high + 1)  # ok fails here (or past the end)
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if ok(middle) else (good, middle)
    return good


_ITEM = re.compile(r"( {0,3})([-+*]|\d{1,9}[.)])([ \t]*)(.*)")


def _item_body(lines: list[str]) -> str:
    """A list item's text without its marker, dedented to the item's content column."""
    match = _ITEM.fullmatch(lines[0].expandtabs(4))
    if match is None:
        return "\n".join(line.strip() for line in lines)
    spaces = len(match[3])
    if not match[4] or spaces > 4:  # an empty first line, or one starting an indented code
        spaces = 1
    width = len(match[1]) + len(match[2]) + spaces
    body = [lines[0].expandtabs(4)[width:]]
    for line in lines[1:]:
        line = line.expandtabs(4)
        body.append(line[min(width, len(line) - len(line.lstrip(" "))) :])
    return "\n".join(body)


def _as_item(body: str, marker: str) -> str:
    """`body` as one list item with `marker` (`-`, `3.`)."""
    first, *rest = body.split("\n")
    pad = " " * (len(marker) + 1)
    return "\n".join([f"{marker} {first}", *(pad + line if line.strip() else "" for line in rest)])


# --- quotes, code, tables


def _split_quote(lines: list[str], fits: Fits) -> list[str]:
    """A quote between its blocks, every piece quoted again."""
    body = "\n".join(re.sub(r"^ {0,3}> ?", "", line) for line in lines)

    def quoted(text: str) -> str:
        return "\n".join("> " + line if line.strip() else ">" for line in text.split("\n"))

    return [quoted(piece) for piece in _split_run(_blocks(body), lambda text: fits(quoted(text)))]


def _split_code(node: SyntaxTreeNode, fits: Fits) -> list[str]:
    """A code block between its lines, every piece fenced (with its language)."""
    char = node.markup[0] if node.type == "fence" and node.markup else "`"
    runs = re.findall(re.escape(char) + "+", node.content)
    fence = char * max(3, 1 + max((len(run) for run in runs), default=0))
    opener = fence + (node.info.strip() if node.type == "fence" else "")
    code = node.content.removesuffix("\n").split("\n")
    return _split_lines(code, lambda part: "\n".join([opener, *part, fence]), fits)


def _split_table(lines: list[str], fits: Fits) -> list[str] | None:
    """A table between its rows, every piece with the header (None: the header is too long)."""
    head, rows = lines[:2], lines[2:]
    if not rows or not fits("\n".join([*head, rows[0]])):
        return None
    return _split_lines(rows, lambda part: "\n".join([*head, *part]), fits)


# --- the last resort


def _split_lines(lines: list[str], wrap: Callable[[list[str]], str], fits: Fits) -> list[str]:
    """Lines packed while `wrap(lines)` fits; a line too long alone cut on spaces, then
    anywhere."""
    pieces: list[str] = []
    current: list[str] = []
    for line in lines:
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
        for word in line.split(" "):
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
