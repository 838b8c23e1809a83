"""Messages in and out, with the standard `email` package: parse what a server holds (however
malformed), reduce HTML to text, list attachments, and build new messages and threaded replies.

Nothing in a message is executed or followed: HTML is read as text (scripts, styles and images
dropped, link targets shown as text), attachments are named and measured, never opened.

(Over 400 lines: a message's reading, as mail clients write it — charsets, MIME shapes,
forwards — and the building of new ones and replies share its header and address helpers.)
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.errors
import email.header
import email.policy
import logging
import mimetypes
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage, Message
from email.utils import formatdate, getaddresses, make_msgid, parsedate_to_datetime

from agent.html_text import html_to_text as _html_to_text

__all__ = [
    "Attachment",
    "ParsedMail",
    "Recipients",
    "build_message",
    "build_reply",
    "clean_text",
    "html_to_text",
    "human_size",
    "parse_headers",
    "parse_message",
    "parse_recipients",
    "read_headers",
]

log = logging.getLogger(__name__)


def html_to_text(markup: str) -> str:
    """HTML as plain text: markup, scripts, styles, images and hidden text dropped, links
    shown as text (agent/html_text.py)."""
    return _html_to_text(markup, links=True)


def clean_text(value: object) -> str:
    """A header or text value as proper Unicode: bytes that were not UTF-8 (an 8-bit subject
    in Latin-1) are read as Windows-1252 rather than left as unencodable surrogates."""
    text = str(value) if value is not None else ""
    if any("\udc80" <= c <= "\udcff" for c in text):
        raw = text.encode("utf-8", "surrogateescape")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", "replace")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return re.sub(r"[\r\n]+[ \t]*", " ", text).strip()


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int


@dataclass
class ParsedMail:
    """One message as Steward reads it."""

    sender: str = ""
    sender_address: str = ""
    to: str = ""
    cc: str = ""
    reply_to: str = ""
    subject: str = ""
    date: datetime | None = None
    date_text: str = ""
    message_id: str = ""
    references: str = ""
    text: str = ""
    from_html: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def gist(self, limit: int = 120) -> str:
        """One line of what it says: the first line of text that is not a greeting or a quote."""
        lines = [ln.strip() for ln in self.text.splitlines() if ln.strip()]
        useful = [
            ln
            for ln in lines
            if not ln.startswith(">") and not re.match(r"^(hi|hello|dear|hey)\b.{0,30}$", ln, re.I)
        ]
        line = re.sub(r"\s+", " ", (useful or lines or [""])[0])
        return line if len(line) <= limit else line[: limit - 1] + "…"


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


def _headers_into(parsed: ParsedMail, message: Message) -> None:
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
    parsed.references = _header(message, "References")
    try:
        parsed.date = parsedate_to_datetime(parsed.date_text) if parsed.date_text else None
    except Exception:  # not a date
        parsed.date = None


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


class _TooManyParts(Exception):
    """The parser made more messages and parts than `_read` was told to allow."""


def _counting_factory(limit: int) -> Callable[..., Message]:
    """A message factory for the parser that refuses past `limit` parts (a backstop for
    shapes the cheap count in `_shape` does not see)."""
    made = 0

    def factory(policy: email.policy.Policy = email.policy.compat32) -> Message:
        nonlocal made
        made += 1
        if made > limit + 1:  # + 1: the parser makes one to try the factory
            raise _TooManyParts
        return (getattr(policy, "message_factory", None) or Message)(policy=policy)

    return factory


def _head_end(raw: bytes) -> int:
    """Where the header block ends (the whole of `raw` when no blank line ends it)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else len(raw)


_CONTENT_HEADER = re.compile(rb"(?im)^content-[!-9;-~]*[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")


def _cap_content_headers(raw: bytes) -> bytes:
    """Top-level Content-* headers cut to _CONTENT_HEADER_MAX bytes: the parser reads them as
    it parses, at a cost that grows with their length."""
    end = _head_end(raw)
    if end <= _CONTENT_HEADER_MAX:
        return raw

    def cut(match: re.Match[bytes]) -> bytes:
        field = match[0]
        if len(field) <= _CONTENT_HEADER_MAX:
            return field
        ending = b"\r" if field.endswith(b"\r") else b""
        return field[:_CONTENT_HEADER_MAX].rstrip(b"\r\n \t") + ending

    return _CONTENT_HEADER.sub(cut, raw[:end]) + raw[end:]


