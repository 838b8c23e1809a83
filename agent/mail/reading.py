"""A whole message read from what a server holds, however malformed: its shape scanned before
it is parsed (too many parts, too deep, too long part headers: shown by its headers with a
note), then its parts walked for the text (charsets as mail clients write them, HTML reduced
to text when there is no plain part), attachment names and sizes, and forwarded messages.

Nothing in a message is executed or followed: HTML is read as text (scripts, styles and images
dropped, link targets shown as text), attachments are named and measured, never opened.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import hmac
import itertools
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from agent.mail.charsets import MAIL_CHARSET, codec_for
from agent.mail.flowed import unflow
from agent.mail.header_cap import CUT_NOTE, cap_header_block
from agent.mail.headers import TooManyParts, head_end, headers_into, parse_headers, read_capped
from agent.mail.parsed import (
    Attachment,
    ParsedMail,
    clean_text,
    clean_text_block,
    html_to_text,
    human_size,
)
from agent.well_formed import well_formed

__all__ = ["MAX_PARTS", "MAX_PART_HEADER_BYTES", "UNREAD_NOTES", "decode_body", "parse_message"]

log = logging.getLogger(__name__)


MAX_PARTS = 500
"""A message of more parts than this is shown by its headers, not opened: the parser takes
~0.5 ms a part, and 10,000 tiny parts fit in 0.44 MB."""
MAX_PART_HEADER_BYTES = 65_536
"""Nor one whose parts' Content-* headers add up to more (the parser reads those at ~20 µs a
byte); real mail has ~100 bytes of them a part."""
_DEEP = 100
"""Past MAX_PARTS, a message whose parts nest deeper than this is called nested too deeply."""
_BOUNDARY_PARAM = re.compile(  # in lower case: a literal start is searched 15 times faster
    rb'boundary\*?0?\*?[ \t]*=[ \t]*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))'
)
_DELIMITER = re.compile(rb"\n--([^\r\n]*)")
_LONE_CR = re.compile(rb"\r(?!\n)")
"""The parser breaks lines at a lone CR too: made CRLF first, so the count sees what the
parser will (review 66: parts opened with bare CRs were invisible to it)."""
MAX_PART_HEADER = 4096
"""Nor one with a single Content-* header longer than this (folded comments cost the parser
~90 µs a byte: one 54 KB Content-Type took 4.7 s)."""
_PART_HEADER = re.compile(rb"\ncontent-[!-9;-~]*[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")
_FORWARDED = re.compile(rb"\ncontent-type:[ \t]*message/rfc822")
_BLANK = re.compile(rb"\r?\n\r?\n")
_UNFOLDED = re.compile(rb"\r?\n(?![ \t])")


@dataclass(frozen=True)
class _Shape:
    parts: int
    depth: int
    part_header_bytes: int
    longest_part_header: int


def _shape(raw: bytes) -> _Shape:
    """How many parts a message has and how deep they nest, by its boundary lines, and how
    long its parts' Content-* headers are, without parsing it (a few regex passes: ~0.1 s
    for 40 MB)."""
    lowered = raw.lower()
    boundaries: set[bytes] = set()
    for match in _BOUNDARY_PARAM.finditer(lowered):
        group = 1 if match[1] is not None else 2
        value = raw[match.start(group) : match.end(group)].rstrip(b" \t")
        boundaries.add(value.split(b"''", 1)[1] if b"''" in value else value)
    boundaries.discard(b"")
    parts = depth = 0
    stack: list[bytes] = []
    if boundaries:
        for match in _DELIMITER.finditer(raw):
            line = match[1].rstrip(b" \t")
            closing = line not in boundaries
            if closing:
                if not line.endswith(b"--") or line[:-2] not in boundaries:
                    continue
                line = line[:-2]
            if not closing:
                parts += 1
                if parts > MAX_PARTS:  # enough: the rest is counted, not followed
                    parts = max(parts, _count_delimiters(raw, boundaries))
                    break
            if line in stack:
                while stack[-1] != line:
                    stack.pop()
                if closing:
                    stack.pop()
            elif not closing:
                stack.append(line)
                depth = max(depth, len(stack))
    end = head_end(raw)
    sizes = _forwarded_headers(lowered, end)
    if boundaries:  # one part: its body's lines that start "Content-" are text (a trace)
        sizes += [len(m[0]) - 1 for m in _PART_HEADER.finditer(lowered, end)]
    return _Shape(parts, depth, sum(sizes), max(sizes, default=0))


def _forwarded_headers(lowered: bytes, start: int) -> list[int]:
    """The lengths of the header lines of messages forwarded inside this one (message/rfc822
    parts): the parser reads their From, To, Subject… as it reads a part's Content-* headers
    (review 67: 20 forwards of 215 KB of headers each took 18.9 s)."""
    sizes: list[int] = []
    for match in _FORWARDED.finditer(lowered, start):
        own_end = _BLANK.search(lowered, match.end())  # the part's own headers end here
        if own_end is None:
            break
        theirs = _BLANK.search(lowered, own_end.end())
        block = lowered[own_end.end() : theirs.start() if theirs else len(lowered)]
        sizes += [len(line) for line in _UNFOLDED.split(block) if line]
        if len(sizes) > 100_000:
            break
    return sizes


def _count_delimiters(raw: bytes, boundaries: set[bytes]) -> int:
    """The delimiter lines of (up to 20 of) `boundaries`, counted at C speed: the number a
    note gives for a message of very many parts."""
    return sum(
        raw.count(b"\n--" + b + b"\r\n") + raw.count(b"\n--" + b + b"\n")
        for b in sorted(boundaries)[:20]
    )


_UNOPENED = "[Steward did not open this message"
_TOO_DEEP = "[nested too deeply to be read]"
UNREAD_NOTES = (_UNOPENED, _TOO_DEEP)
"""How Steward's own notes in place of a message's text begin: a reply must not quote them
as the sender's words (R218)."""


