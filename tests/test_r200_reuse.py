"""Review 200: a reply to a message reuses the text copy kept of its file (a recording's
transcript, a document's text) only while it is whole, or in a reply of the person whose daily
files quota cut it. The owner's reply to a guest's recording had got the transcript the guest's
quota cut to about 10 kB, with no word of the cut, where it had been transcribed in full before.
"""

from __future__ import annotations

from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from fakes.stt import FakeSTT
from fakes.telegram import FakeTelegram
from harness import until
from test_media_in import FRIEND_TG, OWNER_TG, telegram_steward

GROUP = -1009988776655
DECISION = "FINAL DECISION: the contract with Acme is cancelled."
WORDS = " ".join(f"minute {i}: the budget line {i} moves to next quarter." for i in range(600))


def _said(tg: FakeTelegram, user: int, text: str, reply_to: int) -> None:
    tg.push_message(
        f"@{tg.bot_username} {text}",
        user_id=user,
        first_name="Bo",
        chat_id=GROUP,
        chat_type="supergroup",
        reply_to_message_id=reply_to,
    )


def _first(tg: FakeTelegram, kind: str) -> int:
    return next(m for (c, m), v in tg.messages.items() if c == GROUP and kind in v)


async def test_the_owners_reply_to_a_guests_recording_hears_it_all_again(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda request: Reply.text("ok"))
    audio = b"OggS" + b"\x00" * 200_000
    async with FakeSTT() as stt:
        stt.say(audio, f"{WORDS} {DECISION}")
        async with (
            FakeTelegram() as tg,
            telegram_steward(
                tmp_path,
                fake_model,
                tg,
                STEWARD_STT_URL=stt.base_url,
                STEWARD_GUEST_DAILY_FILE_BYTES="210000",  # the recording, ~10 kB of its text
            ),
        ):
            doc = tg.add_file(audio) | {"file_name": "meeting.ogg", "mime_type": "audio/ogg"}
            tg.push_message(
                "",
                user_id=FRIEND_TG,
                first_name="Bo",
                chat_id=GROUP,
                chat_type="supergroup",
                extra={"audio": doc, "caption": f"@{tg.bot_username} here is the call"},
            )
            await until(lambda: len(fake_model.requests) >= 1, "the guest's turn", 30)
            first = _first(tg, "audio")
            _said(tg, FRIEND_TG, "and what came next?", first)
            await until(lambda: len(fake_model.requests) >= 2, "the guest's reply", 30)
            heard_for_the_guest = len(stt.requests)
            _said(tg, OWNER_TG, "what was the final decision in this call?", first)
            await until(lambda: len(fake_model.requests) >= 3, "the owner's turn", 30)
            heard = len(stt.requests)
    guest, again, owner = (r.last_user_text for r in fake_model.requests)
    assert DECISION in guest and DECISION not in again  # the reply had the cut copy
    assert heard_for_the_guest == 1  # the guest's own cut copy, reused
    assert heard == 2 and DECISION in owner  # the owner's reply: transcribed again, all of it
    inbox = tmp_path / "workspace" / "inbox"
    assert len((inbox / "meeting.ogg.txt").read_bytes()) <= 10_000  # the guest's, as it was
    (whole,) = list(inbox.glob("text-*.txt"))
    assert DECISION in whole.read_text()
    assert f"(its transcript is in inbox/{whole.name})" in owner
    assert "its transcript is in inbox/meeting.ogg.txt, cut short" in again
    assert "its transcript is in inbox/meeting.ogg.txt" not in owner


async def test_the_owners_reply_to_a_guests_document_gets_a_whole_text_copy(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.on_request(lambda request: Reply.text("ok"))
    html = (
        "<html><body>" + "".join(f"<p>{line}.</p>" for line in WORDS.split(". ")) + f"<p>{DECISION}"
        "</p></body></html>"
    ).encode()
    async with (
        FakeTelegram() as tg,
        telegram_steward(
            tmp_path,
            fake_model,
            tg,
            STEWARD_GUEST_DAILY_FILE_BYTES=str(len(html) + 5_000),  # 5 kB of its text
        ),
    ):
        doc = tg.add_file(html) | {"file_name": "minutes.html", "mime_type": "text/html"}
        tg.push_message(
            "",
            user_id=FRIEND_TG,
            first_name="Bo",
            chat_id=GROUP,
            chat_type="supergroup",
            extra={"document": doc, "caption": f"@{tg.bot_username} the minutes"},
        )
        await until(lambda: len(fake_model.requests) >= 1, "the guest's turn", 30)
        first = _first(tg, "document")
        _said(tg, FRIEND_TG, "anything else?", first)
        await until(lambda: len(fake_model.requests) >= 2, "the guest's reply", 30)
        _said(tg, OWNER_TG, "what was decided?", first)
        await until(lambda: len(fake_model.requests) >= 3, "the owner's turn", 30)
    guest, again, owner = (r.last_user_text for r in fake_model.requests)
    for said in (guest, again):
        assert "its text is in inbox/minutes.html.txt, cut short" in said
    assert DECISION in owner
    inbox = tmp_path / "workspace" / "inbox"
    assert len((inbox / "minutes.html.txt").read_bytes()) <= 5_000  # the guest's, as it was
    (whole,) = list(inbox.glob("text-*.txt"))
    assert DECISION in whole.read_text() and f"(html; its text is in inbox/{whole.name})" in owner
    assert "its text is in inbox/minutes.html.txt" not in owner