def _read(raw: bytes, *, max_parts: int = 0) -> Message:
    """`raw` parsed, however malformed; _TooManyParts past `max_parts` parts (0: no limit)."""
    raw = _utf8_headers(_cap_content_headers(raw))
    factory = _counting_factory(max_parts) if max_parts else None
    try:
        return email.message_from_bytes(raw, factory, policy=email.policy.default)
    except _TooManyParts:
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
    """The headers of a message (or of its header block alone), whatever they hold."""
    parsed = ParsedMail()
    try:
        _headers_into(parsed, _read(raw))
    except Exception as exc:  # defects past what `_header` foresees
        log.warning("mail: headers read as written (%s)", type(exc).__name__)
        parsed = ParsedMail(problems=[f"headers unreadable ({type(exc).__name__})"])
        head = raw[: _head_end(raw)] + b"\r\n\r\n"
        _headers_into(parsed, email.message_from_bytes(head, policy=email.policy.compat32))
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
_PART_HEADER = re.compile(rb"\ncontent-[!-9;-~]*[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*")


@dataclass(frozen=True)
class _Shape:
    parts: int
    depth: int
    part_header_bytes: int


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
    end = _head_end(raw)
    part_headers = sum(len(m[0]) - 1 for m in _PART_HEADER.finditer(lowered, end))
    return _Shape(parts, depth, part_headers)


def _count_delimiters(raw: bytes, boundaries: set[bytes]) -> int:
    """The delimiter lines of (up to 20 of) `boundaries`, counted at C speed: the number a
    note gives for a message of very many parts."""
    return sum(
        raw.count(b"\n--" + b + b"\r\n") + raw.count(b"\n--" + b + b"\n")
        for b in sorted(boundaries)[:20]
    )


def _unopened(raw: bytes, note: str) -> ParsedMail:
    """A message shown by its headers, with `note` in place of its text."""
    parsed = parse_headers(raw[: _head_end(raw)] + b"\r\n\r\n")
    parsed.text = f"[{note}]"
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