def _unopened(raw: bytes, note: str) -> ParsedMail:
    """A message shown by its headers, with `note` in place of its text."""
    parsed = parse_headers(raw[: head_end(raw)] + b"\r\n\r\n")
    parsed.text = f"{_UNOPENED}: {note}; read it in a mail client]"
    return parsed


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64" and any(
        "Base64" in type(d).__name__ for d in part.defects
    ):
        payload = _lenient_base64(payload)
    try:
        charset = part.get_content_charset() or ""
    except Exception:  # a charset no codec is named (a NUL in it): guessed
        charset = ""
    return decode_body(payload, charset)


def _plain_text(part: Message) -> str:
    """A text/plain part's words; sent `format=flowed`, its paragraphs joined again."""
    text = _part_text(part)
    if str(part.get_param("format", "") or "").strip().lower() != "flowed":
        return text
    delsp = str(part.get_param("delsp", "") or "").strip().lower() == "yes"
    return unflow(text.replace("\r\n", "\n"), delsp=delsp)


def decode_body(payload: bytes, charset: str) -> str:
    """A text part's bytes as text, as mail clients read them: 8-bit text with no charset (a
    script's mail) is UTF-8 if it is that, else Windows-1252; a label is read as the codec
    clients use for it (`charsets.codec_for`): "iso-8859-1" as Windows-1252, which Windows
    clients send under that name, "gb2312" as GB18030, "iso-8859-8-i" as ISO-8859-8 (R218); an
    unknown charset falls back the same way."""
    charset = charset.strip().lower()
    if charset in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        charset = ""
    else:  # as clients read the label: gb2312 as GB18030, shift_jis as CP932… (R218)
        charset = codec_for(charset) or charset
    if charset:
        try:
            if MAIL_CHARSET.fullmatch(codecs.lookup(charset).name):
                # UTF-7 can decode to a lone surrogate ("+2AA-"): it failed the turn (review 118)
                return well_formed(payload.decode(charset, "replace"))
        except (LookupError, ValueError):  # unknown, or no name at all ("utf-8\x00")
            pass
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("cp1252", "replace")


