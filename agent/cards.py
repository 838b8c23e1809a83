"""Approval cards that show the action as it is, for a person to judge.

Pure functions, no I/O. An approval card must not be a place where outside text can hide or
disguise what will run:

- control, bidi, zero-width and other format characters (and so ANSI escape sequences) are shown
  as visible escapes (`\\u202e`, `\\x1b`); only newline and tab are kept. Long runs of invisible
  characters or blank space are collapsed into one marker that says how many there were, so
  padding cannot push the payload out of view;
- every host in a URL (and every bare look-alike domain) is shown in punycode, with a warning
  line when a label mixes scripts (a Cyrillic "a" in "paypal.com") or was written with characters
  that normalise away;
- nothing is cut silently: a card longer than the channel allows keeps its beginning and its
  end and says exactly how many characters are hidden and how to see them all
  (`/approve show <id>`); a preview that is a head over a body (a mail: who it goes to, then
  its text) keeps its head whole and is cut in the body only;
- the reason line carries no outside words: `describe_sources` reduces where content came from to
  its kind and host ("web:evil.example").

(Over 400 lines, kept in one module on purpose: each disguise a card must defeat is small, and
the escaping, host and cutting rules are one review surface that a reviewer reads together.)
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import idna

from agent.text_scripts import mixed_scripts

__all__ = [
    "BIDI",
    "KEPT_HEAD",
    "Card",
    "describe_sources",
    "escape_invisible",
    "plain_name",
    "plain_text",
    "render_card",
    "render_preview",
    "shown_size",
    "terminal_safe",
]

Measure = Callable[[str], int]

_INVISIBLE_EXTRA = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x2800, 0x3164, 0xFFA0, 0xFFFC}
)
BIDI = frozenset({0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)})
"""The bidirectional marks, embeddings, overrides and isolates: shown as escapes on a card, and
the reordering ones in every outgoing chat text (bot.channels.formatting)."""
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SAME_RUN = 8  # identical invisible characters in a row from which they are counted, not listed
_MIXED_RUN = 16  # a run of a few kinds of invisible characters from which they are counted
_MIXED_KINDS = 8
_BLANK_RUN = 40  # spaces and tabs in a row from which they are counted
_BLANK_LINES = 4  # line breaks in a blank stretch from which they are counted
_REASON_MAX = 400
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,15}://)([^\s/?#\\<>\"'`]+)")
# R237: a host after an @ too (`curl me@host/x`, scp, git over ssh name a host as surely as a URL)
_BARE_HOST = re.compile(r"(?<![\w.-])((?:[^\W_](?:[\w-]{0,62}[^\W_])?\.)+[^\W\d_]{2,63})(?![\w-])")


# ------------------------------------------------------------------------- characters


def _hidden(char: str) -> bool:
    if char in "\n\t":
        return False
    code = ord(char)
    if code in _INVISIBLE_EXTRA or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return True
    category = unicodedata.category(char)
    return category in _HIDDEN_CATEGORIES or (category == "Zs" and char != " ")


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\r":
        return "\\r"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _runs(text: str) -> Iterable[tuple[str, int]]:
    """(character, how many in a row)."""
    start = 0
    for index in range(1, len(text) + 1):
        if index == len(text) or text[index] != text[start]:
            yield text[start], index - start
            start = index


def _escape_tokens(text: str) -> list[str]:
    """`text` as display tokens: invisible characters escaped, padding collapsed into counts.

    A token is never cut in two, so an escape is either shown whole or counted as hidden."""
    tokens: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if _hidden(char):
            end = index
            while end < len(text) and _hidden(text[end]):
                end += 1
            tokens.extend(_invisible_run(text[index:end]))
            index = end
            continue
        if char in " \t\n":
            end = index
            while end < len(text) and text[end] in " \t\n":
                end += 1
            tokens.extend(_blank_run(text[index:end]))
            index = end
            continue
        tokens.append(char)
        index += 1
    return tokens


def _invisible_run(run: str) -> list[str]:
    kinds = Counter(run)
    if len(run) >= _MIXED_RUN and 1 < len(kinds) <= _MIXED_KINDS:
        named = ", ".join(f"{_escape(c)} ×{n:,}" for c, n in kinds.items())
        return [f"[{len(run):,} invisible characters: {named}]"]
    tokens: list[str] = []
    for char, count in _runs(run):
        if count >= _SAME_RUN:
            tokens.append(f"[{_escape(char)} ×{count:,}]")
        else:
            tokens.extend(_escape(char) for _ in range(count))
    return tokens


def _blank_run(run: str) -> list[str]:
    breaks = run.count("\n")
    if breaks < _BLANK_LINES and len(run) - breaks < _BLANK_RUN:
        return list(run)
    spaces = len(run) - breaks
    parts = [f"{breaks:,} line breaks"] if breaks else []
    parts += [f"{spaces:,} spaces or tabs"] if spaces else []
    marker = f"[blank: {', '.join(parts)}]"
    return ["\n", marker, "\n"] if breaks else [" ", marker, " "]


_MARKUP = re.compile(r"[`*_~#\[\]()<>|\\&]")


# `_` only at a word's edge: inside words it is no emphasis (mail_send, snake_case addresses),
# and escaped there it would change the words the model reads; & too: "&#10;" would be decoded
_EMPHASIS = re.compile(r"([`*~\[\]|\\&]|(?<![^\W_])_|_(?![^\W_]))")
_BLOCK_START = re.compile(r"^(\d*)([#>+.)-])")  # a heading, quote or list if it led a line


def plain_name(name: str, limit: int = 64) -> str:
    """A name a person chose, as plain text in Steward's own notices: no Markdown to dress it up
    as Steward's words or as a link, nothing invisible, at most `limit` characters."""
    one_line = " ".join(name.split())  # a name is one line: no line of its own to forge
    return _MARKUP.sub("", escape_invisible(one_line))[:limit].strip()


