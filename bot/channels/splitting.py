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
Pieces are packed wherever they are made: the first piece of a split block (or item) goes in the
message the blocks before it are in, the last one with what follows, so a reply takes about as
few messages as its length needs. How much fits is searched for (`_most`): a few renders a
message, not one a line, row or item (a streaming preview splits the whole text at every update).
The text is parsed once as a whole, so that a reference-style link (`[text][1]` and
`[1]: https://…` elsewhere) keeps its URL in whatever piece it lands: every piece is rendered
with the text's link definitions. Each piece keeps the Markdown it came from (with the
definitions it uses), the plain-text fallback when a platform rejects markup.

(Some 570 lines: splitting each kind of block, packing the pieces, and searching how much fits
are one algorithm, recursive over the syntax tree; split up, its parts would call each other.)
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
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
    return _commonmark()


@lru_cache(maxsize=1)
def _block_parser() -> MarkdownIt:
    """`markdown_parser` for the blocks alone, their text not parsed (the splitting's own)."""
    return _commonmark().disable("inline")


def _commonmark() -> MarkdownIt:
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
    while 1 < cut < len(text) and _joined(text, cut):
        cut -= 1  # never inside a character as it shows (R258: a flag)
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
    markdown: str,
    render: Render,
    size: Callable[[str], int],
    limit: int,
    blank: Callable[[str], bool] = lambda markup: not markup.strip(),
) -> list[Chunk]:
    """Messages for a Markdown text: whole top-level blocks packed while the rendered markup
    fits `limit` (as `size` measures it); a block too long alone is split along its structure.
    A piece whose markup the platform counts as empty (`blank`) is left out: nothing shows."""
    env: dict[str, Any] = {}
    blocks = _blocks(markdown, env)  # the whole text parsed once: its link definitions
    references: Mapping[str, Any] = env.get("references") or {}
    lines = markdown.split("\n")

    @lru_cache(maxsize=256)  # a piece is often tried again (a third of the renders)
    def fits(source: str) -> bool:
        # a text many times a message long: its start alone is enough to say no (a few renders
        # of 2 messages' worth, not of the whole text, when a piece is tried with a long block)
        if len(source) > 3 * limit and size(render(source[: 2 * limit], references)) > limit:
            return False
        return size(render(source, references)) <= limit

    chunks: list[Chunk] = []
    for piece in _split_run(blocks, fits, whole=True):
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
            if not blank(markup)
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
    root = SyntaxTreeNode(_block_parser().parse(markdown, {} if env is None else env))
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


def _join(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)


def _apart(before: str, after: str) -> bool:
    """Whether `after` below `before` shows as it does alone, not taken into the block `before`
    ends with: two bullet lists may become one (shown the same), but a numbered list would go on
    with the numbers of one above (`1.` below a sub-list `1. 2.` taken out of an item: `3.`)."""
    joined, above, below = _parse(_join(before, after)), _parse(before), _parse(after)
    if len(joined) == len(above) + len(below):
        return True
    one = joined[len(above) - 1] if len(joined) == len(above) + len(below) - 1 else None
    return (
        one is not None
        and one.type == above[-1].type == below[0].type == "bullet_list"
        and len(one.children) == len(above[-1].children) + len(below[0].children)
    )


def _fill(
    count: int,
    text: Callable[[int, int], str],
    split: Callable[[int, Fits, bool], list[str]],
    fits: Fits,
    first: Fits,
    shared: bool,
    whole: bool,
) -> list[str]:
    """Units 0 … count-1 (blocks, a list's items; `text(i, end)`: the Markdown of i … end-1)
    packed into pieces that fit. A unit that does not fit beside the piece being filled is split
    (`split(i, ok, shared)`), its first piece packed into that piece (as `ok` checks), its last
    one beside the units after it; when `whole`, a unit that fits a message alone starts the
    next piece instead (the top-level blocks of a text). The first piece is checked by `first`:
    with `shared`, it goes below a head further out, and `[""]` says nothing fits beside it (the
    head is sent alone, and the caller splits again)."""
    reach = _reach(len(text(i, i + 1)) for i in range(count))
    pieces: list[str] = []
    current = ""  # the piece being filled
    carried = False  # `current` ends with the last piece of a split unit
    i = 0
    while i < count:
        room = first if not pieces else fits
        if carried and not _apart(current, text(i, i + 1)):
            pieces.append(current)
            current, carried = "", False
            continue
        end = _most(
            i,
            count,
            lambda end, i=i, head=current, room=room: room(_join(head, text(i, end))),
            reach,
        )
        if end > i:
            current, carried, i = _join(current, text(i, end)), False, end
            continue
        sharing = bool(current) or (shared and not pieces)
        if not (sharing and whole and fits(text(i, i + 1))):
            parts = split(
                i, lambda piece, head=current, room=room: room(_join(head, piece)), sharing
            )
        else:
            parts = [""]  # kept whole, in the next piece
        if parts and not parts[0]:  # nothing of it fits beside the piece being filled
            if not current:
                return [""]
            pieces.append(current)
            current = ""
            continue
        if parts:
            *done, current = [_join(current, parts[0]), *parts[1:]]
            pieces.extend(done)
            carried = True
        i += 1
    return [*pieces, current] if current else pieces


