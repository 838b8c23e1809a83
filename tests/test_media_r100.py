"""Review 100: a guest's files against the owner's, at the wire with the repository's fakes
(Telegram Bot API, Anthropic Messages API): a guest's kilobyte PDFs that held both PDF readers
while the owner's PDF waited; a guest's text copies written past their daily files quota; a
guest's 1,000 files named image.png that took the name of the owner's next one."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.telegram import FakeTelegram
from harness import until
from media_bombs import slow_pdf_pages, text_pdf
from PIL import Image
from test_media_in import FRIEND_TG, OWNER_TG, inbox, pdf, telegram_steward, texts_with

from agent.media import pdf_child

GROUP = -1009876543210
PDF = "application/pdf"


# -- PDF readers: the owner's never waits behind other people's -----------------------------


async def test_a_guests_slow_pdfs_hold_one_reader_at_a_time_and_never_the_owners(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A guest's 9 KB PDF of shared forms holds a reader until its deadline (30 s) at no cost
    to them (no text, no turn); two of them, a DM's and a group's, had taken both readers
    (`_CHILDREN = 2`) and the owner's one-page PDF waited 33 s behind them."""
    fake_model.reply_text("Hello.")
    fake_model.reply_text("It says revenue grew.")
    bomb = slow_pdf_pages(pages=50)
    assert len(bomb) < 10_000
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        h.router.inbound.intake.pdf_seconds = 3.5  # the deadline, 30 s in earnest
        tg.push_message("hello", user_id=OWNER_TG)  # a first turn, slower, out of the way
        await until(texts_with(tg, "Hello."), "the first reply")
        d1 = tg.add_file(bomb) | {"file_name": "a.pdf", "mime_type": PDF}
        d2 = tg.add_file(bomb + b"\n") | {"file_name": "b.pdf", "mime_type": PDF}
        started = time.monotonic()
        tg.push_message("", user_id=FRIEND_TG, extra={"document": d1})
        caption = f"@{tg.bot_username}"
        tg.push_message(
            "",
            user_id=FRIEND_TG,
            chat_id=GROUP,
            chat_type="supergroup",
            extra={"document": d2, "caption": caption},
        )
        await until(lambda: len(tg.calls_to("getFile")) >= 2, "both guest files fetched", 20)
        raw = pdf(["Quarterly report", "Revenue grew 12 percent"])
        doc = tg.add_file(raw) | {"file_name": "q3.pdf", "mime_type": PDF}
        asked = time.monotonic()
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc, "caption": "summarise"})
        text = tmp_path / "workspace" / "inbox" / "q3.pdf.txt"
        await until(text.exists, "the owner's PDF read", 20)
        waited = time.monotonic() - asked  # its turn's first model call is slower still
        await until(
            lambda: any("Revenue grew 12 percent" in r.last_user_text for r in fake_model.requests),
            "the owner's PDF given to the model",
            20,
        )
        refused = texts_with(tg, "far too much")
        await until(lambda: len(refused()) >= 1, "the guest's first PDF given up", 20)
        first = time.monotonic() - started
        await until(lambda: len(refused()) >= 2, "the guest's second PDF given up", 20)
        second = time.monotonic() - started
    assert waited < 2.0, f"the owner's one-page PDF waited {waited:.1f}s behind a guest's"
    # the guest's second PDF was read only after their first: one reader at a time each
    assert second - first > 2.5, (first, second)


async def test_the_gate_keeps_a_reader_for_the_owner_and_one_for_each_person() -> None:
    """Who may start a PDF reader, without one: the owner whenever one of the two is free,
    another person only while one stays free for the owner, and one at a time each; a
    reader given up (cancelled) is given back."""
    gate = pdf_child._Gate(2)
    inside: list[str] = []
    go = asyncio.Event()

    async def read(who: str, guest: int | None) -> None:
        async with gate.slot(guest):
            inside.append(who)
            await go.wait()

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    tasks = {
        who: asyncio.create_task(read(who, guest))
        for who, guest in (("bo-1", 7), ("bo-2", 7), ("al", 8), ("owner-1", None))
    }
    await settle()
    assert inside == ["bo-1", "owner-1"]  # bo's second waits for bo; al for the guests' one
    tasks["owner-2"] = asyncio.create_task(read("owner-2", None))
    await settle()
    assert inside == ["bo-1", "owner-1"]  # two readers at most, whoever's
    tasks["al"].cancel()
    await settle()
    go.set()
    await asyncio.gather(*(t for w, t in tasks.items() if w != "al"))
    assert sorted(inside) == ["bo-1", "bo-2", "owner-1", "owner-2"]
    assert gate._busy == 0 and gate._others == 0 and not gate._waiting
    assert not gate._people  # nobody's lock kept once their PDFs are read