def plain_text(text: str, limit: int = 200) -> str:
    """Someone else's words inside a notice of Steward's (a mail's sender, subject, first line),
    as Markdown that shows them as typed: emphasis, code and link characters escaped (so shown,
    never applied), nothing invisible, at most `limit` characters of the original."""
    one_line = " ".join(text[:limit].split())
    escaped = _EMPHASIS.sub(r"\\\1", escape_invisible(one_line))
    return _BLOCK_START.sub(r"\1\\\2", escaped)


def escape_invisible(text: str) -> str:
    """Every invisible or control character as a visible escape (newline and tab kept)."""
    return "".join(_escape_tokens(text))


def terminal_safe(text: str) -> str:
    """For a terminal: control characters (so ANSI sequences) and bidi controls escaped, the
    rest untouched (emoji joiners stay)."""
    return "".join(
        _escape(c) if c not in "\n\t" and (unicodedata.category(c) == "Cc" or ord(c) in BIDI) else c
        for c in text
    )


# ------------------------------------------------------------------------- hosts


def _mixed_scripts(label: str) -> list[str]:
    """The scripts of a label that mixes them in a way no single language does, else [] (by
    each letter's Unicode script: R200, "ラーメン.jp" had been "Katakana and Katakana-Hiragana")."""
    with contextlib.suppress(idna.IDNAError, ValueError):
        label = idna.uts46_remap(label, std3_rules=False, transitional=False)
    return mixed_scripts(label)


def _host(host: str) -> tuple[str, list[str]]:
    """A host as it is shown on a card (ASCII, punycode) and warnings about it."""
    if host.isascii():
        shown = host.lower()
        if "xn--" not in shown:
            return shown, []
        with contextlib.suppress(idna.IDNAError, UnicodeError, ValueError):
            host = idna.decode(shown)  # written in punycode: judge what it stands for
    else:
        try:
            shown = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            try:
                shown = host.encode("idna").decode("ascii")
            except UnicodeError:
                shown = "".join(c if c.isascii() else _escape(c) for c in host)
                return shown, [f"⚠ {shown} is not a valid host name"]
    for label in host.replace("。", ".").split("."):
        if scripts := _mixed_scripts(label):
            mixes = " and ".join(scripts)
            return shown, [
                f"⚠ The host {shown} mixes {mixes} letters: it may imitate another site."
            ]
    if "xn--" not in shown:
        return shown, [f"⚠ The host {shown} was written with look-alike or invisible characters."]
    return shown, []


def _authority(authority: str) -> tuple[str, list[str]]:
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.startswith("["):
        host, port = hostport, ""
    else:
        host, colon, port = hostport.partition(":")
        port = colon + port
    shown, warnings = _host(host)
    if at:
        warnings.append(
            f"⚠ A URL names “{escape_invisible(userinfo)}” before an @: that is a user name; "
            f"the site is {shown}."
        )
        return f"{userinfo}@{shown}{port}", warnings
    return f"{shown}{port}", warnings


def render_preview(text: str) -> tuple[list[str], list[str]]:
    """A preview as display tokens (hosts in punycode, invisible characters escaped) and the
    warnings about its hosts."""
    tokens: list[str] = []
    warnings: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        tokens += _bare_hosts(text[position : match.start()], warnings)
        authority, found = _authority(match[2])
        tokens += _escape_tokens(match[1])
        tokens.append(escape_invisible(authority))
        warnings += found
        position = match.end()
    tokens += _bare_hosts(text[position:], warnings)
    return tokens, list(dict.fromkeys(warnings))


