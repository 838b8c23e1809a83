"""Review 200: an address's letters are judged by their Unicode script. By the first word of
each letter's name, the iteration mark in 佐々木 (Sasaki) was "Ideographic", the prolonged sound
mark in ラーメン "Katakana-Hiragana" and the Hawaiian okina "Modifier": ordinary addresses were
refused as look-alikes, and a mail from one was not answered. A Latin address with one Cyrillic
or Greek letter is still refused, both ways.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mailservers import USER, Dovecot, SmtpRecorder, mail_settings, plain_mail
from trust_world import World, instruction, trust_world

from agent.mail.message import LookAlikeAddress, parse_recipients

SASAKI = "佐々木@example.jp"  # U+3005, the ideographic iteration mark
RAMEN = "ラーメン@example.jp"  # U+30FC, the prolonged sound mark
OKINA = "\u02bbimi@example.org"  # Hawaiian, the okina: a modifier letter
KEPT = (
    SASAKI,
    RAMEN,
    OKINA,
    "すゞき@example.jp",  # U+309E, the hiragana voiced iteration mark
    "〆張鶴@example.jp",  # U+3006, of no one script: Han, Hiragana and Katakana
    "ﾗｰﾒﾝ@example.jp",  # half-width katakana, its prolonged sound mark too
    "maria.\u00aa@example.org",  # the ordinal indicator is a Latin letter
    "sato.ゆうこ@example.jp",
    "김민준@example.kr",
    "иван@example.ru",
    "jörg@example.de",
)
CYRILLIC_O = "b\u043ess@corp.example"
GREEK_O = "b\u03bfss@corp.example"
REFUSED = {
    CYRILLIC_O: "Cyrillic and Latin",
    GREEK_O: "Greek and Latin",
    "bo\u1d78ss@corp.example": "Cyrillic and Latin",  # a Cyrillic modifier letter counts
    "\uff42oss@corp.example": "Full-width Latin and Latin",
    "\U0001d41boss@corp.example": "Latin and Mathematical",
    "\u4f50\u0430@example.jp": "Cyrillic and Han",
    # R203: Latin by script, but "K" and "Å" by another code point
    "\u212aate@corp.example": "Kelvin and Latin",
    "\u212bsa@corp.example": "Angstrom and Latin",
}


def test_ordinary_addresses_are_kept_and_look_alikes_refused() -> None:
    for address in KEPT:
        assert parse_recipients(f"Someone <{address}>") == (address,)
    for address, scripts in REFUSED.items():
        with pytest.raises(LookAlikeAddress, match=f"mixes {scripts} letters before its @"):
            parse_recipients(address)


def _told(w: World) -> str:
    return json.dumps([r.messages for r in w.model.requests], ensure_ascii=False)


async def test_a_japanese_sender_is_answered_and_written_to(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    dovecot.deliver(plain_mail(f"Sasaki <{SASAKI}>", "Meeting", "Can we meet on Friday?"))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Friday works."}))
        for address in (RAMEN, OKINA):
            order = {"to": address, "subject": "order", "body": "Two bowls, please."}
            await w.h.say(instruction("mail_send", order))
        prompts = [p for _, p in w.h.channel.approvals]
        told = _told(w)
        assert [p.tool for p in prompts] == ["mail_reply", "mail_send", "mail_send"], told
        for prompt in prompts:
            await w.h.say(f"/approve {prompt.approval_id}")
    assert f"To: {SASAKI}" in prompts[0].preview
    assert f"To: {RAMEN}" in prompts[1].preview and f"To: {OKINA}" in prompts[2].preview
    assert "is not answered here" not in told and "mixes" not in told
    assert [m.recipients for m in smtp_server.messages] == [[SASAKI], [RAMEN], [OKINA]]


async def test_a_look_alike_is_neither_answered_nor_written_to(
    tmp_path: Path, dovecot: Dovecot, smtp_server: SmtpRecorder
) -> None:
    dovecot.deliver(plain_mail(f"Boss <{GREEK_O}>", "Wire", "Send me the details."))
    async with trust_world(tmp_path, **mail_settings(dovecot, smtp_server)) as w:
        await w.h.say(instruction("mail_reply", {"uid": 1, "body": "Here they are."}))
        order = {"to": f"{CYRILLIC_O}, {USER}", "subject": "Wire", "body": "The details."}
        await w.h.say(instruction("mail_send", order))
        assert [p.tool for _, p in w.h.channel.approvals] == []
        told = _told(w)
    assert "message 1 is not answered here" in told
    assert "mixes Cyrillic and Latin letters before its @" in told
    assert smtp_server.messages == []
