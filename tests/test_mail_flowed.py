"""Plain text sent `format=flowed` (RFC 3676) reads as its sender wrote it (session 33 left
this open): Thunderbird and Apple Mail wrap paragraphs at ~72 columns and mark each break with
a trailing space; read as it came, every paragraph was cut mid-sentence."""

from __future__ import annotations

from agent.mail.message import parse_message


def _mail(body: str, params: str) -> bytes:
    head = (
        "From: Ann <ann@example.org>\r\nTo: me@example.org\r\nSubject: Plans\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8; {params}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return (head + body.replace("\n", "\r\n")).encode()


BODY = (
    "Hi, the roofer can come on Thursday morning if the scaffolding is up by \n"
    "then; otherwise the week after.\n"
    "\n"
    "> Could you ask him about the gutter on the north side as \n"
    "> well?\n"
    ">> And the chimney \n"
    ">> flashing.\n"
    " From the yard it looks fine.\n"
    "-- \n"
    "Ann\n"
)


def test_a_flowed_mail_reads_as_whole_paragraphs_quotes_and_signature_kept() -> None:
    text = parse_message(_mail(BODY, "format=flowed")).text
    assert (
        "Hi, the roofer can come on Thursday morning if the scaffolding is up by then; "
        "otherwise the week after." in text
    )
    assert "> Could you ask him about the gutter on the north side as well?" in text
    assert ">> And the chimney flashing." in text
    assert "\nFrom the yard it looks fine." in text  # space-stuffing undone
    assert "-- \nAnn" in text  # the signature separator is not a soft break
    signed = parse_message(_mail("Thanks, \n-- \nAnn\n", "format=flowed")).text
    assert signed.startswith("Thanks, \n-- \nAnn") or signed.startswith("Thanks,\n-- \nAnn")


def test_delsp_drops_the_marking_space_and_unflowed_mail_is_left_as_it_came() -> None:
    wrapped = "Grüße aus der Werkstatt, das Teil ist da und kann ab Mon \ntag abgeholt werden.\n"
    joined = parse_message(_mail(wrapped, 'format=flowed; delsp="yes"')).text
    assert "ab Montag abgeholt werden." in joined
    fixed = parse_message(_mail(BODY, "format=fixed")).text
    assert "up by \nthen;" in fixed or "up by\nthen;" in fixed  # no format=flowed: not joined