def _bare_hosts(text: str, warnings: list[str]) -> list[str]:
    """Escape tokens of text outside URLs; non-ASCII domain-like words shown in punycode."""
    tokens: list[str] = []
    position = 0
    for match in _BARE_HOST.finditer(text):
        if match[1].isascii():
            continue
        tokens += _escape_tokens(text[position : match.start()])
        shown, found = _host(match[1])
        tokens.append(shown)
        warnings += found
        position = match.end()
    return tokens + _escape_tokens(text[position:])


# ------------------------------------------------------------------------- the card


@dataclass(frozen=True)
class Card:
    """An approval card's parts, already escaped; `text` is the plain card.

    `head` and `tail` are the preview's shown beginning and end; `hidden` counts the characters
    between them that did not fit, and `more` says so (empty when everything is shown)."""

    approval_id: str
    title: str
    tool: str
    head: str
    more: str
    tail: str
    warnings: tuple[str, ...]
    reason: str
    footer: str
    hidden: int = 0

    def parts(self) -> list[tuple[str, str]]:
        """(kind, text) in order, empty parts left out; kinds: title, tool, preview, more,
        warning, reason, footer."""
        parts = [
            ("title", self.title),
            ("tool", self.tool),
            ("preview", self.head),
            ("more", self.more),
            ("preview", self.tail),
            *(("warning", w) for w in self.warnings),
            ("reason", self.reason),
            ("footer", self.footer),
        ]
        return [(kind, text) for kind, text in parts if text.strip()]

    @property
    def text(self) -> str:
        return "\n\n".join(text for _, text in self.parts())


def _more(hidden: int, approval_id: str) -> str:
    return f"… {hidden:,} more characters hidden — /approve show {approval_id} shows all"


KEPT_HEAD = 1_300
"""The longest head (as `shown_size` counts it) a cut card keeps whole above its body, on a card
as small as Slack's (2,800): with a reason of 400 characters and three warnings, the body still
has room. A mail's card is refused when its head is longer (R194)."""
_BODY_LINE = re.compile(r"^--- body \(([\d,]+) characters\) ---\n", re.M)
_BODY_SHOWN = 200  # characters of a body a card with a kept head shows at least
_WARNINGS_SHOWN = 3  # warnings a cut card lists, each cut to _WARNING_CHARS
_WARNING_CHARS = 160


def shown_size(text: str) -> int:
    """How long `text` is on the narrowest card: escaped as a card shows it, with `&`, `<` and
    `>` as Slack writes them and a character past U+FFFF as two (Telegram and Slack count
    UTF-16 units)."""
    shown = "".join(render_preview(text)[0])
    wide = sum(1 for c in shown if ord(c) > 0xFFFF)
    return len(shown) + wide + 4 * shown.count("&") + 3 * (shown.count("<") + shown.count(">"))


def _head_and_body(preview: str) -> tuple[str, str] | None:
    """A preview that is a head over a body: its first line `--- body (N characters) ---`, after
    which exactly N characters run to its end (a mail's card; no other text makes one by
    chance), split after that line."""
    match = _BODY_LINE.search(preview)
    if match is None or int(match[1].replace(",", "")) != len(preview) - match.end():
        return None
    return preview[: match.end()], preview[match.end() :]


def _few_warnings(warnings: tuple[str, ...], approval_id: str) -> tuple[str, ...]:
    """The warnings of a cut card: the first few, each cut short, and how many more there are
    (a body naming sixty look-alike hosts had its warnings push the whole preview off)."""
    shown = [w if len(w) <= _WARNING_CHARS else w[: _WARNING_CHARS - 1] + "…" for w in warnings]
    if len(shown) > _WARNINGS_SHOWN:
        rest = len(shown) - _WARNINGS_SHOWN
        shown = shown[:_WARNINGS_SHOWN]
        shown.append(f"⚠ {rest:,} more warnings — /approve show {approval_id} shows all")
    return tuple(shown)


