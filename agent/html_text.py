"""HTML as the plain text a person would read: one converter for web pages and mail.

Markup, scripts, styles and images go (an image leaves its alt text); block elements break
lines. What a reader would not see is not read either: an element with the `hidden` attribute
or a style that hides it (`display:none`, `visibility:hidden`, zero size or opacity) is
dropped with what is inside it, as are text 1px small, moved far off screen or clipped away.
Hidden text is how a page or a mail tells the model what the person never saw ("Your account
is locked: call …" in a mail that shows a newsletter). Best effort: what a style sheet hides
by class, or white on white, needs a CSS engine; all of it stays fenced as outside content.

Markup comes from strangers, so reading it costs time and memory in proportion to its size,
never more: the tags are read here, each character once (Python 3.11's `HTMLParser` took
minutes over a few hundred KB of unclosed `</a` or `<?`, and 880 MB for one tag of a million
attributes). A tag keeps its first `MAX_ATTRIBUTES` attributes, each value at most `MAX_TAG`
long; padding cannot unhide what it hides: a style that long (its inline images left out) is
taken as hiding, and so is a tag whose attributes past those kept name "hidden" or "style".
The open elements tracked are at most `MAX_DEPTH` deep, and the text is unescaped and tidied
in pieces as it comes, never in one pass that would hold the interpreter for a second. A
comment never closed hides the rest, as in a browser, and so does a tag whose quoted value
never closes, or that begins after the last ">" (HTMLParser read all three as text).
"""

from __future__ import annotations

import re
from html import unescape

__all__ = ["MAX_ATTRIBUTES", "MAX_DEPTH", "MAX_TAG", "html_to_text"]

MAX_TAG = 8192
"""Characters of an attribute value kept (an inline image's data: address goes)."""
MAX_ATTRIBUTES = 64
"""Attributes kept of one tag."""
MAX_DEPTH = 64
"""Hidden elements and links tracked one inside the other: past it, the rest is hidden."""
_MAX_TITLE = 1000
_PIECE = 65_536
"""Characters of text unescaped and tidied at a time."""
_SCAN = 65_536
"""Characters of a tag read in one scan; a longer tag is read a quote or "=" at a time."""

_SKIP = {"script", "style", "head", "noscript", "template", "svg", "object", "iframe"}
_BLOCK = {
    "p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "section", "article", "blockquote", "pre", "hr", "ul", "ol",
}  # fmt: skip
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
_END = r"\s*+(?:!\s*+important)?\s*+(?:;|$)"
_HIDING = re.compile(
    r"display\s*+:\s*+none|visibility\s*+:\s*+(?:hidden|collapse)"
    rf"|opacity\s*+:\s*+0(?:\.0*+)?{_END}"
    rf"|font-size\s*+:\s*+(?:0(?:\.\d*+)?|1)(?:px|pt|em|rem|%)?{_END}"
    rf"|(?:max-)?(?:height|width)\s*+:\s*+0(?:\.0*+)?(?:px|pt|em|rem|%)?{_END}"
    r"|(?:left|top|text-indent|margin-left)\s*+:\s*+-\d{3,}"
    r"|clip\s*+:\s*+rect\(\s*+0|clip-path\s*+:\s*+inset\(\s*+(?:50|100)%",
    re.IGNORECASE,
)
"""R221: possessive, as the tag scanners below: the two runs of spaces in `_END` split a run
n²/2 ways before failing (one 8 KB `style="opacity:0   …x"` held the interpreter for seconds,
the event loop with it, though the mail was read in a thread); each space is read once now."""
# The tokens, as HTMLParser and browsers read them; possessive, so that nothing is scanned
# twice: a quote opens a value only after "=", and a value never closed is read once.
_MARKUP = re.compile(r"<[a-zA-Z/!?]")
_PLAIN = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*+)>")
_NAME = re.compile(r"<([a-zA-Z][^\t\n\r\f />\x00]*+)")
_START = re.compile(r"""((?:[^>"'=]++|=\s*+(?:"[^"]*+"|'[^']*+')?|["'])*+)(>?)""")
"""A start tag's attributes, after its name, and its ">" (none: the scan ended first)."""
_ATTRIBUTE = re.compile(r"""([^\s/>=][^\s/=>]*+)(?:\s*+=+\s*+("[^"]*+"|'[^']*+'|[^\s>]*+))?""")
_END_TAG = re.compile(r"</\s*+([a-zA-Z][-.a-zA-Z0-9:_]*+)\s*+>")
_END_NAME = re.compile(r"</([a-zA-Z][^\t\n\r\f />\x00]*+)")
_SPECIAL = re.compile(r"""[>"'=]""")
_VALUE_QUOTE = re.compile(r"""\s*+(["'])""")
_URL = re.compile(r"""url\(\s*+(?:"[^"]*+"|'[^']*+'|[^)]*+)\)?""", re.IGNORECASE)
_COMMENT_END = re.compile(r"--\s*+>")
_RAW_END = {
    "script": re.compile(r"</\s*+script\s*+>", re.IGNORECASE),
    "style": re.compile(r"</\s*+style\s*+>", re.IGNORECASE),
}