def _lenient_base64(data: bytes) -> bytes:
    """Broken base64 decoded up to where it breaks (the parser hands it back undecoded)."""
    valid = re.match(rb"[A-Za-z0-9+/=\s]*", data)
    text = re.sub(rb"[^A-Za-z0-9+/]", b"", valid.group(0) if valid else b"")
    text = text[: len(text) - len(text) % 4]
    try:
        return base64.b64decode(text)
    except ValueError:
        return data


_DISPOSITION = re.compile(r"[ \t]*([A-Za-z-]+)")


def _disposition(part: Message) -> str:
    """ "attachment", "inline" or "": the parser raises on a broken RFC 2231 value in the
    header (`filename*=utf-16''%00%D8`), which hid the whole message (R218); its first word
    is read as written then."""
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:
        raw = next((str(v) for k, v in part.raw_items() if k.lower() == "content-disposition"), "")
        match = _DISPOSITION.match(raw)
        return match[1].lower() if match else ""


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return clean_text(name) if name else None


_Marks = Callable[[], str]
"""The next mark of a forwarded message's lines."""


def _marks(raw: bytes, key: bytes | None) -> _Marks:
    """Random marks; with `key`, marks an HMAC of the message draws, the same at each reading
    (R194: a reply re-read the mail when sent, so its quote had other marks than the card's).
    The sender cannot type them either way: the key is secret, and the mail itself is hashed."""
    if key is None:
        return lambda: secrets.token_hex(4)
    digest = hmac.new(key, raw, hashlib.sha256).digest()
    count = itertools.count()
    return lambda: hmac.new(key, digest + str(next(count)).encode(), hashlib.sha256).hexdigest()[:8]


def parse_message(raw: bytes, *, mark_key: bytes | None = None) -> ParsedMail:
    """The whole message: headers, text (HTML reduced to text when there is no plain part),
    attachment names and sizes. Malformed MIME is read as far as it goes and noted. A message
    forwarded as an attachment follows the text under its own From, Date and Subject (its
    words are not the forwarder's), its attachments named as its own, between lines with a
    mark (random, or drawn from `mark_key` and the message). One of more than MAX_PARTS parts
    is shown by its headers with a note, not opened; of a header block over HEADER_LIMIT only
    the lines before it are read, with a note. Never raises."""
    marks = _marks(raw, mark_key)
    raw, cut = cap_header_block(raw)  # a header block of megabytes: its first HEADER_LIMIT
    try:
        parsed = _parse_message(raw, marks)
    except Exception as exc:  # a shape nothing above foresaw: its headers
        log.warning("mail: a message could not be read (%s)", type(exc).__name__)
        parsed = _unopened(raw, f"this message could not be read ({type(exc).__name__})")
    if cut and CUT_NOTE not in parsed.problems:
        parsed.problems.insert(0, CUT_NOTE)
    return parsed


def _parse_message(raw: bytes, marks: _Marks) -> ParsedMail:
    raw = _LONE_CR.sub(b"\r\n", raw)
    shape = _shape(raw)
    if shape.parts > MAX_PARTS:
        if shape.depth > _DEEP:
            return _unopened(raw, "nested too deeply to be read")
        return _unopened(raw, f"too many parts ({shape.parts}); not opened")
    if (
        shape.part_header_bytes > MAX_PART_HEADER_BYTES
        or shape.longest_part_header > MAX_PART_HEADER
    ):
        size = human_size(shape.part_header_bytes)
        return _unopened(raw, f"its parts' headers are too long ({size}); not opened")
    try:
        message = read_capped(raw, max_parts=4 * MAX_PARTS)  # forwarded messages count double
    except TooManyParts:
        return _unopened(raw, f"too many parts (over {4 * MAX_PARTS}); not opened")
    parsed = ParsedMail()
    headers_into(parsed, message)
    try:
        parsed.text, parsed.from_html = _body_into(parsed, message, marks, depth=0)
    except RecursionError:  # nested deeper than Python walks (a crafted chain of forwards)
        parsed.text, parsed.from_html = _TOO_DEEP, False
        parsed.attachments.clear()
        parsed.problems.append("nested too deeply to be read")
    for defect in getattr(message, "defects", [])[:3]:
        parsed.problems.append(type(defect).__name__)
    return parsed