def render_card(
    tool: str,
    preview: str,
    reason: str,
    approval_id: str,
    *,
    limit: int | None = None,
    measure: Measure = len,
) -> Card:
    """The card for one approval. With `limit`, `measure(card.text)` stays within it: what
    does not fit is cut from the middle of the preview (of its body, below a head kept whole,
    when it is a head over a body) and counted in `more`; past three, warnings are counted."""
    tokens, warnings = render_preview(preview)
    shown_reason = escape_invisible(reason.strip())
    if len(shown_reason) > _REASON_MAX:
        rest = len(shown_reason) - _REASON_MAX
        shown_reason = f"{shown_reason[:_REASON_MAX]} … ({rest:,} more characters)"
    whole = "".join(tokens)
    card = Card(
        approval_id=approval_id,
        title=f"Approval needed · {approval_id}",
        tool=escape_invisible(tool),
        head=whole,
        more="",
        tail="",
        warnings=tuple(warnings),
        reason=shown_reason,
        footer=f"Or type /approve {approval_id} or /deny {approval_id}",
    )
    if limit is None or measure(card.text) <= limit:
        return card
    card = replace(card, warnings=_few_warnings(card.warnings, approval_id))
    # room for the preview: the card without it, with the longest note it could need
    bare = replace(card, head="x", tail="x", more=_more(len(whole), ""))
    room = max(0, limit - measure(bare.text) - len(approval_id) - 2)
    kept: list[str] = []
    split = _head_and_body(preview)
    if split is not None:  # the head whole, when it leaves the body room (R194)
        kept, body = (render_preview(part)[0] for part in split)
        if measure("".join(kept)) + _BODY_SHOWN <= room:
            tokens, whole = body, "".join(body)
            room -= measure("".join(kept))
        else:
            kept = []
    head = _take(tokens, room * 2 // 3, measure)
    tail = _take(list(reversed(tokens[len(head) :])), room - measure("".join(head)), measure)
    tail.reverse()
    head_text, tail_text = "".join(head), "".join(tail)
    hidden = len(whole) - len(head_text) - len(tail_text)
    head_text = "".join(kept) + head_text
    return replace(
        card,
        head=head_text if head_text.strip() else "",
        tail=tail_text if tail_text.strip() else "",
        more=_more(hidden, approval_id),
        hidden=hidden,
    )


def _take(tokens: list[str], room: int, measure: Measure) -> list[str]:
    taken: list[str] = []
    used = 0
    for token in tokens:
        size = measure(token)
        if used + size > room:
            break
        taken.append(token)
        used += size
    return taken


# ------------------------------------------------------------------------- sources

_KIND = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,19}):(.*)$", re.S)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]{0,15}://")
_PEOPLE = frozenset(
    {"message", "person", "people", "user", "chat", "group", "member", "sender", "stranger"}
)
_WORD = re.compile(r"^[a-z][a-z0-9_]{0,30}( result)?$")  # "outside", "web_fetch result"
_ID = re.compile(r"^#?\d{1,12}$")
_MCP_SERVERS = re.compile(r"[A-Za-z0-9-]{1,32}(,[A-Za-z0-9-]{1,32}){0,7}")
_PROGRAM = re.compile(r"^[\w.+-]{1,40}$")
_HOSTNAME = re.compile(r"^[a-z0-9._:-]{1,253}$")


def _source_host(host: str) -> str | None:
    shown = _host(host)[0]
    return shown if _HOSTNAME.match(shown) else None


def _url_host(url: str) -> str | None:
    try:
        host = urlsplit(url if _SCHEME.match(url) else "x:" + url).hostname
    except ValueError:
        return None
    return _source_host(host) if host else None


def _describe(source: str) -> str:
    source = source.strip()
    if _SCHEME.match(source):
        host = _url_host(source)
        return f"web:{host}" if host else "web"
    match = _KIND.match(source)
    if match is None:
        return source if _WORD.match(source) else "outside content"
    kind, rest = match[1].lower(), match[2].strip()
    if kind in _PEOPLE:
        return "another person's message"
    if _ID.match(rest):
        return f"{kind}:{rest}"
    if _SCHEME.match(rest) or rest.startswith("//"):
        host = _url_host(rest)
        return f"{kind}:{host}" if host else kind
    if kind in ("file", "workspace"):
        path = escape_invisible(rest.split("\n", 1)[0])
        return f"{kind}:{path if len(path) <= 80 else path[:79] + '…'}"
    if kind == "memory":
        ids = re.findall(r"#?\d+", rest)[:5]
        return f"memory:{','.join(ids)}" if ids else "memory"
    if kind in ("mcp", "mcp-tools", "mcp-search"):  # server names are the owner's, mcp.json
        return f"{kind}:{rest}" if _MCP_SERVERS.fullmatch(rest) else kind
    if kind == "shell":
        program = rest.split()[0] if rest.split() else ""
        return f"shell:{program}" if _PROGRAM.match(program) else "shell"
    if kind == "mail":  # a sender's domain, never the address's local part or a folder name
        domain = rest.rsplit("@", 1)[-1] if "@" in rest else ""
        host = _source_host(domain) if "." in domain else None
        return f"mail:{host}" if host else "mail"
    word = re.match(r"[^\s/?#@:]+", rest)
    host = _source_host(word[0].strip(".")) if word and "." in word[0] else None
    return f"{kind}:{host}" if host else kind


def describe_sources(sources: Iterable[str]) -> str:
    """Where outside content came from, as kinds and hosts only ("web:evil.example",
    "feed:news.example", "file:notes/x.md", "another person's message"): never a URL's path or
    query, whose words an attacker chooses."""
    described = list(dict.fromkeys(_describe(s) for s in sources if s and s.strip()))
    if len(described) > 1 and "outside" in described:  # says nothing beside a named source
        described.remove("outside")
    return ", ".join(described)
