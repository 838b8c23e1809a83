"""R218: a mail's display name of "The Boss <boss@corp.example>" and 180 spaces pushed the real
address past the notice's 200 characters: the owner read "New mail from "The Boss
<boss@corp.example>: “invoice approved”", sent by evil@attacker.example. The notice now names
the sender by a cut name, quoted where it looks like an address, then the whole address.

The real header parsing (`headers_into`) and the notice text."""

from __future__ import annotations

from email import message_from_bytes

from agent.mail.headers import headers_into
from agent.mail.message import ParsedMail
from agent.mail.rules import notice_text


def _parsed(raw: bytes) -> ParsedMail:
    mail = ParsedMail()
    headers_into(mail, message_from_bytes(raw))
    return mail


def test_a_long_display_name_cannot_hide_the_address() -> None:
    name = '"The Boss <boss@corp.example>' + " " * 180 + '"'
    mail = _parsed(
        f"From: {name} <evil@attacker.example>\r\nSubject: invoice approved\r\n\r\nok".encode()
    )
    first = notice_text(mail, stale=False, size=10).split("\n")[0]
    assert first.endswith("<evil@attacker.example>: “invoice approved”"), first
    assert first.startswith("📧 New mail from “The Boss <boss@corp.example>”"), first


def test_an_ordinary_sender_reads_as_before() -> None:
    mail = _parsed(b"From: The Boss <boss@corp.example>\r\nSubject: Budget\r\n\r\nPlease.")
    assert notice_text(mail, stale=False, size=10).startswith(
        "📧 New mail from The Boss <boss@corp.example>: “Budget”"
    )
    bare = _parsed(b"From: boss@corp.example\r\nSubject: Budget\r\n\r\nPlease.")
    assert notice_text(bare, stale=False, size=10).startswith(
        "📧 New mail from boss@corp.example: “Budget”"
    )


def test_a_lookalike_address_in_the_name_is_quoted_too() -> None:
    """R219: an address in full-width signs went unquoted, and curly quotes in the name closed
    the quote early."""
    for name in (
        "The Boss ＜boss＠corp.example＞",
        "x” <boss@corp.example> “",
        "The Boss ᐸbossⓐcorp.exampleᐳ",  # R220: look-alike signs
    ):
        mail = ParsedMail(  # as the headers decode (an encoded word's name, here)
            sender=f'"{name}" <eve@evil.example>', sender_address="eve@evil.example", subject="hi"
        )
        first = notice_text(mail, stale=False, size=10).split("\n")[0]
        shown = first.removeprefix("📧 New mail from ").removesuffix(": “hi”")
        assert shown.startswith("“") and shown.endswith("” <eve@evil.example>"), first
        assert shown[1 : -len("” <eve@evil.example>")].count("”") == 0, first