_MAX_FORWARDS = 3
"""Forwarded messages inside forwarded messages read this deep; deeper ones are named only."""


_STUB_SHARE = 5
_STUB_CHARS = 400
"""A plain part a fifth of the HTML's text or less (and that much shorter) is read as a stub: the
HTML, made text, is the message."""


def _body_into(
    parsed: ParsedMail, message: Message, marks: _Marks, *, depth: int, within: str = ""
) -> tuple[str, bool]:
    """`message`'s text (and whether it came from HTML); its attachments, and the messages it
    forwards, added to `parsed`. `within` prefixes attachment names of a forwarded message."""
    plain: list[str] = []
    markup: list[str] = []
    forwarded: list[str] = []
    for part in _leaves(message):
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message) and depth < _MAX_FORWARDS:
                forwarded.append(_forwarded(parsed, inner, marks, depth=depth + 1))
                continue
            name = within + "(a forwarded message inside it, not read)"
            parsed.attachments.append(Attachment(name, ctype, 0))  # not measured: not walked
            continue
        disposition = _disposition(part)
        name = _filename(part)
        is_body = ctype in ("text/plain", "text/html") and not (plain or markup)
        text_part = ctype in ("text/plain", "text/html")
        if (
            disposition == "attachment"
            or (name and not is_body)
            or (ctype.startswith("text/") and not text_part)  # an invite, a CSV: never dropped
        ):
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else len(str(part.get_payload()))
            parsed.attachments.append(Attachment(within + (name or "(unnamed)"), ctype, size))
        elif ctype == "text/plain":
            plain.append(_plain_text(part))
        elif ctype == "text/html":
            markup.append(_part_text(part))
        # else: an unnamed inline part (a picture the HTML shows): not an attachment
    from_html = False
    text = "\n\n".join(p.strip() for p in plain)
    if markup:
        shown = "\n\n".join(html_to_text(m) for m in markup)
        # a newsletter's "your client cannot display this" stub: the HTML is the message (R133)
        if not plain or len(text) * _STUB_SHARE < len(shown) - _STUB_CHARS:
            text, from_html = shown, True
    text = "\n\n".join(t for t in (clean_text_block(text), *forwarded) if t)
    return text, from_html


def _leaves(message: Message) -> list[Message]:
    """The parts that hold content, in order: a forwarded message is one part, not walked."""
    if message.get_content_type() == "message/rfc822" or not message.is_multipart():
        return [message]
    found: list[Message] = []
    for part in message.get_payload() or []:
        if isinstance(part, Message):
            found.extend(_leaves(part))
    return found


def _forwarded(parsed: ParsedMail, inner: Message, marks: _Marks, *, depth: int) -> str:
    head = ParsedMail()
    headers_into(head, inner)
    text, _ = _body_into(parsed, inner, marks, depth=depth, within="(forwarded) ")
    mark = marks()  # the end line is Steward's: the sender cannot type it
    lines = [f"---------- Forwarded message {mark} ----------"]
    lines += [
        f"{k}: {v}"
        for k, v in (
            ("From", head.sender),
            ("Date", head.date_text),
            ("Subject", head.subject),
            ("To", head.to),
        )
        if v
    ]
    end = f"---------- End of forwarded message {mark} ----------"
    return "\n".join(lines) + ("\n\n" + text if text else "") + "\n" + end
