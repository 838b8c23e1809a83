"""Hostile mail: one crafted message must not stop the watcher, mail_search or the briefing,
nor tie up a core.

Python 3.11's header parser raises IndexError, AttributeError, TypeError or RecursionError on
some headers (`Message-ID: <`, `To: :"`, 2,000 brackets); the watcher then retried the same
message for ever and the briefing answered "No briefing: IndexError". Its cost also grows with
a header's length (a 550 KB To: took 16 s on the event loop) and with a message's parts (10,000
tiny parts in 0.44 MB took 8 s).
"""

from __future__ import annotations

import email
import email.headerregistry
from pathlib import Path
from typing import Any

import pytest
from mailservers import (
    Dovecot,
    SmtpRecorder,
    mail_settings,
    plain_mail,
)
from trust_world import instruction, trust_world

from agent.mail.imap import SearchQuery
from agent.mail.message import parse_headers, parse_message, parse_recipients
from agent.mail.watch import MailWatcher
from agent.scheduler import SchedulerService

BOSS = "The Boss <boss@corp.example>"

HOSTILE = [
    (b'To: :"', "to", ':"'),
    (b"Message-ID: <", "message_id", "<"),
    (b'Cc: "', "cc", '"'),
    (b"Reply-To: \x00<", "reply_to", "<"),  # the NUL is dropped
    (b"To: =?utf-8?b?<", "to", "=?utf-8?b?<"),
    (b"To: " + b"(" * 2000 + b"a@b.org", "to", "(" * 2000 + "a@b.org"),  # RecursionError
]


def _with(header: bytes, body: bytes = b"body\r\n") -> bytes:
    return b"From: Ann <ann@b.org>\r\n" + header + b"\r\nSubject: s\r\n\r\n" + body


@pytest.mark.parametrize("header,field,value", HOSTILE, ids=lambda x: repr(x)[:24])
def test_a_hostile_header_is_read_as_written(header: bytes, field: str, value: str) -> None:
    for mail in (parse_headers(_with(header)), parse_message(_with(header))):
        assert getattr(mail, field) == value
        assert mail.sender == "Ann <ann@b.org>" and mail.sender_address == "ann@b.org"
        assert mail.subject == "s"
    assert parse_message(_with(header)).text == "body"


def test_a_hostile_from_is_shown_but_gives_no_address() -> None:
    mail = parse_headers(b'From: :"\r\nSubject: hello\r\n\r\n')
    assert (mail.sender, mail.sender_address, mail.subject) == (':"', "", "hello")


def test_addresses_past_the_parser_are_refused_as_addresses() -> None:
    """A reply to a From of 2,000 brackets raised RecursionError out of parse_recipients,
    where a ValueError says it cannot be answered."""
    with pytest.raises(ValueError, match="cannot be read"):
        parse_recipients("(" * 3000 + "a@b.org")


@pytest.fixture
def parsed_headers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(name, length) of every header value the modern parser is given."""
    seen: list[tuple[str, int]] = []
    real = email.headerregistry.HeaderRegistry.__call__

    def spy(self: Any, name: str, value: str) -> Any:
        seen.append((name.lower(), len(value)))
        return real(self, name, value)

    monkeypatch.setattr(email.headerregistry.HeaderRegistry, "__call__", spy)
    return seen


def test_a_long_address_header_is_not_given_to_the_parser(
    parsed_headers: list[tuple[str, int]],
) -> None:
    """The parser's cost grows with an address header's length (550 KB: 16 s): a long one is
    read as written, its start kept."""
    value = b"x" + b" x" * 60_000 + b" <a@b.org>"
    mail = parse_headers(_with(b"To: " + value))
    assert mail.to.startswith("x x x") and len(mail.to) <= 65_536
    assert mail.subject == "s" and mail.sender_address == "ann@b.org"
    assert max((n for name, n in parsed_headers if name == "to"), default=0) <= 8_192


def test_a_long_content_type_is_cut_before_parsing(parsed_headers: list[tuple[str, int]]) -> None:
    """The parser reads Content-Type while it parses (a 190 KB one took 9 s)."""
    params = b"; ".join(b"a%d=b" % i for i in range(20_000))
    raw = _with(b"Content-Type: text/plain; " + params)
    mail = parse_message(raw)
    assert mail.subject == "s" and mail.text == "body"
    assert max((n for k, n in parsed_headers if k == "content-type"), default=0) <= 8_192


def _many_parts(count: int) -> bytes:
    head = (
        b"From: Mallory <m@scam.example>\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    part = b"--b\r\nContent-Type: text/plain; name=a\r\n\r\nx\r\n"
    return head + part * count + b"--b--\r\n"


@pytest.fixture
def parsed_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of what went to the standard parser (email.message_from_bytes), in order."""
    given: list[int] = []
    real = email.message_from_bytes

    def spy(data: bytes, *args: Any, **kwargs: Any) -> Any:
        given.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(email, "message_from_bytes", spy)
    return given


