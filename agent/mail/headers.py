"""A message's headers read from what a server holds, however hostile: header reading that
cannot fail (a header the parser cannot model, or would take too long to, is read as written),
and the parse itself under caps (long Content-* headers cut, parts counted, nesting past what
the parser goes shown by its headers). `parse_headers` and `read_headers` for listings;
`reading` parses whole messages with the same tools (`read_capped`, `headers_into`, `head_end`,
`TooManyParts`).
"""

from __future__ import annotations

import contextlib
import email
import email.errors
import email.header
import email.policy
import logging
import re
from collections.abc import Callable, Sequence
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from agent.mail.charsets import relabel_header_block
from agent.mail.header_cap import CUT_NOTE, cap_header_block, head_end
from agent.mail.parsed import ParsedMail, clean_text

__all__ = [
    "TooManyParts",
    "head_end",
    "headers_into",
    "parse_headers",
    "read_capped",
    "read_headers",
]

log = logging.getLogger(__name__)


_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})
_PARSE_MAX = 8_192
"""An address header longer than this is not given to the modern parser, whose cost grows
with the length (a 550 KB To: took 16 s): it is read as written (encoded words decoded)."""
_PARSE_MAX_OTHER = 65_536  # the others cost less a byte (a 112 KB Subject: 0.4 s)
_KEEP_MAX = 65_536
"""A header read as written keeps this many characters."""
_CONTENT_HEADER_MAX = 8_192
"""A top-level Content-* header is cut to this before parsing: the parser reads it while it
parses (a 190 KB Content-Type took 9 s)."""
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _raw_header(message: Message, name: str) -> str | None:
    """The first `name` header as written (folded lines and all), as `get` would pick it."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


def _plain_header(raw: str) -> str:
    """A header the parser cannot model (or would take too long to): what it says, with
    encoded words decoded where they decode, and no control characters."""
    text = clean_text(raw[:_KEEP_MAX])
    if "=?" in text:
        with contextlib.suppress(Exception):  # not decodable: as written
            text = clean_text(str(email.header.make_header(email.header.decode_header(text))))
    return _CONTROL.sub("", text).strip()


def _header(message: Message, name: str) -> str:
    """A header as text, whatever it holds: the modern parser raises on some (IndexError on
    `Message-ID: <`, RecursionError on 2,000 brackets); those are read as written."""
    try:
        raw = _raw_header(message, name)
    except Exception:  # a message object of an odd kind
        raw = None
    if raw is None:
        return ""
    limit = _PARSE_MAX if name.lower() in _ADDRESS_HEADERS else _PARSE_MAX_OTHER
    if len(raw) <= limit:
        try:
            value = message.get(name)
        except Exception:  # a header the parser cannot model: read it raw
            pass
        else:
            return clean_text(value) if value is not None else ""
    return _plain_header(raw)


def headers_into(parsed: ParsedMail, message: Message) -> None:
    parsed.sender = _header(message, "From")
    try:
        pairs = getaddresses([parsed.sender])
    except Exception:  # a From no address can be read from
        pairs = []
    parsed.sender_address = pairs[0][1].lower() if pairs and "@" in pairs[0][1] else ""
    parsed.to = _header(message, "To")
    parsed.cc = _header(message, "Cc")
    parsed.reply_to = _header(message, "Reply-To")
    parsed.subject = _header(message, "Subject")
    parsed.date_text = _header(message, "Date")
    parsed.message_id = _header(message, "Message-ID")
    parsed.references = _header(message, "References") or _one_parent(message)
    try:
        parsed.date = parsedate_to_datetime(parsed.date_text) if parsed.date_text else None
    except Exception:  # not a date
        parsed.date = None


def _one_parent(message: Message) -> str:
    """A mail's In-Reply-To when it names one message and the mail has no References: its
    thread, which a reply's References continues (RFC 5322 3.6.4; R264: a reply to such a
    mail referred to it alone, and the thread's start was lost)."""
    ids = re.findall(r"<[^<>\s]+>", _header(message, "In-Reply-To"))
    return ids[0] if len(ids) == 1 else ""