def decode_body(payload: bytes, charset: str) -> str:
    """A text part's bytes as text, as mail clients read them: 8-bit text with no charset (a
    script's mail) is UTF-8 if it is that, else Windows-1252; "iso-8859-1" is read as
    Windows-1252, which Windows clients send under that name (its quotes and euro sign are
    control characters in Latin-1); an unknown charset falls back the same way."""
    charset = charset.strip().lower()
    if charset in ("", "us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        charset = ""
    elif charset in ("iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1"):
        charset = "cp1252"
    if charset:
        try:
            return payload.decode(charset, "replace")
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


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    return clean_text(name) if name else None


def parse_message(raw: bytes) -> ParsedMail:
    """The whole message: headers, text (HTML reduced to text when there is no plain part),
    attachment names and sizes. Malformed MIME is read as far as it goes and noted. A message
    forwarded as an attachment follows the text under its own From, Date and Subject (its
    words are not the forwarder's), its attachments named as its own. One of more than
    MAX_PARTS parts is shown by its headers with a note, not opened. Never raises."""
    try:
        return _parse_message(raw)
    except Exception as exc:  # a shape nothing above foresaw: its headers
        log.warning("mail: a message could not be read (%s)", type(exc).__name__)
        return _unopened(raw, f"this message could not be read ({type(exc).__name__})")


def _parse_message(raw: bytes) -> ParsedMail:
    shape = _shape(raw)
    if shape.parts > MAX_PARTS:
        if shape.depth > _DEEP:
            return _unopened(raw, "nested too deeply to be read")
        return _unopened(raw, f"too many parts ({shape.parts}); not opened")
    if shape.part_header_bytes > MAX_PART_HEADER_BYTES:
        size = human_size(shape.part_header_bytes)
        return _unopened(raw, f"its parts' headers are too long ({size}); not opened")
    try:
        message = _read(raw, max_parts=4 * MAX_PARTS)  # forwarded messages count double
    except _TooManyParts:
        return _unopened(raw, f"too many parts (over {4 * MAX_PARTS}); not opened")
    parsed = ParsedMail()
    _headers_into(parsed, message)
    try:
        parsed.text, parsed.from_html = _body_into(parsed, message, depth=0)
    except RecursionError:  # nested deeper than Python walks (a crafted chain of forwards)
        parsed.text, parsed.from_html = "[nested too deeply to be read]", False
        parsed.attachments.clear()
        parsed.problems.append("nested too deeply to be read")
    for defect in getattr(message, "defects", [])[:3]:
        parsed.problems.append(type(defect).__name__)
    return parsed


_MAX_FORWARDS = 3
"""Forwarded messages inside forwarded messages read this deep; deeper ones are named only."""


def _body_into(
    parsed: ParsedMail, message: Message, *, depth: int, within: str = ""
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
                forwarded.append(_forwarded(parsed, inner, depth=depth + 1))
                continue
            name = within + "(a forwarded message inside it, not read)"
            parsed.attachments.append(Attachment(name, ctype, 0))  # not measured: not walked
            continue
        disposition = (part.get_content_disposition() or "").lower()
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
            plain.append(_part_text(part))
        elif ctype == "text/html":
            markup.append(_part_text(part))
        # else: an unnamed inline part (a picture the HTML shows): not an attachment
    from_html = False
    if plain:
        text = "\n\n".join(p.strip() for p in plain)
    elif markup:
        text, from_html = "\n\n".join(html_to_text(m) for m in markup), True
    else:
        text = ""
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


def _forwarded(parsed: ParsedMail, inner: Message, *, depth: int) -> str:
    head = ParsedMail()
    _headers_into(head, inner)
    text, _ = _body_into(parsed, inner, depth=depth, within="(forwarded) ")
    mark = secrets.token_hex(4)  # the end line is Steward's: the sender cannot type it
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


def clean_text_block(text: str) -> str:
    """Body text as proper Unicode with Unix line ends."""
    if any("\udc80" <= c <= "\udcff" for c in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


# ---------------------------------------------------------------------------- outgoing


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()

    @property
    def everyone(self) -> list[str]:
        return list(dict.fromkeys(a for a in (*self.to, *self.cc, *self.bcc)))


_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")


def parse_recipients(value: str | list[str] | None) -> tuple[str, ...]:
    """Comma-separated addresses (`Name <a@b.org>` allowed) as bare addresses; ValueError
    names one that is not an address."""
    if not value:
        return ()
    items = value if isinstance(value, list) else [value]
    if any("\r" in v or "\n" in v for v in items):
        raise ValueError("an address list cannot contain line breaks")
    try:
        pairs = getaddresses(items)
    except Exception:  # RecursionError on 2,000 brackets, and the like
        raise ValueError("the addresses cannot be read") from None
    found: list[str] = []
    for _, address in pairs:
        if not address:
            continue
        if not _ADDRESS.match(address):
            raise ValueError(f"{address!r} is not an e-mail address")
        found.append(address)
    return tuple(dict.fromkeys(found))


def build_message(
    *,
    sender: str,
    recipients: Recipients,
    subject: str,
    body: str,
    attachments: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    in_reply_to: str = "",
    references: str = "",
) -> EmailMessage:
    """A message ready for SMTP. Bcc recipients are not written into the headers."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = sender
    message["To"] = ", ".join(recipients.to)
    if recipients.cc:
        message["Cc"] = ", ".join(recipients.cc)
    message["Subject"] = clean_text(subject)
    message["Date"] = formatdate(localtime=True)
    domain = sender.rsplit("@", 1)[-1].strip(">") or "steward.local"
    message["Message-ID"] = make_msgid(domain=domain)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    message.set_content(body)
    for written, data in attachments:
        name = clean_text(written) or "attachment"  # a line break in a file name: one line
        ctype, _ = mimetypes.guess_type(name)
        maintype, subtype = (ctype or "application/octet-stream").split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


def _reply_subject(subject: str) -> str:
    return subject if re.match(r"^\s*re\s*:", subject, re.I) else f"Re: {subject}".strip()


def build_reply(original: ParsedMail, body: str) -> tuple[str, str, str, str]:
    """(subject, body with the original quoted, In-Reply-To, References) of a reply."""
    who = original.sender or "you"
    when = original.date_text or "an earlier date"
    quoted = "\n".join(f"> {line}" if line else ">" for line in original.text.splitlines())
    text = f"{body.rstrip()}\n\nOn {when}, {who} wrote:\n{quoted}\n"
    references = " ".join(x for x in (original.references, original.message_id) if x).strip()
    return _reply_subject(original.subject), text, original.message_id, references