def _split_run(
    blocks: list[str],
    fits: Fits,
    first: Fits | None = None,
    shared: bool = False,
    whole: bool = False,
) -> list[str]:
    """Blocks packed into pieces that fit, one that does not fit split (`_split_block`)."""
    return _fill(
        len(blocks),
        lambda i, end: _join(*blocks[i:end]),
        lambda i, ok, sh: _split_block(blocks[i], fits, ok, sh),
        fits,
        first or fits,
        shared,
        whole,
    )


def _split_block(
    block: str, fits: Fits, first: Fits | None = None, shared: bool = False
) -> list[str]:
    """One block too long for a message, in pieces that fit, split along its structure: the
    first piece as `first` checks it (the piece it is packed into), `[""]` as `_fill` says."""
    first = first or fits
    nodes = _parse(block)
    lines = block.split("\n")
    pieces: list[str] | None = None
    if len(nodes) == 1:
        node = nodes[0]
        if node.type in ("bullet_list", "ordered_list"):
            pieces = _split_list(node, lines, fits, first, shared)
        elif node.type == "blockquote":
            pieces = _split_quote(lines, fits, first, shared)
        elif node.type in ("fence", "code_block"):
            pieces = _split_code(node, fits, first, shared)
        elif node.type == "table":
            pieces = _split_table(lines, fits, first, shared)
        elif node.type == "paragraph":
            lines = [line.lstrip() for line in lines]  # an indented line alone would be code
            return _split_lines(lines, "\n".join, fits, first, shared, prose=True)
    return pieces or _split_lines(lines, "\n".join, fits, first, shared)


_BLOCK_START = re.compile(r"(?:[>#+*=-]|~~~|```|\d{1,9}(?=[.)]))")


def _as_text(piece: str) -> str:
    """`piece` (a paragraph's later lines) with a block marker at its start escaped."""
    found = _BLOCK_START.match(piece)
    if not found:
        return piece
    end = found.end() if found.group().isdigit() else found.start()
    return piece[:end] + "\\" + piece[end:]


# --- lists


def _split_list(
    node: SyntaxTreeNode, lines: list[str], fits: Fits, first: Fits, shared: bool
) -> list[str]:
    """A list between its items; an item too long alone split between its blocks."""
    items = [item for item in node.children if item.map is not None]
    ordered = node.type == "ordered_list"
    start = int(node.attrs.get("start", 1) or 1) if ordered else 0

    def marker(index: int) -> str:
        item = items[index]
        return f"{start + index}{item.markup}" if ordered else item.markup

    def group(begin: int, end: int) -> str:
        """Items begin … end-1 as written, the first one numbered as it is shown."""
        a, b = items[begin].map[0], items[end - 1].map[1]  # type: ignore[index]
        source = _trimmed(lines[a:b])
        own = items[begin].map[1] - a  # type: ignore[index]
        if ordered and items[begin].info != str(start + begin):
            body = _item_body(_trimmed(source[:own]))
            blank = source[len(_trimmed(source[:own])) : own]
            source = [*_as_item(body, marker(begin)).split("\n"), *blank, *source[own:]]
        return "\n".join(source)

    def split(i: int, ok: Fits, shared: bool) -> list[str]:
        a, b = items[i].map  # type: ignore[misc]
        return _split_item(_item_body(_trimmed(lines[a:b])), marker(i), fits, ok, shared)

    return _fill(len(items), group, split, fits, first, shared, whole=False)


def _split_item(body: str, marker: str, fits: Fits, first: Fits, shared: bool) -> list[str]:
    """An item too long alone, between its blocks: the first piece an item with `marker`, the
    rest of the item out of the list (dedented: an indented line would become code)."""
    inner = _split_run(_blocks(body), fits, lambda text: first(_as_item(text, marker)), shared)
    if not inner or not inner[0]:
        return inner
    return [_as_item(inner[0], marker), *inner[1:]]


def _most(low: int, high: int, ok: Callable[[int], bool], reach: Sequence[int]) -> int:
    """The largest n in low+1 … high with ok(n), or `low` when none, for an `ok` that holds up
    to some n and no further (units low … n-1 fit a message, up to some n); `reach[n]`: the
    length of the units before n. A few renders, not one a unit: each try holds about twice the
    text of the last one that fitted (or one unit more), then what is left is halved."""
    good, bad = low, high + 1
    while good < high:
        twice = 2 * reach[good] - reach[low]
        end = max(good + 1, bisect_right(reach, twice, good + 1, high + 1) - 1)
        if not ok(end):
            bad = end
            break
        good = end
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


def _split_quote(lines: list[str], fits: Fits, first: Fits, shared: bool) -> list[str]:
    """A quote between its blocks, every piece quoted again."""
    body = "\n".join(re.sub(r"^ {0,3}> ?", "", line) for line in lines)

    def quoted(text: str) -> str:
        return "\n".join("> " + line if line.strip() else ">" for line in text.split("\n"))

    inner = _split_run(
        _blocks(body), lambda text: fits(quoted(text)), lambda text: first(quoted(text)), shared
    )
    return [quoted(piece) if piece else "" for piece in inner]


