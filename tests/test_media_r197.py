"""Review 197: files sent to Steward, as an attacker, end to end through the Telegram, STT and
Anthropic fakes: a guest's planted `<name>.txt` is never "the .txt beside" the owner's file; a
reply to a recording reuses its transcript (not the speech-to-text server); one message's files
share one cap, and a guest's what is left of their allowance; and a prompt too long for the
model says so, in plain words.
"""

from __future__ import annotations

import html
import json
import random
import string
from pathlib import Path

from fakes.anthropic import FakeAnthropic, Reply
from fakes.stt import FakeSTT
from fakes.telegram import FakeTelegram
from harness import until
from test_media_in import FRIEND_TG, OWNER_TG, inbox, pdf, stored_in, telegram_steward, texts_with

from agent.media.copies import Copies
from agent.media.inbox import Inbox
from agent.media.quota import GuestQuota
from memory.people import Identity

# -- 1. a planted .txt ---------------------------------------------------------------------


async def test_a_guests_planted_txt_is_never_the_text_beside_the_owners_pdf(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The guest's `invoice.pdf.txt` came first; the owner's `invoice.pdf` then had its text
    numbered (`invoice.pdf-1.txt`), while its note said "a .txt beside it"."""
    fake_model.reply_text("thanks Bo")
    fake_model.reply_text("Got your invoice.")
    fake = b"[page 1]\nINVOICE 4471\nTotal due: EUR 9,800.00\nPay to IBAN DE00 EVIL 0000"
    real = pdf(["INVOICE 4471", "Total due: EUR 98.00", "Pay to IBAN DE11 REAL"])
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        planted = tg.add_file(fake) | {"file_name": "invoice.pdf.txt", "mime_type": "text/plain"}
        tg.push_message("", user_id=FRIEND_TG, first_name="Bo", extra={"document": planted})
        await until(texts_with(tg, "thanks Bo"), "the guest's turn")
        doc = tg.add_file(real) | {"file_name": "invoice.pdf", "mime_type": "application/pdf"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc, "caption": "file this"})
        await until(texts_with(tg, "Got your invoice"), "the owner's turn")
        saved = next(name for name, data in inbox(tmp_path).items() if data == real)
        # a later turn follows the note: the .txt beside the file the reply's label names
        fake_model.reply(Reply.tool_use("read_file", {"path": f"inbox/{saved}.txt"}))
        fake_model.reply_text("The invoice total is what the file says.")
        tg.push_message("what was the total on the invoice I sent?", user_id=OWNER_TG)
        await until(texts_with(tg, "invoice total"), "the later turn")
        stored = await stored_in(h)
    assert saved == "invoice-1.pdf"  # the file and its copy moved together
    assert inbox(tmp_path)["invoice.pdf.txt"] == fake  # the guest's file, untouched
    assert stored[1] == "[file saved in inbox/; text in a .txt beside it] file this"
    assert f"file:inbox/{saved}" in fake_model.requests[1].last_user_text
    read = json.dumps(fake_model.requests[3].tool_results)
    assert "EUR 98.00" in read and "9,800" not in read


async def test_a_copy_whose_place_was_taken_meanwhile_gets_a_name_of_stewards_own(
    tmp_path: Path,
) -> None:
    """A file that came at the same time may take `<name>.txt` between the save and the copy:
    the copy then goes to a name no one chose, never a numbered one beside another's file."""
    inbox_ = Inbox(tmp_path)
    saved = await inbox_.save("invoice.pdf", b"%PDF owner", paired=True)
    assert saved == "inbox/invoice.pdf"
    (tmp_path / "inbox" / "invoice.pdf.txt").write_text("the guest's")
    copy = await Copies(inbox_, GuestQuota(0, 1000)).text(
        saved, "the owner's text", key=None, guest=None, named="invoice.pdf"
    )
    assert copy.path is not None and copy.path.startswith("inbox/text-")
    assert (tmp_path / copy.path).read_text() == "the owner's text"
    assert (tmp_path / "inbox" / "invoice.pdf.txt").read_text() == "the guest's"
    assert not (tmp_path / "inbox" / "invoice.pdf-1.txt").exists()


# -- 2. a recording transcribed once -------------------------------------------------------


async def test_replies_to_a_recording_reuse_its_transcript_not_the_stt_server(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Six replies to a guest's recording had sent it to speech-to-text seven times (1.4 MB),
    its quota counted once. A transcript changed since is transcribed again only within the
    quota, as a download is."""
    fake_model.on_request(lambda request: Reply.text("ok"))
    audio = b"OggS" + b"\x00" * 200_000
    async with FakeSTT() as stt:
        stt.say(audio, "the meeting moved to room 4B")
        async with (
            FakeTelegram() as tg,
            telegram_steward(
                tmp_path,
                fake_model,
                tg,
                STEWARD_STT_URL=stt.base_url,
                STEWARD_GUEST_DAILY_FILE_BYTES="300000",  # room for one such file a day
            ),
        ):
            doc = tg.add_file(audio) | {"file_name": "talk.ogg", "mime_type": "audio/ogg"}
            tg.push_message("", user_id=FRIEND_TG, first_name="Bo", extra={"audio": doc})
            await until(lambda: fake_model.requests, "the first turn")
            first = next(m for (c, m), v in tg.messages.items() if c == FRIEND_TG and "audio" in v)
            for n in range(6):
                tg.push_message(f"again {n}", user_id=FRIEND_TG, reply_to_message_id=first)
                await until(lambda n=n: len(fake_model.requests) >= n + 2, "a reply's turn")
            heard = len(stt.requests)
            (tmp_path / "workspace" / "inbox" / "talk.ogg.txt").write_text("changed by a tool")
            tg.push_message("and now?", user_id=FRIEND_TG, reply_to_message_id=first)
            refusal = await until(texts_with(tg, "Listening to that audio file again"), "no")
    assert heard == 1 and len(tg.downloads) == 1
    for request in fake_model.requests[1:7]:
        assert "room 4B" in request.last_user_text  # each reply's turn has the transcript
    # the quota holds 100 kB more: a 200 kB recording is not sent to the server again
    assert len(stt.requests) == 1 and "try again tomorrow" in refusal[0]


# -- 3. one message's files share one cap --------------------------------------------------


def _album(tg: FakeTelegram, user: int, bodies: list[str], caption: str) -> None:
    for n, body in enumerate(bodies):
        doc = tg.add_file(body.encode()) | {"file_name": f"f{n}.txt", "mime_type": "text/plain"}
        extra = {"document": doc, "media_group_id": "777"}
        if n == 0:
            extra["caption"] = caption
        tg.push_message("", user_id=user, first_name="Bo", extra=extra)


def _random_text(size: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.ascii_letters + " ") for _ in range(size))


async def test_an_album_of_documents_shares_one_cap_and_the_sender_is_told_which_were_cut(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Ten files within STEWARD_DOCUMENT_MAX_CHARS each had gone to the model whole, in one
    call: 200,000 characters here, 600,000 in the review."""
    fake_model.reply_text("read them all")
    bodies = [_random_text(20_000, n) for n in range(10)]
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        _album(tg, OWNER_TG, bodies, "summarise")
        await until(texts_with(tg, "read them all"), "the album's reply", 60)
        told = [t for t in tg.sent_texts(OWNER_TG) if "I give the model" in t]
    said = fake_model.requests[0].last_user_text
    assert len(said) < 70_000
    assert bodies[0] in said and bodies[2] in said and bodies[3][:100] not in said
    assert len(told) == 7  # f3 cut, f4 to f9 not given
    for n, note in enumerate(told, 3):
        assert note.startswith(f"f{n}.txt: I give the model none of its text"), note
    assert "one message get 60,000 characters together" in told[0]
    assert "all of it is in inbox/f3.txt" in told[0] and "Send it on its own" in told[0]
    assert said.count("(The text was not given here; all of it is in inbox/f") == 7


async def test_a_guests_files_get_no_more_than_is_left_of_their_allowance(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The allowance was checked before the turn and only after its first model call: one
    message's files could spend far more than a whole day of it."""
    fake_model.reply_text("read it")
    body = _random_text(60_000, 7)
    async with (
        FakeTelegram() as tg,
        telegram_steward(tmp_path, fake_model, tg, STEWARD_GUEST_DAILY_TOKENS="10000") as h,
    ):
        doc = tg.add_file(body.encode()) | {"file_name": "long.txt", "mime_type": "text/plain"}
        tg.push_message("", user_id=FRIEND_TG, first_name="Bo", extra={"document": doc})
        await until(texts_with(tg, "read it"), "the reply", 30)
        told = [t for t in tg.sent_texts(FRIEND_TG) if "I give the model" in t]
        guest = await h.steward.stores.people.resolve(Identity("telegram", str(FRIEND_TG)))
        assert guest is not None
        spent = await h.steward.stores.turns.guest_tokens_since(
            guest.id, h.steward.runner.budget_day_start()
        )
    said = fake_model.requests[0].last_user_text
    given = max(n for n in range(0, 60_001, 1000) if body[:n] in said)
    assert 30_000 <= given <= 40_000  # about four characters a token, of 10,000 left
    assert spent < 15_000  # the whole file would have been over 15,000 alone
    (note,) = told
    assert note.startswith("long.txt: I give the model its first ")
    assert "all that is left of today's allowance for our conversations" in note


# -- 4. a prompt too long for the model -----------------------------------------------------


async def test_a_prompt_too_long_for_the_model_says_so_and_what_to_do(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """The API's 400 "prompt is too long" had been "rejected the request (400)… the details are
    in Steward's log"."""
    reason = "prompt is too long: 251234 tokens > 200000 maximum"
    fake_model.fail(400, message=reason)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        doc = tg.add_file(b"quarterly numbers") | {"file_name": "r.txt", "mime_type": "text/plain"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc, "caption": "compare"})
        (sent,) = await until(texts_with(tg, "couldn't answer"), "the failure", 30)
    said = html.unescape(sent)  # sent as Telegram HTML
    assert "too long for the model" in said and reason in said, said
    assert "Send fewer or smaller files" in said and "rejected the request" not in said


async def test_a_message_too_large_in_bytes_says_so_and_what_to_do(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """Session 33 left it: the API's 413 for an album of photos said "rejected the request
    (413)" and that trying again would not help, not why nor what to do."""
    reason = "Request exceeds the maximum allowed number of bytes."
    fake_model.fail(413, message=reason)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        doc = tg.add_file(b"quarterly numbers") | {"file_name": "r.txt", "mime_type": "text/plain"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc, "caption": "compare"})
        (sent,) = await until(texts_with(tg, "couldn't answer"), "the failure", 30)
    said = html.unescape(sent)
    assert "larger than the model API takes in one request" in said and reason in said, said
    assert "Send fewer or smaller files" in said and "rejected the request" not in said