# -- the daily files quota counts the text copies -------------------------------------------

QUOTA = 200_000


async def test_a_guests_pdf_text_is_counted_in_their_quota_and_cut_there(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A guest's 2 KB PDF had left a 4 MB `.pdf.txt` under a quota that counted downloads
    only (README: "bytes of files a day each person other than the owner may have saved")."""
    fake_model.reply_text("Read it.")
    raw = text_pdf(3, b"A" * 150_000)  # 450 KB of text
    assert len(raw) < 5_000
    async with (
        FakeTelegram() as tg,
        telegram_steward(tmp_path, fake_model, tg, STEWARD_GUEST_DAILY_FILE_BYTES=str(QUOTA)),
    ):
        doc = tg.add_file(raw) | {"file_name": "a.pdf", "mime_type": PDF}
        tg.push_message("", user_id=FRIEND_TG, extra={"document": doc, "caption": "read"})
        await until(lambda: fake_model.requests, "the turn", 30)
        told = [t for t in tg.sent_texts(FRIEND_TG) if "holds only its first" in t]
        # the text took the rest of the day: the guest's next file is not downloaded
        more = tg.add_file(b"note") | {"file_name": "n.bin", "mime_type": "x/y"}
        tg.push_message("", user_id=FRIEND_TG, extra={"document": more})
        await until(texts_with(tg, "try again tomorrow"), "the quota's refusal", 30)
    saved = inbox(tmp_path)
    assert set(saved) == {"a.pdf", "a.pdf.txt"} and sum(map(len, saved.values())) == QUOTA
    assert saved["a.pdf.txt"].startswith(b"[page 1]\nAAAA")
    assert told and "inbox/a.pdf.txt holds only its first 198 kB" in told[0]
    said = fake_model.requests[0].last_user_text
    assert "its text is in inbox/a.pdf.txt, cut short (the sender's daily files quota)" in said
    assert "all of it is in" not in said  # the model is not sent to a copy that is not whole


async def test_a_guests_windows_1252_files_copy_counts_the_owners_not(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A Windows-1252 file's UTF-8 copy is up to three times its size: it counts in a guest's
    quota as written; cut at what is left, none at all when nothing is. The owner has none."""
    files = [  # sender, name, bytes: what is left of the guest's 200 kB after each
        (FRIEND_TG, "big.bin", b"\x00" * 80_000),  # 120 kB left: not a kind read, no copy
        (FRIEND_TG, "p.txt", b"\x80" * 20_000),  # 100 kB, then 40 kB after its 60 kB copy
        (FRIEND_TG, "q.txt", b"\x99" * 20_000),  # 20 kB: 19,998 bytes of its copy (6,666 ™)
        (FRIEND_TG, "r.txt", b"\x85\x85"),  # 2 bytes, then none for its copy (6 bytes)
        (OWNER_TG, "o.txt", b"\x80" * 20_000),
    ]
    for _ in files:
        fake_model.reply_text("Read it.")
    async with (
        FakeTelegram() as tg,
        telegram_steward(tmp_path, fake_model, tg, STEWARD_GUEST_DAILY_FILE_BYTES=str(QUOTA)),
    ):
        for count, (sender, name, raw) in enumerate(files):
            doc = tg.add_file(raw) | {"file_name": name, "mime_type": "text/plain"}
            tg.push_message("", user_id=sender, extra={"document": doc, "caption": "read"})
            await until(lambda c=count: len(fake_model.requests) > c, f"the turn on {name}", 30)
        told = [t for t in tg.sent_texts(FRIEND_TG) if "came to" in t]
        more = tg.add_file(b"x") | {"file_name": "s.bin", "mime_type": "x/y"}
        tg.push_message("", user_id=FRIEND_TG, extra={"document": more})
        await until(texts_with(tg, "try again tomorrow"), "the quota's refusal", 30)
    sizes = {name: len(data) for name, data in inbox(tmp_path).items()}
    assert sizes == {
        "big.bin": 80_000,
        "p.txt": 20_000,
        "p.txt.txt": 60_000,
        "q.txt": 20_000,
        "q.txt.txt": 19_998,
        "r.txt": 2,
        "o.txt": 20_000,
        "o.txt.txt": 60_000,
    }
    assert inbox(tmp_path)["q.txt.txt"] == "™".encode() * 6_666  # cut at a whole character
    assert len(told) == 2
    assert (
        "q.txt came to 60 kB" in told[0] and "inbox/q.txt.txt holds only its first 19 kB" in told[0]
    )
    assert "r.txt came to 6 bytes" in told[1] and "so I kept none" in told[1]
    assert "its text was not saved (the sender's daily files quota)" in (
        fake_model.requests[3].last_user_text
    )


# -- names in inbox/ -----------------------------------------------------------------------


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()


async def test_the_owners_file_is_saved_whatever_names_inbox_holds(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """inbox/ took `image.png`, `image-1.png`… `image-999.png` and then refused the name: a
    guest's 1,000 files named image.png (costing no tokens) made the owner's own image.png
    fail, as "I could not download that file". Past the numbered names a unique one."""
    fake_model.reply_text("A red square.")
    folder = tmp_path / "workspace" / "inbox"
    folder.mkdir(parents=True)
    taken = {"image.png", *(f"image-{n}.png" for n in range(1, 1000))}
    for name in taken:  # as a guest's thousand files left them
        (folder / name).write_bytes(b"x")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        doc = tg.add_file(_png()) | {"file_name": "image.png", "mime_type": "image/png"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc, "caption": "what is this?"})
        await until(lambda: fake_model.requests, "the owner's photo answered", 30)
        said = tg.sent_texts(OWNER_TG)
    assert not [t for t in said if "could not" in t], said
    assert fake_model.requests[0].images, "the owner's photo never seen"
    (new,) = set(inbox(tmp_path)) - taken
    assert re.fullmatch(r"image-\d{8}-\d{6}-[0-9a-f]{8}\.png", new), new
    assert inbox(tmp_path)[new] == _png()


async def test_a_file_downloaded_but_not_saved_is_not_called_a_failed_download(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    fake_model.reply_text("ok")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "workspace").mkdir()
    (tmp_path / "workspace" / "inbox").symlink_to(outside)
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        doc = tg.add_file(b"data") | {"file_name": "x.bin", "mime_type": "x/y"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc})
        told = await until(texts_with(tg, "could not save it"), "the owner told", 30)
    assert "I downloaded that file but could not save it" in told[0]
    assert "inbox/ is not a plain folder" in told[0]
    assert not any("could not download" in t for t in tg.sent_texts(OWNER_TG))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("name", ["report.pdf", "noext", "日" * 78 + ".pdf"])
