"""HTML as the plain text a person would read: one converter for web pages and mail.

Markup, scripts, styles and images go (an image leaves its alt text); block elements break
lines. What a reader would not see is not read either: an element with the `hidden` attribute
or a style that hides it (`display:none`, `visibility:hidden`, zero size or opacity) is
dropped with what is inside it, as are text 1px small, moved far off screen or clipped away.
Hidden text is how a page or a mail tells the model what the person never saw ("Your account
is locked: call …" in a mail that shows a newsletter). Best effort: what a style sheet hides
by class, or white on white, needs a CSS engine; all of it stays fenced as outside content.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_SKIP = {"script", "style", "head", "noscript", "template", "svg", "object", "iframe"}
_BLOCK = {
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "section", "article", "blockquote", "pre", "hr", "ul", "ol",
}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
_END = r"\s*(!\s*important)?\s*(;|$)"
_HIDING = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*(hidden|collapse)"
    rf"|opacity\s*:\s*0(\.0*)?{_END}"
    rf"|font-size\s*:\s*(0(\.\d*)?|1)(px|pt|em|rem|%)?{_END}"
    rf"|(max-)?(height|width)\s*:\s*0(\.0*)?(px|pt|em|rem|%)?{_END}"
    r"|(left|top|text-indent|margin-left)\s*:\s*-\d{3,}"
    r"|clip\s*:\s*rect\(\s*0|clip-path\s*:\s*inset\(\s*(50|100)%",
    re.IGNORECASE,
)


def _hidden(attrs: dict[str, str | None]) -> bool:
    return "hidden" in attrs or bool(_HIDING.search(attrs.get("style") or ""))


class _Text(HTMLParser):
    def __init__(self, *, links: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._links = links
        self._skipping = 0
        self._in_title = False
        self._hiding: list[list[object]] = []  # [tag, depth] of the open hidden elements
        self._hrefs: list[str | None] = []
        self._cells = 0  # cells begun in the current table row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if self._hiding and tag == self._hiding[-1][0]:
            self._hiding[-1][1] = int(self._hiding[-1][1]) + 1  # type: ignore[call-overload]
        elif tag not in _VOID and _hidden(values):
            self._hiding.append([tag, 1])
        if tag == "title":
            self._in_title = True
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        if tag == "tr":
            self._cells = 0
        elif tag in ("td", "th") and not self._quiet():
            # cells apart: "Widget | 2 | 3 | 19.99", not "Widget2319.99"
            self.parts.append(" | " if self._cells else "")
            self._cells += 1
        if tag == "li":
            self.parts.append("- ")
        elif tag == "a":
            self._hrefs.append(values.get("href"))
        elif tag == "img" and not self._quiet() and not _hidden(values):
            alt = (values.get("alt") or "").strip()
            self.parts.append(f"[image{': ' + alt if alt else ''}]")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._hiding and tag == self._hiding[-1][0]:
            self._hiding[-1][1] = int(self._hiding[-1][1]) - 1  # type: ignore[call-overload]
            if self._hiding[-1][1] == 0:
                self._hiding.pop()
        if tag in _SKIP and self._skipping:
            self._skipping -= 1
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag == "a" and self._hrefs:
            href = self._hrefs.pop()
            if (
                self._links
                and href
                and not self._quiet()
                and href.startswith(("http:", "https:", "mailto:"))
            ):
                self.parts.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if self._in_title and not self._hiding:
            self.title += data
        elif not self._quiet():
            self.parts.append(data)

    def _quiet(self) -> bool:
        return bool(self._skipping or self._hiding)


def html_to_text(markup: str, *, title: bool = False, links: bool = False) -> str:
    """`title`: the page's title first, as a heading; `links`: each link's address after its
    text (web and mail addresses only)."""
    parser = _Text(links=links)
    try:
        parser.feed(markup)
        parser.close()
    except (AssertionError, ValueError):  # badly broken markup: keep what was read
        pass
    text = re.sub(r"[ \t\r\f\v\xa0]+", " ", "".join(parser.parts))
    text = re.sub(r" *\n *", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    heading = " ".join(parser.title.split())
    return f"# {heading}\n\n{text}" if title and heading else text
