"""R218: mail in other languages read as mail clients read it. Charset labels that name a
narrower codec than the sender wrote in (`gb2312` holding GBK, `shift_jis` holding CP932) or one
Python does not know (`iso-8859-8-i`, `windows-874`) garbled names, subjects and bodies, and a
reply quoted the garbling; a broken RFC 2231 file name hid the whole message, and the reply
quoted Steward's note as the sender's words (real Dovecot and aiosmtpd)."""

from __future__ import annotations

import base64
import email
import email.policy
import json
from pathlib import Path

import pytest
from mailservers import USER, Dovecot, SmtpRecorder, mail_settings
from trust_world import instruction, trust_world

from agent.mail.message import build_reply, parse_message


def _word(text: str, label: str, codec: str) -> str:
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def _mail(sender: str, subject: str, body: bytes, charset: str, mid: str) -> bytes:
    head = (
        f"From: {sender}\r\nTo: {USER}\r\nSubject: {subject}\r\nMessage-ID: <{mid}@x.example>\r\n"
        "Date: Thu, 03 Dec 2026 09:15:00 +0000\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode() + body + b"\r\n"


CASES = [  # (label, the codec the sender's program wrote in, name, subject, body)
    ("gb2312", "gbk", "朱镕基", "会议 朱镕基", "会议 朱镕基 明天"),
    ("shift_jis", "cp932", "髙橋 ㈱山田商事", "見積書 ①", "髙橋です。①見積書を送ります。"),
    ("ks_c_5601-1987", "cp949", "똠방각하", "회의 똠", "똠방각하 내일"),
    ("big5", "big5hkscs", "峯", "會議 峯", "明天 峯"),
    ("iso-8859-8-i", "iso8859-8", "דוד כהן", "פגישה מחר", "פגישה מחר בשעה עשר"),
    ("windows-874", "cp874", "สมชาย", "invoice สวัสดี", "สวัสดีครับ"),
    ("x-mac-cyrillic", "mac-cyrillic", "Иван", "Счёт", "Добрый день"),
    ("windows-31j", "cp932", "髙橋", "①", "㈱"),
]


@pytest.mark.parametrize(("label", "codec", "name", "subject", "body"), CASES)
def test_labels_read_as_clients_read_them(
    label: str, codec: str, name: str, subject: str, body: str
) -> None:
    """Name, subject and body were U+FFFD or mojibake (朱�F基, `����� ���`)."""
    raw = _mail(
        f"{_word(name, label, codec)} <a@x.example>",
        _word(subject, label, codec),
        body.encode(codec),
        label,
        "c",
    )
    mail = parse_message(raw)
    assert (mail.sender, mail.subject, mail.text) == (f"{name} <a@x.example>", subject, body)


def test_iso2022jp_with_windows_characters() -> None:
    """Outlook writes ① and ㈱ (NEC's row 13) in ISO-2022-JP; Python's codecs do not know them."""
    jis = b"\x1b$B-!-j\x1b(B \x1b$B2q5D\x1b(B"  # ①㈱ 会議
    raw = _mail(
        "Taro <t@x.example>",
        f"=?iso-2022-jp?B?{base64.b64encode(jis).decode()}?=",
        jis,
        "iso-2022-jp",
        "j",
    )
    mail = parse_message(raw)
    assert (mail.subject, mail.text) == ("①㈱ 会議", "①㈱ 会議")


BROKEN_NAME = (
    f"From: Ann <ann@x.example>\r\nTo: {USER}\r\nSubject: Contract\r\n"
    "Message-ID: <c1@x.example>\r\nDate: Thu, 03 Dec 2026 09:15:00 +0000\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "Please sign the attached contract by Friday.\r\n"
    "--B\r\nContent-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename*=iso-2022-jp''%1B%24B%30.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n"
).encode()


@pytest.mark.parametrize("value", ["iso-2022-jp''%1B%24B%30.pdf", "utf-16''%00%D8.pdf"])
def test_broken_rfc2231_name_does_not_hide_the_message(value: str) -> None:
    raw = BROKEN_NAME.replace(b"iso-2022-jp''%1B%24B%30.pdf", value.encode())
    mail = parse_message(raw)
    assert mail.text == "Please sign the attached contract by Friday."
    assert [a.content_type for a in mail.attachments] == ["application/pdf"]


def _sent(smtp_server: SmtpRecorder) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(m.data, policy=email.policy.default) for m in smtp_server.messages
    ]