async def test_unique_names_keep_the_suffix_and_the_length(tmp_path: Path, name: str) -> None:
    from agent.media.inbox import _NUMBERED, Inbox

    box = Inbox(tmp_path)
    saved = [await box.save(name, b"%d" % n) for n in range(_NUMBERED + 3)]
    assert len(set(saved)) == _NUMBERED + 3
    for path in saved[_NUMBERED:]:
        file = path.removeprefix("inbox/")
        assert file.endswith(name[-4:] if "." in name else "") and len(file) <= 80
        assert len((file + ".txt").encode()) < 255


async def test_a_reply_to_a_file_whose_copy_was_cut_names_the_cut_copy(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """R104: a guest's reply to their PDF whose `.txt` the quota had cut compared the whole
    text with the cut copy, missed it, and with no room left said "so I kept none" (again, on
    every reply) and told the model the text was not saved, the cut copy there all along."""
    fake_model.reply_text("Read it.")
    fake_model.reply_text("Still it.")
    raw = text_pdf(3, b"A" * 150_000)  # 450 KB of text
    async with (
        FakeTelegram() as tg,
        telegram_steward(tmp_path, fake_model, tg, STEWARD_GUEST_DAILY_FILE_BYTES="200000"),
    ):
        doc = tg.add_file(raw) | {"file_name": "a.pdf", "mime_type": "application/pdf"}
        tg.push_message("", user_id=FRIEND_TG, extra={"document": doc, "caption": "read"})
        await until(lambda: fake_model.requests, "the turn", 30)
        first = next(m for (c, m), v in tg.messages.items() if c == FRIEND_TG and "document" in v)
        tg.push_message("what does page 2 say?", user_id=FRIEND_TG, reply_to_message_id=first)
        await until(lambda: len(fake_model.requests) >= 2, "the reply's turn", 30)
        told = " ".join(tg.sent_texts(FRIEND_TG))
    assert "a.pdf.txt" in inbox(tmp_path)
    assert "kept none" not in told and told.count("holds only its first") == 1
    said = fake_model.requests[1].last_user_text
    assert "its text was not saved" not in said and "inbox/a.pdf.txt" in said