def test_a_mail_of_many_tiny_parts_is_not_opened(parsed_sizes: list[int]) -> None:
    """10,000 parts in 0.44 MB took the parser 8 s: counted first, shown by the headers."""
    raw = _many_parts(10_000)
    given = parsed_sizes
    mail = parse_message(raw)
    assert "too many parts (10000); not opened" in mail.text
    assert mail.text.startswith("[Steward did not open this message")
    assert (mail.sender_address, mail.subject, mail.attachments) == ("m@scam.example", "parts", [])
    assert given and max(given) < 1_000  # only the header block was parsed
    # a message of a few parts reads as before
    few = parse_message(_many_parts(3))
    assert few.text == "x" and len(few.attachments) == 2  # the first is the text


def test_parts_with_long_headers_are_not_opened() -> None:
    """Fewer parts, each with a long Content-Type: as costly to parse."""
    head = (
        b"From: m@scam.example\r\nSubject: fat\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    )
    params = b"; ".join(b"a%d=b" % i for i in range(1_500))
    part = b"--b\r\nContent-Type: text/plain; " + params + b"\r\n\r\nx\r\n"
    mail = parse_message(head + part * 20 + b"--b--\r\n")
    assert mail.subject == "fat" and "headers are too long" in mail.text


# ------------------------------------------------------------------------ against Dovecot


STRANGER = (
    b'From: :"\r\nTo: :"\r\nCc: "\r\nSubject: hello\r\nMessage-ID: <x@y.example>\r\n\r\nhi\r\n'
)
BOSS_HOSTILE = (
    b"From: The Boss <boss@corp.example>\r\nTo: =?utf-8?b?<\r\nSubject: invoice\r\n"
    b"Message-ID: <\r\nReferences: <\r\n\r\nPay it today.\r\n"
)


async def test_the_watcher_keeps_telling_of_later_mail_after_a_hostile_one(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    settings = mail_settings(dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=False))
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say("/mail watch from boss@corp.example")
        watcher = w.h.steward.mail
        assert isinstance(watcher, MailWatcher)
        assert await watcher.check_once() == 0
        dovecot.deliver(STRANGER)
        dovecot.deliver(BOSS_HOSTILE)
        dovecot.deliver(plain_mail(BOSS, "Budget", "Please send the budget."))
        dovecot.deliver(_many_parts(10_000))
        assert await watcher.check_once() == 2  # raised IndexError, every time
        assert await watcher.check_once() == 0
        mark = await w.h.steward.stores.mail.folder("INBOX")
        assert mark is not None and mark.last_uid == 4  # past all of them
        owner = await w.h.steward.stores.people.owner()
        assert owner is not None
        texts = [n.text for n in await w.h.steward.stores.mail.notices(owner.id)]
        assert sorted(texts) == [
            "📧 New mail from The Boss <boss@corp.example>: “Budget”\n> Please send the budget.",
            "📧 New mail from The Boss <boss@corp.example>: “invoice”\n> Pay it today.",
        ]
        # mail_search lists them all, each by what it says
        found = await watcher.service.search("INBOX", SearchQuery(), 20)
        assert [(h.uid, h.mail.subject) for h in found] == [
            (4, "parts"),
            (3, "Budget"),
            (2, "invoice"),
            (1, "hello"),
        ]
        assert found[3].mail.to == ':"' and found[2].mail.message_id == "<"
        # and mail_read of the 10,000 parts answers by its headers
        read = await watcher.service.read("INBOX", 4)
        assert "too many parts (10000); not opened" in read.mail.text


async def test_the_briefing_comes_whole_with_a_hostile_mail_in_the_folder(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    settings = mail_settings(dovecot, smtp_server)
    async with trust_world(tmp_path, **settings) as w:
        assert "unread mail" in await w.h.say("/briefing mail on")
        dovecot.deliver(plain_mail(BOSS, "Board meeting", "Slides by Friday."))
        dovecot.deliver(BOSS_HOSTILE)
        dovecot.deliver(STRANGER)
        owner = await w.h.steward.stores.people.owner()
        assert owner is not None
        scheduler = w.h.steward.scheduler
        assert isinstance(scheduler, SchedulerService)
        draft = await scheduler.draft_briefing(owner)  # raised IndexError
        prompt = draft.prompt
        assert "Unread mail since the last briefing (3 message(s)" in prompt
        assert "Subject: Board meeting" in prompt and "Slides by Friday." in prompt
        assert "Subject: invoice" in prompt and "Pay it today." in prompt
        assert "Subject: hello" in prompt
        assert "Goal next steps:" in prompt and "Reminders today:" in prompt
        assert "No briefing" not in await w.h.say("/briefing now")
        turns = [t for t in await w.h.turns() if t.kind == "briefing"]
        assert [t.status for t in turns] == ["completed"]


def _comments(lines: int) -> bytes:
    """A Content-Type folded over lines of comments (each under 901 bytes, as servers pass)."""
    return b"text/plain;" + b"".join(b"\r\n " + b"(c)" * 300 for _ in range(lines))


def test_parts_opened_with_bare_carriage_returns_are_counted_too(
    parsed_sizes: list[int],
) -> None:
    """Review 66: the parser breaks lines at a lone CR; the count did not, so parts written
    with bare CRs were invisible to it, and each cost the parser ~1.3 s."""

    part = b"\r--B\rContent-Type: " + _comments(20) + b"\r\n\r\nhello"
    raw = (
        b"From: a@b.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        + part * 4
        + b"\r\n--B--\r\n"
    )
    mail = parse_message(raw)
    assert "headers are too long" in mail.text
    assert all(size < 1000 for size in parsed_sizes), "the whole message went to the parser"


def test_one_long_folded_part_header_is_not_parsed() -> None:
    raw = (
        b"From: a@b.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: " + _comments(60) + b"\r\n\r\nhello\r\n--B--\r\n"
    )
    assert "headers are too long" in parse_message(raw).text


def test_a_plain_text_mail_of_header_like_lines_is_read() -> None:
    """Review 66: every body line starting "Content-" was counted as a part's header, so an
    HTTP trace pasted into a plain mail was not opened."""
    body = b"Here is the HTTP trace:\r\n" + b"Content-Type: application/json\r\n" * 3000
    raw = b"From: Ann <ann@b.org>\r\nSubject: trace\r\nContent-Type: text/plain\r\n\r\n" + body
    assert parse_message(raw).text.startswith("Here is the HTTP trace")


def test_forwarded_messages_headers_count_in_the_budget() -> None:
    """Review 67: the parser reads a forwarded message's From, To, Subject, References as it
    reads a part's Content-* headers; 20 forwards of ~215 KB of headers each took 18.9 s."""
    addresses = b"a@b, " * 1600
    inner = (
        b"From: "
        + addresses
        + b"\r\nTo: "
        + addresses
        + b"\r\nSubject: "
        + b"=?utf-8?q?a?= " * 4600
        + b"\r\nReferences: "
        + b"<a@b> " * 10000
        + b"\r\n\r\nbody"
    )
    part = b"--BB\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n"
    raw = (
        b"From: a@example.com\r\nSubject: t\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n' + part * 20 + b"--BB--\r\n"
    )
    assert "headers are too long" in parse_message(raw).text
    # an ordinary forward is read, its sender and subject under its own headers
    normal = (
        b"From: a@example.com\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n--BB\r\n'
        b"Content-Type: text/plain\r\n\r\nsee below\r\n--BB\r\n"
        b"Content-Type: message/rfc822\r\n\r\nFrom: Bob <bob@c.org>\r\n"
        b"Subject: the plan\r\n\r\nthe plan is this\r\n--BB--\r\n"
    )
    text = parse_message(normal).text
    assert "see below" in text and "the plan is this" in text and "bob@c.org" in text


def _charset_mail(charset: str, body: bytes, uid_hint: str) -> bytes:
    return (
        b"From: Stranger <x@stranger.example>\r\nTo: me@example.org\r\nSubject: hello "
        + uid_hint.encode()
        + b"\r\nMessage-ID: <"
        + uid_hint.encode()
        + b"@stranger.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset="
        + charset.encode()
        + b"\r\n\r\n"
        + body
        + b"\r\n"
    )


LONE_SURROGATE = _charset_mail("utf-7", b"Please read +2AA- this.", "s1")


@pytest.mark.parametrize(
    ("charset", "body", "read_as"),
    [
        ("punycode", b"-bb0d" + b"a" * 50, "-bb0d" + "a" * 50),  # as the bytes say, not decoded
        ("unicode_escape", b"\\ud800 hi \\u202e", "\\ud800 hi \\u202e"),
        ("rot13", b"uryyb", "uryyb"),
        ("utf-7", b"Please read +2AA- this.", "Please read \ufffd this."),
        ("koi8-r", "Привет".encode("koi8-r"), "Привет"),
        ("iso-2022-jp", "日本語".encode("iso2022_jp"), "日本語"),
    ],
)
def test_only_mail_charsets_decode_a_body(charset: str, body: bytes, read_as: str) -> None:
    """A sender names the codec: Python's punycode took 140 s for 2 MB (review 118), and
    `unicode_escape` or UTF-7 made lone surrogates that failed the turn."""
    mail = parse_message(_charset_mail(charset, body, "c1"))
    assert mail.text == read_as
    mail.text.encode("utf-8")


async def test_a_mail_that_decodes_to_a_lone_surrogate_is_read_and_briefed(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """A 200-byte UTF-7 mail failed every turn that read it and every briefing while it was
    unread (review 118): the text could not be encoded for the model's request."""
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        assert "unread mail" in await w.h.say("/briefing mail on")
        dovecot.deliver(plain_mail(BOSS, "Board meeting", "Slides by Friday."))
        dovecot.deliver(LONE_SURROGATE)
        reply = await w.h.say(instruction("mail_read", {"uid": 2}))
        assert "went wrong" not in reply
        assert "Please read \ufffd this." in str(w.model.requests[-1].body)
        assert "No briefing" not in await w.h.say("/briefing now")
        turns = await w.h.turns()
        assert [t.status for t in turns] == ["completed", "completed"], turns


@pytest.mark.parametrize(
    "given",
    ['"ceo[@corp.example', "ceo[@corp.example", '"|$/[@evil.example', "a]b@corp.example"],
)
def test_an_address_the_smtp_library_would_send_elsewhere_is_refused(given: str) -> None:
    """R150: `ceo[@corp.example` was accepted and shown on the card so, and aiosmtplib sent
    it to `ceo` (which a Postfix completes with its own domain): an address is accepted only
    when what is shown is what is sent."""
    with pytest.raises(ValueError, match="not an e-mail address"):
        parse_recipients(given)


@pytest.mark.parametrize(
    "given",
    [
        "=?utf-8?q?boss=40corp.example?=@attacker.example",
        "=?utf-8?q?x=0D=0AReply-To=3A_pay=40evil.example?=@attacker.example",
    ],
)
def test_an_address_holding_an_encoded_word_is_refused(given: str) -> None:
    """R172: accepted, it was decoded when the message was built: the To line sent read
    `boss@corp.example@attacker.example`, or the approved send failed."""
    with pytest.raises(ValueError, match="encoded word"):
        parse_recipients(given)


def test_an_attachments_name_cannot_write_into_its_part() -> None:
    """R172: a workspace file named as an encoded word was decoded again when the part was
    built: its Content-Disposition broke into headers and HTML of the attacker's."""
    import email
    import email.policy

    from agent.mail.message import Recipients, attachment_name, build_message

    name = "=?utf-8?q?invoice=0D=0AContent-Type:_text/html=0D=0A=0D=0A<h1>PAY</h1>?=.pdf"
    built = build_message(
        sender="me@example.org",
        recipients=Recipients(("ann@example.org",)),
        subject="Invoice",
        body="Attached.",
        attachments=[(name, b"%PDF-1.4")],
    )
    parsed = email.message_from_bytes(built.as_bytes(), policy=email.policy.default)
    [part] = list(parsed.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    assert part.get_filename() == attachment_name(name)  # as the card shows it
    assert "\n" not in part.get_filename()


@pytest.mark.parametrize(
    "given", ["boss\uff20corp.example@attacker.example", "a\ufe6bb.example@c.example"]
)
def test_an_address_with_a_look_alike_at_sign_is_refused(given: str) -> None:
    """R167: `boss\\uff20corp.example@attacker.example` was accepted, with no warning."""
    with pytest.raises(ValueError, match="look-alike of @"):
        parse_recipients(given)


@pytest.mark.parametrize(
    "given",
    [
        "ann@example.org",
        "ann.lee+tag@mail.example.co",
        "o'brien@x.example",
        "taro..yamada@docomo.ne.jp",  # R151: old carrier addresses, refused by a dot-atom rule
        "hanako.@ezweb.ne.jp",
        "jörg@example.de",
    ],
)
def test_an_address_accepted_is_sent_as_it_is_shown(given: str) -> None:
    from aiosmtplib.email import parse_address

    (address,) = parse_recipients(given)
    assert address == given == parse_address(address)


def test_a_search_word_carries_none_of_imaps_own_syntax() -> None:
    """R150: on an imap:// account imapclient sent a word without a space unquoted: `{5}`
    opened a literal the server waited 30 s for, `a)` was a syntax error."""
    from agent.mail.imap import SearchQuery

    query = SearchQuery(sender="x{5}", subject="{5} a)", words='launch (b) "c" d\\e] f*')
    criteria = query.criteria()
    terms = [c for c in criteria if c not in ("FROM", "SUBJECT", "TEXT")]
    assert not [t for t in terms if set(str(t)) & set('(){}%*"\\]')], criteria
    assert criteria[:2] == ["FROM", "x 5"] and "launch" in terms and "a" in terms


def test_a_search_field_of_imap_syntax_alone_is_named_not_dropped() -> None:
    """R151: cleaned of IMAP's syntax, `words="*"` left no criterion, and the search listed
    every message of the folder as a match."""
    from agent.mail.imap import SearchQuery

    assert SearchQuery(words="*").unsearchable() == ["words"]
    assert SearchQuery(sender="()", subject="(%)").unsearchable() == ["sender", "subject"]
    assert SearchQuery(words="launch *").unsearchable() == []
    assert SearchQuery(sender="()").criteria() == ["ALL"]  # why it is refused before