def _hidden(attrs: dict[str, str | None]) -> bool:
    return "hidden" in attrs or bool(_HIDING.search(attrs.get("style") or ""))


def _style_hides(style: str) -> bool:
    """Whether a style attribute's value, as written, hides its element. One longer than
    MAX_TAG once its inline images' data is left out is no style a page shows: hidden."""
    if len(style) > MAX_TAG:
        if style.lower().count("url(") > 16:
            return True
        style = _URL.sub("url()", style)
        if len(style) > MAX_TAG:
            return True
    return bool(_HIDING.search(unescape(style) if "&" in style else style))


def _attributes(raw: str) -> list[tuple[str, str | None]]:
    """A tag's first MAX_ATTRIBUTES attributes, each value at most MAX_TAG long; ("hidden",
    None) after them when a style among them hides the element, or when past them the rest
    of the tag names "hidden" or "style" anywhere (padding cannot push a style out of
    sight)."""
    attrs: list[tuple[str, str | None]] = []
    hides = False
    for found in _ATTRIBUTE.finditer(raw):
        if len(attrs) == MAX_ATTRIBUTES:
            rest = raw[found.start() :].lower()
            hides = hides or "hidden" in rest or "style" in rest
            break
        name, value = found.group(1, 2)
        name = name.lower()
        if value is not None:
            if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]:
                value = value[1:-1]
            if name == "style" and _style_hides(value):
                hides = True
            if len(value) > MAX_TAG:
                value = ""
            elif "&" in value:
                value = unescape(value)
        attrs.append((name, value))
    if hides:
        attrs.append(("hidden", None))
    return attrs


def _tag_end(markup: str, at: int) -> int:
    """Where a tag whose attributes begin at `at` ends (after its ">"; -1: it never does),
    read as `_START` reads it, a quote or "=" at a time: no single scan holds the
    interpreter over megabytes of one tag."""
    while True:
        special = _SPECIAL.search(markup, at)
        if not special:
            return -1
        at = special.end()
        if special.group() == ">":
            return at
        if special.group() == "=" and (quote := _VALUE_QUOTE.match(markup, at)):
            close = markup.find(quote.group(1), quote.end())
            at = close + 1 if close >= 0 else quote.end()


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t\r\f\v\xa0]+", " ", text)
    text = re.sub(r" *\n *", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text)


def _joined(pieces: list[str]) -> str:
    """Tidied pieces as one tidied text: only the spaces where two meet are tidied again."""
    out: list[str] = []
    for piece in pieces:
        if out:
            before = out[-1]
            kept = before.rstrip(" \n")
            lead = piece[: len(piece) - len(piece.lstrip(" \n"))]
            out[-1] = kept
            piece = _tidy(before[len(kept) :] + lead) + piece[len(lead) :]
        out.append(piece)
    return "".join(out)