def _utf8_headers(raw: bytes) -> bytes:
    """Header lines in 8-bit bytes that are not UTF-8 (a Latin-1 subject sent raw) re-encoded
    from Windows-1252, which the parser would otherwise turn into replacement characters."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    try:
        head.decode("utf-8")
        return raw
    except UnicodeDecodeError:
        pass
    lines = []
    for line in head.split(b"\n"):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            line = line.decode("cp1252", "replace").encode("utf-8")
        lines.append(line)
    return b"\n".join(lines) + (b"" if end < 0 else raw[end:])


def _relabel(raw: bytes) -> bytes:
    """The header block's encoded words and RFC 2231 values with their charsets named as
    clients read them (R218: `=?gb2312?` words holding GBK, `=?iso-8859-8-i?` Hebrew)."""
    end = head_end(raw)
    return relabel_header_block(raw[:end]) + raw[end:]


class TooManyParts(Exception):
    """The parser made more messages and parts than `read_capped` was told to allow."""


def _counting_factory(limit: int) -> Callable[..., Message]:
    """A message factory for the parser that refuses past `limit` parts (a backstop for
    shapes the cheap count in `_shape` does not see)."""
    made = 0

    def factory(policy: email.policy.Policy = email.policy.compat32) -> Message:
        nonlocal made
        made += 1
        if made > limit + 1:  # + 1: the parser makes one to try the factory
            raise TooManyParts
        return (getattr(policy, "message_factory", None) or Message)(policy=policy)

    return factory


_CONTENT_HEADER = re.compile(rb"(?im)^content-[!-9;-~]*[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")


def _cap_content_headers(raw: bytes) -> bytes:
    """Top-level Content-* headers cut to _CONTENT_HEADER_MAX bytes: the parser reads them as
    it parses, at a cost that grows with their length."""
    end = head_end(raw)
    if end <= _CONTENT_HEADER_MAX:
        return raw

    def cut(match: re.Match[bytes]) -> bytes:
        field = match[0]
        if len(field) <= _CONTENT_HEADER_MAX:
            return field
        ending = b"\r" if field.endswith(b"\r") else b""
        return field[:_CONTENT_HEADER_MAX].rstrip(b"\r\n \t") + ending

    return _CONTENT_HEADER.sub(cut, raw[:end]) + raw[end:]


def read_capped(raw: bytes, *, max_parts: int = 0) -> Message:
    """`raw` parsed, however malformed; TooManyParts past `max_parts` parts (0: no limit)."""
    raw = _utf8_headers(_relabel(_cap_content_headers(raw)))
    factory = _counting_factory(max_parts) if max_parts else None
    try:
        return email.message_from_bytes(raw, factory, policy=email.policy.default)
    except TooManyParts:
        raise
    except RecursionError:
        return _headers_only(raw)
    except Exception:  # the modern parser gave up: the lenient one never does
        try:
            factory = _counting_factory(max_parts) if max_parts else None
            return email.message_from_bytes(raw, factory, policy=email.policy.compat32)
        except RecursionError:
            return _headers_only(raw)


def _headers_only(raw: bytes) -> Message:
    """A message nested deeper than the parser goes (a crafted one): its headers, and a note
    in place of the body."""
    end = raw.find(b"\r\n\r\n")
    head = raw[: end if end >= 0 else len(raw)]
    text = (
        re.sub(rb"(?im)^content-type:.*(\r?\n[ \t].*)*\r?\n?", b"", head)
        + b"\r\n\r\n[nested too deeply to be read]\r\n"
    )
    try:
        message = email.message_from_bytes(text, policy=email.policy.default)
    except Exception:  # the lenient parser reads anything
        message = email.message_from_bytes(text, policy=email.policy.compat32)
    message.defects.append(email.errors.MessageDefect("nested too deeply to be read"))
    return message


def parse_headers(raw: bytes) -> ParsedMail:
    """The headers of a message (or of its header block alone, or of the first part of one
    as a listing fetches it), whatever they hold; of a long block only its first
    HEADER_LIMIT bytes, with a note saying so."""
    raw, cut = cap_header_block(raw)
    parsed = _parse_headers(raw)
    if cut:
        parsed.problems.append(CUT_NOTE)
    return parsed


def _parse_headers(raw: bytes) -> ParsedMail:
    parsed = ParsedMail()
    try:
        headers_into(parsed, read_capped(raw))
    except Exception as exc:  # defects past what `_header` foresees
        log.warning("mail: headers read as written (%s)", type(exc).__name__)
        parsed = ParsedMail(problems=[f"headers unreadable ({type(exc).__name__})"])
        head = raw[: head_end(raw)] + b"\r\n\r\n"
        headers_into(parsed, email.message_from_bytes(head, policy=email.policy.compat32))
    return parsed


def read_headers(raws: Sequence[bytes]) -> list[ParsedMail | None]:
    """Each header block's ParsedMail, one that cannot be read at all None (and logged)
    without affecting the others; blocking (a long header costs), for a worker thread."""
    found: list[ParsedMail | None] = []
    for raw in raws:
        try:
            found.append(parse_headers(raw))
        except Exception:  # one message's headers: never the others'
            log.exception("mail: a message's headers could not be read")
            found.append(None)
    return found
