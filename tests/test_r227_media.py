"""R227: photos real phones make and Telegram messages Steward had no name for, end to end
through the Telegram and Slack fakes (the Bot API's getFile + download, Slack's url_private) and
the model at the wire: a motion photo, a 108-megapixel JPEG, one over Pillow's own limit, an
animated GIF, a forwarded story, and a file over Telegram's 20 MiB with a larger file cap."""

from __future__ import annotations

import base64
import io
import random
import struct
import time
from pathlib import Path

from fakes.anthropic import FakeAnthropic
from fakes.slack import FakeSlack, event_body, message_event, post_signed
from fakes.telegram import FakeTelegram
from harness import OWNER_SLACK, slack_steward, until
from PIL import Image
from test_media_in import DM, OWNER_TG, telegram_steward, texts_with

from agent.media.images import MAX_SCANS, ImageError, _jpeg_scans, prepare_image


def _jpeg(width: int, height: int, **options: object) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(out, "JPEG", quality=85, **options)
    return out.getvalue()


def _video(size: int) -> bytes:
    """An MP4 clip's bytes as a motion photo appends them (random, as compressed video is:
    FF DA about once every 64 KB)."""
    return b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41" + random.Random(7).randbytes(
        size
    )


async def _send_as_file(tmp_path: Path, fake_model: FakeAnthropic, raw: bytes, name: str):
    fake_model.reply_text("Looked at it.")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg):
        doc = tg.add_file(raw) | {"file_name": name, "mime_type": "image/jpeg"}
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc, "caption": "what is this?"})
        await until(lambda: fake_model.requests or texts_with(tg, "could not open")(), "an answer")
        said = tg.sent_texts()
    return said