class _Text:
    def __init__(self, *, links: bool) -> None:
        self.parts: list[str] = []
        self._size = 0
        self._tidied: list[str] = []
        self._title: list[str] = []
        self._title_size = 0
        self._links = links
        self._skipping = 0
        self._in_title = False
        self._hiding: list[list[object]] = []  # [tag, depth] of the open hidden elements
        self._hidden_rest = False  # hidden elements nested past MAX_DEPTH: the rest is hidden
        self._hrefs: list[str | None] = []
        self._untracked_links = 0  # links opened past MAX_DEPTH
        self._cells = 0  # cells begun in the current table row

    # -- reading the markup --------------------------------------------------------------

    def read(self, markup: str) -> None:
        n = len(markup)
        last_close = markup.rfind(">")
        # no tag can close after the last ">": what follows it is text, up to a comment or tag
        # begun there, which hides the rest as in a browser (R131: "<!-- Assistant: …" at the
        # end of a file reached the model)
        tail = _MARKUP.search(markup, last_close + 1)
        stop = tail.start() if tail else n
        at = 0
        while at < stop:
            found = _MARKUP.search(markup, at)
            start = found.start() if found and found.start() < last_close else stop
            while at < start:
                end = min(at + _PIECE, start)
                if end < start:  # never a character reference cut in two
                    amp = markup.rfind("&", max(at, end - 40), end)
                    end = amp if amp > at else end
                chunk = markup[at:end]
                self.handle_data(unescape(chunk) if "&" in chunk else chunk)
                at = end
            if start >= stop:
                break
            at = self._markup(markup, start, n)

    def _markup(self, markup: str, at: int, n: int) -> int:
        """Reads the markup at `at` (a "<" a ">" follows somewhere); where it ends."""
        second = markup[at + 1]
        if second == "/":
            found = _END_TAG.match(markup, at)
            if found:
                self.handle_endtag(found.group(1).lower())
                return found.end()
            name = _END_NAME.match(markup, at)
            if name:
                self.handle_endtag(name.group(1).lower())
            return markup.find(">", at + 2) + 1
        if second in "!?":
            if markup.startswith("<!--", at):
                found = _COMMENT_END.search(markup, at + 4)
                return found.end() if found else n  # a comment never closed hides the rest
            if markup.startswith("<![CDATA[", at):
                end = markup.find("]]>", at + 9)
                return end + 3 if end >= 0 else n
            return markup.find(">", at + 2) + 1
        plain = _PLAIN.match(markup, at)
        if plain and plain.group(1).lower() not in _RAW_END:  # the most of them: <p>, <td>
            self.handle_starttag(plain.group(1).lower(), [])
            return plain.end()
        named = _NAME.match(markup, at)
        assert named is not None  # "<" and a letter always begin one
        name, begin = named.group(1).lower(), named.end()
        tag = _START.match(markup, begin, begin + _SCAN)
        assert tag is not None  # it matches the empty string
        if tag.group(2):
            raw, end = tag.group(1), tag.end()
        elif tag.end() == n:  # the end came inside the tag (a quote never closed)
            return n
        else:  # a tag longer than _SCAN
            end = _tag_end(markup, begin)
            if end < 0:
                return n
            raw = markup[begin : end - 1]
        closed = raw[-1:] == "/" and (len(raw) == 1 or raw[-2] in " \t\n\r\f/\"'")
        attrs = _attributes(raw) if raw.strip(" /") else []
        self.handle_starttag(name, attrs)
        if closed:
            self.handle_endtag(name)
            return end
        if name in _RAW_END:  # a script's or style's text is not markup
            found = _RAW_END[name].search(markup, end)
            if not found:
                return n
            self.handle_data(markup[end : found.start()])
            self.handle_endtag(name)
            return found.end()
        return end

    # -- what the reader sees -------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs) if attrs else {}
        if self._hiding and tag == self._hiding[-1][0]:
            self._hiding[-1][1] = int(self._hiding[-1][1]) + 1  # type: ignore[call-overload]
        elif tag not in _VOID and _hidden(values):
            if len(self._hiding) < MAX_DEPTH:
                self._hiding.append([tag, 1])
            else:
                self._hidden_rest = True
        if tag == "title":
            self._in_title = True
        if tag in _SKIP:
            self._skipping += 1
        elif tag in _BLOCK:
            self._add("\n")
        if tag == "tr":
            self._cells = 0
        elif tag in ("td", "th") and not self._quiet():
            # cells apart: "Widget | 2 | 3 | 19.99", not "Widget2319.99"
            self._add(" | " if self._cells else "")
            self._cells += 1
        if tag == "li":
            self._add("- ")
        elif tag == "a":
            if len(self._hrefs) < MAX_DEPTH:
                self._hrefs.append(values.get("href"))
            else:
                self._untracked_links += 1
        elif tag == "img" and not self._quiet() and not _hidden(values):
            alt = (values.get("alt") or "").strip()
            self._add(f"[image{': ' + alt if alt else ''}]")

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
            self._add("\n")
        elif tag == "a" and self._untracked_links:
            self._untracked_links -= 1
        elif tag == "a" and self._hrefs:
            href = self._hrefs.pop()
            if (
                self._links
                and href
                and not self._quiet()
                and href.startswith(("http:", "https:", "mailto:"))
            ):
                self._add(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if self._in_title and not self._hiding and not self._hidden_rest:
            if self._title_size < _MAX_TITLE:
                self._title.append(data[:_MAX_TITLE])
                self._title_size += len(self._title[-1])
        elif not self._quiet():
            for start in range(0, len(data), _PIECE):
                self._add(data[start : start + _PIECE])

    def _quiet(self) -> bool:
        return bool(self._skipping or self._hiding or self._hidden_rest)

    # -- the text -------------------------------------------------------------------------

    def _add(self, text: str) -> None:
        self.parts.append(text)
        self._size += len(text)
        if self._size >= _PIECE or len(self.parts) >= 4096:
            self._tidied.append(_tidy("".join(self.parts)))
            self.parts.clear()
            self._size = 0

    def text(self) -> str:
        self._tidied.append(_tidy("".join(self.parts)))
        self.parts.clear()
        return _joined(self._tidied).strip()

    @property
    def title(self) -> str:
        return " ".join("".join(self._title)[:_MAX_TITLE].split())


def html_to_text(markup: str, *, title: bool = False, links: bool = False) -> str:
    """`title`: the page's title first, as a heading; `links`: each link's address after its
    text (web and mail addresses only)."""
    parser = _Text(links=links)
    parser.read(markup)
    text = parser.text()
    heading = parser.title
    return f"# {heading}\n\n{text}" if title and heading else text
