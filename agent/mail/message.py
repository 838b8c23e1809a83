"""Messages in and out, with the standard `email` package: parse what a server holds (however
malformed), reduce HTML to text, list attachments, and build new messages and threaded replies.

Nothing in a message is executed or followed: HTML is read as text (scripts, styles and images
dropped, link targets shown as text), attachments are named and measured, never opened.

(Over 400 lines: a message's reading, as mail clients write it — charsets, MIME shapes,
forwards — and the building of new ones and replies share its header and address helpers.)
"""

from __future__ import annotations

import base64
import email
import email.errors
import email.policy
import mimetypes
import re
import secrets
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
]


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


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a header the parser cannot model: read it raw
        value = message.get_all(name, [""])[0] if hasattr(message, "get_all") else ""
    return clean_text(value) if value is not None else ""


def _headers_into(parsed: ParsedMail, message: Message) -> None:
    parsed.sender = _header(message, "From")
    pairs = getaddresses([parsed.sender])
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
    except (TypeError, ValueError, IndexError):
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


def _read(raw: bytes) -> Message:
    raw = _utf8_headers(raw)
    try:
        return email.message_from_bytes(raw, policy=email.policy.default)
    except RecursionError:
        return _headers_only(raw)
    except Exception:  # the modern parser gave up: the lenient one never does
        try:
            return email.message_from_bytes(raw, policy=email.policy.compat32)
        except RecursionError:
            return _headers_only(raw)


def _headers_only(raw: bytes) -> Message:
    """A message nested deeper than the parser goes (a crafted one): its headers, and a note
    in place of the body."""
    end = raw.find(b"\r\n\r\n")
    head = raw[: end if end >= 0 else len(raw)]
    message = email.message_from_bytes(
        re.sub(rb"(?im)^content-type:.*(\r?\n[ \t].*)*\r?\n?", b"", head)
        + b"\r\n\r\n[nested too deeply to be read]\r\n",
        policy=email.policy.default,
    )
    message.defects.append(email.errors.MessageDefect("nested too deeply to be read"))
    return message


def parse_headers(raw: bytes) -> ParsedMail:
    parsed = ParsedMail()
    _headers_into(parsed, _read(raw))
    return parsed


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    if str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64" and any(
        "Base64" in type(d).__name__ for d in part.defects
    ):
        payload = _lenient_base64(payload)
    return decode_body(payload, part.get_content_charset() or "")


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
        except LookupError:
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
    words are not the forwarder's), its attachments named as its own."""
    message = _read(raw)
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
    found: list[str] = []
    for _, address in getaddresses(items):
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