async def test_watch_read_and_reply_in_hebrew_and_japanese(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """`/mail watch subject פגישה` never fired; the model read `����� ���`; the reply went out
    as `Subject: Re: 見積書 �@` quoting `> �煖ｴです。`."""
    settings = mail_settings(dovecot, smtp_server, EMAIL_IMAP_URL=dovecot.imap_url(tls=False))
    async with trust_world(tmp_path, **settings) as w:
        await w.h.say("/mail watch subject פגישה")
        watcher = w.h.steward.mail
        await watcher.check_once()
        for i, (label, codec, name, subject, body) in enumerate(CASES[4:5] + CASES[1:2]):
            dovecot.deliver(
                _mail(
                    f"{_word(name, label, codec)} <a{i}@x.example>",
                    _word(subject, label, codec),
                    body.encode(codec),
                    label,
                    f"m{i}",
                )
            )
        await watcher.check_once()
        await w.h.steward.scheduler.run_due()
        notices = [t for t in w.h.channel.texts("c1") if t.startswith("📧")]
        assert len(notices) == 1 and "פגישה מחר" in notices[0]
        await w.h.say(instruction("mail_read", {"uid": 2}))
        told = json.dumps([r.messages for r in w.model.requests], ensure_ascii=False)
        assert "髙橋です。①見積書を送ります。" in told and "見積書 ①" in told
        await w.h.say(instruction("mail_reply", {"uid": 2, "body": "ありがとうございます。"}))
        _, card = w.h.channel.approvals[-1]
        await w.h.say(f"/approve {card.approval_id}")
        (sent,) = _sent(smtp_server)
        assert sent["Subject"] == "Re: 見積書 ①"
        assert "> 髙橋です。①見積書を送ります。" in sent.get_body(("plain",)).get_content()


async def test_reply_to_unreadable_part_quotes_the_text_not_a_note(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    """The approved reply went to Ann with `> [Steward did not open this message: …]` as her
    words; the message is read now, and Steward's note is never quoted."""
    dovecot.deliver(BROKEN_NAME)
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Signed, see attached."}))
        _, card = w.h.channel.approvals[-1]
        await w.h.say(f"/approve {card.approval_id}")
        (sent,) = _sent(smtp_server)
        text = sent.get_body(("plain",)).get_content()
        assert "> Please sign the attached contract by Friday." in text
        assert "Steward did not open" not in text


def test_reply_never_quotes_stewards_note() -> None:
    """A message of too many parts is shown by its headers with Steward's note: a reply says the
    message could not be read, not that the sender wrote the note."""
    parts = b"".join(b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n" for _ in range(600))
    raw = (
        b"From: Ann <ann@x.example>\r\nSubject: Many\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts + b"--B--\r\n"
    )
    mail = parse_message(raw)
    assert mail.text.startswith("[Steward did not open this message")
    _, body, _, _ = build_reply(mail, "Noted.")
    assert "Steward did not open" not in body
    assert body.endswith("wrote:\n> (the original message could not be read)\n")


def test_a_label_never_reaches_a_codec_that_is_no_charset() -> None:
    """R219: the label search is the whole process's: `x-bz2` gave bz2, so a 785-byte feed
    served as `charset=x-bz2` took 2 GB once the mail modules were loaded, and `x-zlib` made a
    page unreadable."""
    import bz2

    import pytest

    import agent.mail.charsets  # noqa: F401  (registers the search)
    from agent.public_web import text_codec

    bomb = bz2.compress(b"\0" * 10_000_000)
    for label in ("x-bz2", "x-zlib", "x-base64", "x-hex", "x-uu", "x-unicode_escape", "x-rot13"):
        with pytest.raises(LookupError):
            bomb.decode(label)
        assert text_codec(label) is None, label
    assert b"\xe0\xf9".decode("iso-8859-8-i") == "אש"  # what the search is for still holds


def test_the_iso2022_jp_reading_also_reads_piece_by_piece() -> None:
    """R220: taught to the whole process, "cp50221" had no decoder for pieces, so once mail was
    set up an MCP server's SSE answer labelled with it was lost (httpx reads lines in pieces)."""
    import codecs
    import io

    import agent.mail.charsets  # noqa: F401  (registers the search)

    pieces = codecs.getincrementaldecoder("cp50220")()
    assert pieces.decode(b'{"ok": ', False) + pieces.decode(b"true}", True) == '{"ok": true}'
    assert io.TextIOWrapper(io.BytesIO(b"line\n"), encoding="cp50221").read() == "line\n"
    assert b"\x1b$B\x2d\x21\x1b(B".decode("cp50221") == "①"  # whole, as Windows reads it
