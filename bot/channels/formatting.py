"""The model writes Markdown; each chat platform wants its own markup, in pieces it accepts.

- `telegram_chunks(md)`: Telegram HTML (parse_mode=HTML, everything escaped), split so that
  each piece's visible text fits Telegram's 4096 characters; each piece keeps its Markdown source
  as the plain-text fallback for a message Telegram rejects for its entities.
- `slack_chunks(md)`: Slack mrkdwn, split the same way.
- `slack_to_plain(text)`: Slack's incoming markup (`<@U1>`, `<url|label>`, `&amp;`) as plain text.

Markdown is parsed with markdown-it-py (CommonMark, raw HTML off, tables and strikethrough on).
A link always shows its URL (`[text](https://x)` → `text (https://x)`, only the URL when the text
is the URL), reference-style links (`[text][1]` … `[1]: https://x`) too, in every piece of a
long reply. A code block's lines are never indented (a code block in a numbered step is the code
to copy, as written). Long texts are split by `splitting.py`.

Bidi embeddings, overrides and isolates (U+202A to 202E, U+2066 to 2069) go out as visible escapes
(`\\u202e`), on both platforms (`unreordered`): one in a link's label reversed the line after it,
so the URL shown read as another site (R258). Marks (U+200E/F) stay: Hebrew needs them. A part
of a long Telegram reply that Telegram counts as empty (`telegram_blank`) is not sent.

(Some 425 lines: both platforms' dialects share one renderer and what every outgoing text
passes through; split, each half would hold a copy of the other's rules.)
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from markdown_it.tree import SyntaxTreeNode

from agent.cards import BIDI
from bot.channels.splitting import Chunk, markdown_chunks, markdown_parser, split_plain

__all__ = [
    "SLACK_LIMIT",
    "TELEGRAM_LIMIT",
    "Chunk",
    "markdown_to_slack",
    "markdown_to_telegram_html",
    "plain_fallback",
    "slack_chunks",
    "slack_to_plain",
    "split_plain",
    "telegram_blank",
    "telegram_chunks",
    "telegram_visible_text",
    "unreordered",
    "utf16_len",
]

TELEGRAM_LIMIT = 4096
"""Telegram's limit on a message's text after entity parsing."""
SLACK_LIMIT = 3900
"""Slack renders up to 4,000 characters of a message's text before it truncates the display."""

_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tg://")
_PRE_NEWLINE = "\x00"
"""Stands for a line break inside a rendered code block until the end of rendering, so that a
list's indentation is not added to the code's lines. Markdown text never holds it: CommonMark
replaces NUL with U+FFFD."""


