"""Messages in and out, with the standard `email` package. This module builds new messages and
threaded replies and reads recipient lists; it re-exports the reading side, so callers import
everything mail-shaped from here:

- `parsed`: `ParsedMail`, `Attachment` and the shared text helpers (`clean_text`,
  `html_to_text`, `human_size`);
- `headers`: header reading that cannot fail and the capped parse (`parse_headers`,
  `read_headers`);
- `reading`: whole messages, however malformed (`parse_message`): shape scan, parts, body
  decoding, forwards.

Imports go one way: parsed, header_cap <- headers <- reading <- message.
"""

from __future__ import annotations

import email.errors
import email.policy
import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr

from agent.mail.headers import parse_headers, read_headers
from agent.mail.parsed import Attachment, ParsedMail, clean_text, html_to_text, human_size
from agent.mail.reading import UNREAD_NOTES, parse_message
from agent.text_scripts import mixed_scripts

__all__ = [
    "MAX_THREAD_IDS",
    "Attachment",
    "LookAlikeAddress",
    "ParsedMail",
    "Recipients",
    "attachment_name",
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


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()

    @property
    def everyone(self) -> list[str]:
        return list(dict.fromkeys(a for a in (*self.to, *self.cc, *self.bcc)))


_ADDRESS = re.compile(r"^[^@\s<>\"(),;:]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")


class LookAlikeAddress(ValueError):
    """An address whose local part mixes scripts: a look-alike of another (R194)."""


def _sent_as_shown(address: str) -> bool:
    """Whether the SMTP library sends `address` as it is shown (R150: `ceo[@corp.example` was
    shown on the card so, and sent to `ceo`; R151: `taro..yamada@docomo.ne.jp` and `jörg@…`
    are sent as they are, and are kept)."""
    from aiosmtplib.email import parse_address

    return parseaddr(address)[1] == address and parse_address(address) == address


def parse_recipients(value: str | list[str] | None) -> tuple[str, ...]:
    """Comma-separated addresses (`Name <a@b.org>` allowed) as bare addresses; ValueError
    names one that is not an address (LookAlikeAddress: one whose local part mixes scripts)."""
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
        if not _ADDRESS.match(address) or not _sent_as_shown(address):
            raise ValueError(f"{address!r} is not an e-mail address")
        if "=?" in address:  # decoded again when the message is built (R172): not as shown
            raise ValueError(f"{address!r} holds an encoded word (=?…?=)")
        if "@" in unicodedata.normalize("NFKC", address.rsplit("@", 1)[0]):
            # `boss\uff20corp.example@attacker.example` read as the boss's (R167)
            raise ValueError(f"{address!r} holds a look-alike of @ before its real one")
        if scripts := mixed_scripts(address.rsplit("@", 1)[0]):
            # `b\u043ess@corp.example` (a Cyrillic o) was carded as the boss's with no warning
            # (R194): shown with its odd letters as codes, so the model and the owner see them
            shown = address.encode("ascii", "backslashreplace").decode("ascii")
            raise LookAlikeAddress(
                f"'{shown}' mixes {' and '.join(scripts)} letters before its @, so it may "
                "imitate another address: write the address in one script, as its owner does"
            )
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
    _set_subject(message, clean_text(subject))
    message["Date"] = formatdate(localtime=True)
    domain = sender.rsplit("@", 1)[-1].strip(">") or "steward.local"
    message["Message-ID"] = make_msgid(domain=domain)
    if in_reply_to := _message_ids(in_reply_to):
        message["In-Reply-To"] = in_reply_to
    if references := _message_ids(references):
        message["References"] = references
    message.set_content(body)
    for written, data in attachments:
        name = attachment_name(written)
        ctype, _ = mimetypes.guess_type(name)
        maintype, subtype = (ctype or "application/octet-stream").split("/", 1)
        if maintype == "message":  # a saved mail (.eml): never in base64 (R264)
            if (saved := _saved_message(data)) is not None:
                message.add_attachment(saved, cte="7bit", filename=name)
                continue
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


_SENT_7BIT = email.policy.SMTP.clone(cte_type="7bit")


def _saved_message(data: bytes) -> EmailMessage | None:
    """A saved mail (`.eml`) as a message/rfc822 part carries it: parsed, and sent as written
    in 7bit (R264: it went out in base64, which RFC 2046 5.2.1 does not allow there, so mail
    programs could not open it). None when a part cannot carry it as it is: no header block,
    8-bit bytes (a server without 8BITMIME takes none), a line past SMTP's 998; such a file
    goes as application/octet-stream."""
    if not data.isascii() or b"\0" in data:
        return None
    try:
        saved = email.message_from_bytes(data, policy=email.policy.default)
        if not saved.keys() or any(
            isinstance(d, email.errors.MissingHeaderBodySeparatorDefect) for d in saved.defects
        ):
            return None
        written = saved.as_bytes(policy=_SENT_7BIT)  # as the SMTP client will write it
    except Exception:  # a header the library cannot write again, a nesting too deep
        return None
    if not written.isascii() or any(len(line) > 998 for line in written.splitlines()):
        return None
    return saved


def attachment_name(written: str) -> str:
    """A file's name as its attachment is named, and as the card shows it: one line, and no
    `=?` (the mail library decodes an encoded word in it when the part is built: a workspace
    file named `=?utf-8?q?invoice=0D=0AContent-Type:_text/html…?=.pdf` rewrote the part, R172)."""
    return (clean_text(written) or "attachment").replace("=?", "=_")


def _set_subject(message: EmailMessage, subject: str) -> None:
    """The subject, sent as the card shows it. A header assigned as text has its encoded words
    decoded (again): a mail's subject read as `=?utf-8?q?Deposit=0D=0AReply-To:_pay@evil?=`,
    answered, put a Reply-To header and the attacker's text into the owner's reply (R167). One
    that holds `=?` is written already encoded, so a reader decodes it once, to what was shown."""
    if "=?" not in subject:
        message["Subject"] = subject
        return
    encoded = Header(subject, "utf-8", header_name="Subject").encode(linesep="\r\n")
    message.set_raw("Subject", encoded)


def _message_ids(value: str) -> str:
    """Only the `<id@host>` tokens of a threading header: the rest of a mail's References is
    not repeated, and a token that holds an encoded word (decoded again when assigned: R167)
    or is longer than any mail program writes one is dropped."""
    found = re.findall(r"<[^<>\s]+>", value)
    return " ".join(t for t in found if "=?" not in t and len(t) <= _LONGEST_ID)


_LONGEST_ID = 200
"""Characters of a message id a reply repeats (mail programs write 40 to 100)."""
QUOTE_MAX = 20_000
"""Characters of the original a reply quotes; the card shows exactly what is sent."""
MAX_THREAD_IDS = 4
"""Message ids a reply's References keeps: the thread's first and its last three, as Usenet
trims them (RFC 5537 3.4.4), so the card shows them whole (R194: 120 ids filled it)."""


def _threading(original: ParsedMail) -> tuple[str, str]:
    """(In-Reply-To, References) of a reply, as they go out and as its card shows them (R194:
    the card showed the mail's raw headers, with words an encoded word wrote, while only the
    ids were sent). The mail's `references` are its thread as RFC 5322 3.6.4 takes it: its
    References, else its In-Reply-To when that names one message (`headers_into`, R264)."""
    own = _message_ids(original.message_id).split()[:1]
    earlier = [i for i in _message_ids(original.references).split() if i not in own]
    ids = [*dict.fromkeys(earlier), *own]
    if len(ids) > MAX_THREAD_IDS:
        ids = [ids[0], *ids[1 - MAX_THREAD_IDS :]]
    return " ".join(own), " ".join(ids)


def _reply_subject(subject: str) -> str:
    return subject if re.match(r"^\s*re\s*:", subject, re.I) else f"Re: {subject}".strip()


def build_reply(original: ParsedMail, body: str) -> tuple[str, str, str, str]:
    """(subject, body with the original quoted, In-Reply-To, References) of a reply. A message
    Steward could not read is not quoted: its note is Steward's words, not the sender's (R218:
    a reply sent `> [Steward did not open this message: …]` as what Ann wrote)."""
    who = original.sender or "you"
    when = original.date_text or "an earlier date"
    text = original.text
    if text.lstrip().startswith(UNREAD_NOTES):
        text = "(the original message could not be read)"
    cut = ""
    if len(text) > QUOTE_MAX:  # review 36: a 3.7 MB mail quoted whole held the loop 13 s a card
        cut = f"[… {len(text) - QUOTE_MAX:,} more characters of the message not quoted]\n"
        text = text[:QUOTE_MAX]
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    # the note of the cut is Steward's words, not the sender's: below the quote, unquoted (R218)
    text = f"{body.rstrip()}\n\nOn {when}, {who} wrote:\n{quoted}\n{cut}"
    in_reply_to, references = _threading(original)
    return _reply_subject(original.subject), text, in_reply_to, references