async def test_a_motion_photo_is_not_refused_as_a_jpeg_of_too_many_passes(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A Pixel / Samsung motion photo: a baseline JPEG (one scan) with its clip appended after
    the image. FF DA counted anywhere in the file made ~5 MB of video 80 "scans", and the photo
    "a JPEG of more passes than a photo has"."""
    said = await _send_as_file(
        tmp_path, fake_model, _jpeg(4000, 3000) + _video(5_000_000), "PXL_20250101_MP.jpg"
    )
    assert not [t for t in said if "could not open" in t], said
    assert fake_model.requests and fake_model.requests[0].images


async def test_a_jpeg_of_endless_passes_is_still_refused_whatever_follows_it() -> None:
    """The count that protects the image thread (R131) still counts every scan libjpeg would
    decode: 200 repeated passes, with stray bytes between them and a clip after the image."""
    data = _jpeg(400, 300, progressive=True)
    scans = data.split(b"\xff\xda")
    passes = b"".join(b"\xff\xda" + scans[-2] + b"junk" for _ in range(200))
    for raw in (data[:-2] + passes + b"\xff\xd9", data[:-2] + passes + b"\xff\xd9" + _video(10**5)):
        try:
            await prepare_image(raw)
        except ImageError as exc:
            assert str(exc) == "it is a JPEG of more passes than a photo has"
        else:
            raise AssertionError("a JPEG of 200 passes was decoded")
    assert (await prepare_image(data + _video(5_000_000))).width == 400  # one photo's passes


async def test_a_108_megapixel_phone_jpeg_sent_as_a_file_is_shown_to_the_model(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A 12,000 x 9,000 baseline JPEG (Samsung's 108 MP mode) decodes at 1/2 scale in about
    a second, yet the 60-megapixel cap was checked on its full size, before the reduced-scale
    decode the README promises for large JPEGs."""
    said = await _send_as_file(tmp_path, fake_model, _jpeg(12000, 9000), "20250101_120000.jpg")
    assert not [t for t in said if "could not open" in t], said
    (block,) = fake_model.requests[0].images
    shown = Image.open(io.BytesIO(base64.b64decode(block["source"]["data"])))
    assert shown.size == (1568, 1176)


async def test_a_photo_over_pillows_own_limit_is_said_to_be_too_large_not_unreadable(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A 16,320 x 12,240 JPEG (Samsung's 200 MP mode) is over Pillow's decompression-bomb
    limit (~179 MP): it was "not an image I can read", as if the photo were damaged."""
    raw = bytearray(_jpeg(1632, 1224))
    at = raw.index(b"\xff\xc0")  # SOF0: FF C0, length, precision, height, width
    raw[at + 5 : at + 9] = struct.pack(">HH", 12240, 16320)
    said = await _send_as_file(tmp_path, fake_model, bytes(raw), "20250101_120001.jpg")
    refused = [t for t in said if "could not open" in t]
    assert refused and "it is too large to open (200 megapixels)" in refused[0], said


async def test_an_animated_gif_on_slack_is_said_to_be_its_first_frame(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A 3-frame GIF reached the model as one still (its first frame) with nothing saying it
    moves: asked "what happens in this gif?", the model answered from one frame as if it had
    seen it all."""
    frames = [Image.new("RGB", (200, 200), c) for c in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=300, loop=0)
    fake_model.reply_text("It is red.")
    async with FakeSlack() as slack, slack_steward(tmp_path, fake_model, slack) as (h, _, url):
        shared = slack.add_file(out.getvalue(), name="party.gif", mimetype="image/gif")
        event = message_event(
            "what happens in this gif?", user=OWNER_SLACK, channel=DM, files=[shared]
        )
        status, _ = await post_signed(url, slack.signing_secret, json_body=event_body(event))
        assert status == 200
        await until(lambda: fake_model.requests, "the model call")
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
    request = fake_model.requests[0]
    (block,) = request.images
    shown = Image.open(io.BytesIO(base64.b64decode(block["source"]["data"])))
    assert getattr(shown, "n_frames", 1) == 1 and shown.getpixel((5, 5))[0] > 200  # frame 1
    assert "an animation: only its first frame is shown" in request.last_user_text
    assert "an animation, its first frame shown" in stored[0], stored


async def test_a_forwarded_story_is_answered_not_dropped(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """A forwarded story (no text, no file) was dropped: nothing stored, nothing answered,
    where a sticker was named. Any message that is neither text, a file nor a service message
    is named now, a kind Telegram adds later too; a pin is still no message to answer."""
    fake_model.reply_text("Noted.")
    async with FakeTelegram() as tg, telegram_steward(tmp_path, fake_model, tg) as h:
        story = {"chat": {"id": 2002, "type": "private", "first_name": "Bo"}, "id": 7}
        origin = {
            "type": "user",
            "date": 1,
            "sender_user": {"id": 2002, "is_bot": False, "first_name": "Bo"},
        }
        tg.push_message("", user_id=OWNER_TG, extra={"story": story, "forward_origin": origin})
        pinned = {"message_id": 1, "date": 1, "chat": {"id": OWNER_TG, "type": "private"}}
        tg.push_message("", user_id=OWNER_TG, extra={"pinned_message": pinned})
        tg.push_message("", user_id=OWNER_TG, extra={"hologram": {"id": 3}})
        tg.push_message("ping", user_id=OWNER_TG)
        await until(lambda: len(fake_model.requests) >= 3, "three turns")
        stored = [m.text for m in await h.steward.stores.messages.all(direction="in")]
    assert len(stored) == 3, stored
    assert "[a story, which I cannot open]" in stored[0]
    assert stored[1] == "[a kind of message I do not know, which I cannot open]"
    assert stored[2] == "ping"


async def test_a_file_over_telegrams_20_mb_is_not_said_to_be_over_a_larger_cap(
    tmp_path: Path, fake_model: FakeAnthropic
) -> None:
    """STEWARD_FILE_MAX_BYTES=50 MB, a 30 MB audio file: the Bot API answers getFile "file is
    too big" (it serves 20 MiB at most), and the reply read "That audio file is 30 MB; I take
    files up to 50 MB (STEWARD_FILE_MAX_BYTES)": a contradiction pointing at the wrong knob."""
    fake_model.reply_text("Noted.")
    async with (
        FakeTelegram() as tg,
        telegram_steward(
            tmp_path,
            fake_model,
            tg,
            STEWARD_FILE_MAX_BYTES="50000000",
            STEWARD_STT_URL="http://127.0.0.1:9/v1",
        ),
    ):
        doc = tg.add_file(b"ID3" + b"\x00" * 1000, size=30_000_000) | {
            "file_name": "lecture.mp3",
            "mime_type": "audio/mpeg",
        }
        tg.push_message("", user_id=OWNER_TG, extra={"document": doc})
        said = await until(texts_with(tg, "download"), "the reply")
    assert not [t for t in said if "STEWARD_FILE_MAX_BYTES" in t], said
    assert "Telegram lets a bot download files of up to 20 MB" in said[0], said


def test_a_jpeg_padded_with_lengthless_markers_is_refused_quickly() -> None:
    """R229: 19 MB of FF 01 (a marker with no length) before the end held the one image
    thread 2.6 s, a Python step per marker; no photo has more than a few dozen markers."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "JPEG", progressive=True)
    good = buf.getvalue()
    assert 1 < _jpeg_scans(good) <= MAX_SCANS  # a real progressive photo's passes
    end = good.rindex(b"\xff\xd9")
    hostile = good[:end] + b"\xff\x01" * (19 * 1024 * 1024 // 2) + b"\xff\xd9"
    started = time.perf_counter()
    assert _jpeg_scans(hostile) > MAX_SCANS
    assert time.perf_counter() - started < 0.5