_MARKS = frozenset({0x061C, 0x200E, 0x200F})
_REORDERING = {code: f"\\u{code:04x}" for code in BIDI - _MARKS}
_TELEGRAM_BLANK = frozenset(
    chr(code)
    for code in (
        *(0x00A0, 0x1680, 0x180E, 0x205F, 0x2800, 0x3000, 0xFEFF, 0xFFFC),
        *range(0x2000, 0x2010),  # spaces of every width, zero-width ones, marks
        *range(0x2028, 0x2030),  # line and paragraph separators, embeddings and overrides
        *range(0xE0000, 0xE0080),  # tags
    )
)
"""What Telegram counts as nothing (TDLib's `strip_empty_characters`, and the line separators and
overrides `clean_input_string` removes), besides Python's whitespace."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def unreordered(text: str) -> str:
    """`text` with each character that reorders what follows it as a visible escape."""
    return text.translate(_REORDERING)


def telegram_blank(text: str) -> bool:
    """Whether Telegram refuses `text` (as shown) as "message text is empty"."""
    return all(char.isspace() or char in _TELEGRAM_BLANK for char in text)


# ------------------------------------------------------------------------- rendering


class _Dialect:
    """How one platform spells each Markdown construct."""

    def text(self, value: str) -> str:
        raise NotImplementedError

    def strong(self, inner: str) -> str:
        raise NotImplementedError

    def em(self, inner: str) -> str:
        raise NotImplementedError

    def strike(self, inner: str) -> str:
        raise NotImplementedError

    def code(self, value: str) -> str:
        raise NotImplementedError

    def link(self, href: str, label: str, label_plain: str) -> str:
        raise NotImplementedError

    def pre(self, value: str, language: str) -> str:
        raise NotImplementedError

    def heading(self, inner: str) -> str:
        return self.strong(inner)

    def quote(self, inner: str) -> str:
        raise NotImplementedError


class _TelegramHTML(_Dialect):
    def text(self, value: str) -> str:
        return html.escape(value, quote=False)

    def strong(self, inner: str) -> str:
        return f"<b>{inner}</b>" if inner.strip() else inner

    def em(self, inner: str) -> str:
        return f"<i>{inner}</i>" if inner.strip() else inner

    def strike(self, inner: str) -> str:
        return f"<s>{inner}</s>" if inner.strip() else inner

    def code(self, value: str) -> str:
        return f"<code>{html.escape(value, quote=False)}</code>" if value else ""

    def link(self, href: str, label: str, label_plain: str) -> str:
        if not href.startswith(_SAFE_SCHEMES):
            return label if label_plain == href else f"{label} ({self.text(href)})"
        shown = self.text(href.removeprefix("mailto:"))
        anchor = f'<a href="{html.escape(href, quote=True)}">{shown}</a>'
        return anchor if _shows_url(href, label_plain) else f"{label} ({anchor})"

    def pre(self, value: str, language: str) -> str:
        body = html.escape(value.rstrip("\n"), quote=False)
        if not body.strip():
            return ""
        if language and re.fullmatch(r"[A-Za-z0-9_+#.-]{1,32}", language):
            return f'<pre><code class="language-{language}">{body}</code></pre>'
        return f"<pre>{body}</pre>"

    def quote(self, inner: str) -> str:
        # expandable: Telegram folds a long quote (a voice note's transcript shown back)
        return f"<blockquote expandable>{inner}</blockquote>" if inner.strip() else inner


class _SlackMrkdwn(_Dialect):
    def text(self, value: str) -> str:
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def strong(self, inner: str) -> str:
        return f"*{inner.strip()}*" if inner.strip() else inner

    def em(self, inner: str) -> str:
        return f"_{inner.strip()}_" if inner.strip() else inner

    def strike(self, inner: str) -> str:
        return f"~{inner.strip()}~" if inner.strip() else inner

    def code(self, value: str) -> str:
        return f"`{self.text(value.replace('`', 'ˋ'))}`" if value else ""

    def link(self, href: str, label: str, label_plain: str) -> str:
        if not href.startswith(_SAFE_SCHEMES):
            return label if label_plain == href else f"{label} ({self.text(href)})"
        target = href.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
        return f"<{target}>" if _shows_url(href, label_plain) else f"{label} (<{target}>)"

    def pre(self, value: str, language: str) -> str:
        body = self.text(value.rstrip("\n").replace("```", "ˋˋˋ"))
        return f"```\n{body}\n```" if body.strip() else ""

    def quote(self, inner: str) -> str:
        # Slack quotes line by line: a code block's lines are quoted too
        def one(line: str) -> str:
            return "> " + line if line else ">"

        return "\n".join(
            _PRE_NEWLINE.join(one(part) for part in line.split(_PRE_NEWLINE))
            for line in inner.split("\n")
        )


def _shows_url(href: str, label_plain: str) -> bool:
    """The label is the URL itself (or empty), so the URL alone is shown."""
    return not label_plain.strip() or label_plain in (href, href.removeprefix("mailto:"))


class _Renderer:
    def __init__(self, dialect: _Dialect) -> None:
        self.d = dialect
        self._quote_depth = 0

    def render(self, markdown: str, references: Mapping[str, Any] | None = None) -> str:
        """`references`: link definitions (`[1]: https://x`) from elsewhere in the text, as
        markdown-it collects them in `env["references"]` (a piece of a long reply uses them)."""
        env: dict[str, Any] = {"references": dict(references)} if references else {}
        root = SyntaxTreeNode(markdown_parser().parse(markdown, env))
        return self._blocks(root.children).strip().replace(_PRE_NEWLINE, "\n")

    # blocks ------------------------------------------------------------------------------
    def _blocks(self, nodes: list[SyntaxTreeNode], sep: str = "\n\n") -> str:
        parts = [self._block(node) for node in nodes]
        return sep.join(part for part in parts if part)

    def _block(self, node: SyntaxTreeNode) -> str:
        kind = node.type
        if kind == "paragraph" or kind == "inline":
            return self._inline_of(node)
        if kind == "heading":
            return self.d.heading(self._inline_of(node))
        if kind in ("bullet_list", "ordered_list"):
            return self._list(node)
        if kind == "blockquote":
            self._quote_depth += 1
            try:
                inner = self._blocks(node.children)
            finally:
                self._quote_depth -= 1
            return inner if self._quote_depth else self.d.quote(inner)
        if kind in ("fence", "code_block"):
            language = (node.info or "").strip().split(" ")[0] if kind == "fence" else ""
            return self._pre(node.content, language)
        if kind == "hr":
            return "──────────"
        if kind == "table":
            return self._pre(_table_text(node), "")
        if kind == "html_block":
            return self.d.text(node.content.rstrip("\n"))
        return self._blocks(node.children)

    def _pre(self, value: str, language: str) -> str:
        # one "line" until render() ends: a list around it indents none of the code's lines
        return self.d.pre(value, language).replace("\n", _PRE_NEWLINE)

    def _list(self, node: SyntaxTreeNode) -> str:
        ordered = node.type == "ordered_list"
        number = int(node.attrs.get("start", 1) or 1) if ordered else 0
        tight = all(
            child.hidden
            for item in node.children
            for child in item.children
            if child.type == "paragraph"
        )
        lines: list[str] = []
        for item in node.children:
            marker = f"{number}. " if ordered else "• "
            number += 1
            body = self._blocks(item.children, sep="\n" if tight else "\n\n")
            indent = " " * len(marker)
            first, *rest = body.split("\n") if body else [""]
            lines.append(marker + first)
            lines.extend(indent + line if line else line for line in rest)
        return "\n".join(lines)

    # inline ------------------------------------------------------------------------------
    def _inline_of(self, node: SyntaxTreeNode) -> str:
        return "".join(self._inline(child) for child in node.children)

    def _inline(self, node: SyntaxTreeNode) -> str:
        kind = node.type
        if kind == "inline":
            return self._inline_of(node)
        if kind == "text":
            return self.d.text(node.content)
        if kind in ("softbreak", "hardbreak"):
            return "\n"
        if kind == "strong":
            return self.d.strong(self._inline_of(node))
        if kind == "em":
            return self.d.em(self._inline_of(node))
        if kind == "s":
            return self.d.strike(self._inline_of(node))
        if kind == "code_inline":
            return self.d.code(node.content)
        if kind == "link":
            href = str(node.attrs.get("href", ""))
            return self.d.link(href, self._inline_of(node), _plain_of(node))
        if kind == "image":
            src = str(node.attrs.get("src", ""))
            alt = _plain_of(node) or "image"
            return self.d.link(src, self.d.text(alt), alt)
        if kind in ("html_inline", "html_block"):
            return self.d.text(node.content)
        return self._inline_of(node)


def _plain_of(node: SyntaxTreeNode) -> str:
    if node.type in ("text", "code_inline"):
        return node.content
    if node.type in ("softbreak", "hardbreak"):
        return " "
    return "".join(_plain_of(child) for child in node.children)


def _cell_of(node: SyntaxTreeNode) -> str:
    """A table cell as text (a table is shown in a code block, where nothing is a link): a
    link keeps its address after its words (R140: a table of shops came with "buy" and no
    address in it)."""
    if node.type == "link":
        href, label = str(node.attrs.get("href", "")), _plain_of(node)
        return label if _shows_url(href, label) else f"{label} ({href.removeprefix('mailto:')})"
    if node.type in ("text", "code_inline", "softbreak", "hardbreak"):
        return _plain_of(node)
    return "".join(_cell_of(child) for child in node.children)


def _table_text(table: SyntaxTreeNode) -> str:
    rows: list[list[str]] = []
    for section in table.children:
        for row in section.children:
            rows.append([_cell_of(cell).strip() for cell in row.children])
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    sizes = [max(_columns(row[i]) for row in rows) for i in range(width)]
    lines = [
        " | ".join(cell + " " * (sizes[i] - _columns(cell)) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]
    lines.insert(1, "-+-".join("-" * size for size in sizes))
    return "\n".join(lines)


def _columns(text: str) -> int:
    """How many columns `text` takes in a monospace font: two for a wide character (Chinese,
    Japanese, Korean, most emoji), none for a combining mark (R137: a table with 日本語 in it
    came out misaligned)."""
    return sum(
        0
        if unicodedata.combining(c) or c in "\u200d\ufe0f"
        else 2
        if unicodedata.east_asian_width(c) in ("W", "F")
        else 1
        for c in text
    )


def markdown_to_telegram_html(markdown: str, references: Mapping[str, Any] | None = None) -> str:
    """Markdown as Telegram HTML: supported tags only, every other character escaped.
    `references`: link definitions from the rest of the text (see `_Renderer.render`)."""
    return _Renderer(_TelegramHTML()).render(markdown, references)


def markdown_to_slack(markdown: str, references: Mapping[str, Any] | None = None) -> str:
    """Markdown as Slack mrkdwn (`*bold*`, `_italic_`, `<url|label>`, ``` blocks)."""
    return _Renderer(_SlackMrkdwn()).render(markdown, references)


_TAG = re.compile(r"<[^<>]*>")


def telegram_visible_text(markup: str) -> str:
    """The text Telegram shows for an HTML message (what its length limit counts)."""
    return html.unescape(_TAG.sub("", markup))


def plain_fallback(chunk: Chunk) -> str:
    """A Telegram message as plain text, where its HTML is refused: what the HTML would show
    (bullets, link addresses, an aligned table), its marks of emphasis lost, never the
    Markdown it came from (R137: `**Bold**`, `[link](…)` and table pipes showed raw)."""
    return telegram_visible_text(chunk.markup).strip() or chunk.source


def telegram_chunks(markdown: str, limit: int = TELEGRAM_LIMIT) -> list[Chunk]:
    """Telegram HTML messages for a Markdown text, split on paragraph boundaries; a part
    Telegram would count as empty (R258: U+2800 alone after a long paragraph) is left out."""
    return markdown_chunks(
        unreordered(markdown),
        markdown_to_telegram_html,
        lambda markup: utf16_len(telegram_visible_text(markup).strip()),
        limit,
        blank=lambda markup: telegram_blank(telegram_visible_text(markup)),
    )


def slack_chunks(markdown: str, limit: int = SLACK_LIMIT) -> list[Chunk]:
    """Slack mrkdwn messages for a Markdown text, split on paragraph boundaries."""
    return markdown_chunks(unreordered(markdown), markdown_to_slack, len, limit)


# ------------------------------------------------------------------------- Slack → plain

_SLACK_REF = re.compile(r"<([^<>]+)>")


def slack_to_plain(text: str) -> str:
    """Slack's message markup as plain text: `<@U1|ann>` → `@ann (slack:U1)`, `<@U1>` → `@U1`,
    `<https://x|x>` → `x (https://x)`, `<#C1|general>` → `#general`, `<!here>` → `@here`, and
    `&amp;` `&lt;` `&gt;` decoded. A mention keeps the member id, written as Steward writes
    identities: the name alone says not who it is (`/allow @ann` needs `slack:U1`)."""

    def ref(match: re.Match[str]) -> str:
        target, _, label = match[1].partition("|")
        if target.startswith("@"):
            return f"@{label} (slack:{target[1:]})" if label else target
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        if label and label != target and label != target.removeprefix("mailto:"):
            return f"{label} ({target})"
        return target.removeprefix("mailto:")

    plain = _SLACK_REF.sub(ref, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