def _split_code(node: SyntaxTreeNode, fits: Fits, first: Fits, shared: bool) -> list[str]:
    """A code block between its lines, every piece fenced (with its language)."""
    char = node.markup[0] if node.type == "fence" and node.markup else "`"
    runs = re.findall(re.escape(char) + "+", node.content)
    fence = char * max(3, 1 + max((len(run) for run in runs), default=0))
    opener = fence + (node.info.strip() if node.type == "fence" else "")
    code = node.content.removesuffix("\n").split("\n")
    return _split_lines(code, lambda part: "\n".join([opener, *part, fence]), fits, first, shared)


def _split_table(lines: list[str], fits: Fits, first: Fits, shared: bool) -> list[str] | None:
    """A table between its rows, every piece with the header (None: the header is too long)."""
    head, rows = lines[:2], lines[2:]
    if not rows or not fits("\n".join([*head, rows[0]])):
        return None
    return _split_lines(rows, lambda part: "\n".join([*head, *part]), fits, first, shared)


# --- the last resort


def _split_lines(
    lines: list[str],
    wrap: Callable[[list[str]], str],
    fits: Fits,
    first: Fits | None = None,
    shared: bool = False,
    prose: bool = False,
) -> list[str]:
    """Lines packed while `wrap(lines)` fits (the first piece as `first` checks it, `[""]` as
    `_fill` says: nothing fits beside the head); a line too long alone cut on spaces, then
    anywhere. How many lines fit is searched for (`_most`): a few renders a piece. With
    `prose` (a paragraph's lines), a later piece's first word that would open a block of its own
    (">5" a quote, "2." a list, "~~~" code) is escaped before it is measured: still a word."""
    lines = list(lines)
    reach = _reach(len(line) + 1 for line in lines)
    pieces: list[str] = []
    i = 0
    while i < len(lines):
        if prose and pieces:
            lines[i] = _as_text(lines[i])
        room = (first or fits) if not pieces else fits
        end = _most(i, len(lines), lambda end, i=i, room=room: room(wrap(lines[i:end])), reach)
        if end > i:
            pieces.append(wrap(lines[i:end]))
            i = end
            continue
        if shared and not pieces:
            return [""]
        pieces.append(wrap([_cut(lines, i, lambda text, room=room: room(wrap([text])))]))
        i += not lines[i]
    return pieces


def _cut(lines: list[str], i: int, ok: Fits) -> str:
    """The longest start of `lines[i]` that `ok` takes, cut on a space (or anywhere, at least a
    character); what is left of the line stays in `lines[i]`."""
    line, words = lines[i], lines[i].split(" ")
    count = _most(
        0, len(words), lambda n: ok(" ".join(words[:n])), _reach(len(w) + 1 for w in words)
    )
    balanced = count
    while balanced > 1 and _open_span(" ".join(words[:balanced])):
        balanced -= 1  # never inside `code`, **bold** or a [link](…): R137
    count = balanced if not _open_span(" ".join(words[:balanced])) else count
    cut, lines[i] = " ".join(words[:count]), " ".join(words[count:])
    if not cut.strip():
        size = max(1, _most(0, len(line), lambda n: ok(line[:n]), range(len(line) + 1)))
        while size > 1 and _joined(line, size):
            size -= 1  # never inside a character as it shows: an emoji's ZWJ, a vowel sign
        cut, lines[i] = line[:size], line[size:]
    return cut


def _open_span(text: str) -> bool:
    """Whether `text` ends inside an inline span: code, strong text, a link. A piece
    rendered alone would show the rest as code, or its marks raw (R137)."""
    if text.count("`") % 2 or text.count("**") % 2:
        return True
    opened = text.rfind("[")
    if opened > text.rfind("]"):
        return True
    target = text.rfind("](")
    return target >= 0 and text.find(")", target) < 0


def _joined(line: str, at: int) -> bool:
    """Whether cutting `line` before `at` would split one character as it is seen: a mark that
    combines with the one before, a joiner, a variation selector, a flag (R258: a pair of
    regional indicators, or a tag sequence like England's)."""
    after, before = line[at], line[at - 1]
    return (
        unicodedata.category(after) in ("Mn", "Mc", "Me")
        or after in "\u200d\ufe0e\ufe0f"
        or before == "\u200d"
        or unicodedata.combining(before) == 9  # a virama joins the consonant after it
        or 0x1F3FB <= ord(after) <= 0x1F3FF  # a skin tone
        or 0xE0020 <= ord(after) <= 0xE007F  # a tag, up to the cancel tag that ends the flag
        or (_regional(after) and _pairs_open(line, at))
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _pairs_open(line: str, at: int) -> bool:
    """Whether an odd number of regional indicators stand right before `at` (a flag's half)."""
    start = at
    while start and _regional(line[start - 1]):
        start -= 1
    return (at - start) % 2 == 1


def _reach(sizes: Iterable[int]) -> list[int]:
    """For `_most`: the length of the units before each one."""
    return [0, *accumulate(sizes)]
