"""The limits of a message's files: the memory a photo may take to prepare (alone and with
others arriving at once), the names files are saved under, and how a document's fence names
its sender.

Memory is measured in child processes (the growth of their peak resident size), with the
images made beforehand by another child, so that neither making them nor pytest's own memory
counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.attachments import Attachment, AttachmentKind, MediaKind, MediaRef
from agent.media.file_names import safe_name as _safe_name
from agent.media.intake import MediaIntake, content_blocks
from memory.labels import Label

ROOT = Path(__file__).resolve().parent.parent

_MAKE = """
import sys
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
folder = sys.argv[1]
bomb = 7745  # 60 M pixels: under the pixel cap, each a file of a few hundred KB or MB
Image.new("RGBA", (bomb, bomb), (1, 2, 3, 4)).save(f"{folder}/png_rgba", "PNG", compress_level=1)
Image.new("F", (bomb, bomb), 0.5).save(f"{folder}/tiff_f", "TIFF", compression="tiff_adobe_deflate")
Image.new("CMYK", (bomb, bomb), (1, 2, 3, 4)).save(f"{folder}/jpeg_cmyk", "JPEG", quality=10)
Image.new("RGB", (bomb, bomb), (9, 9, 9)).save(f"{folder}/jpeg_rgb", "JPEG", quality=10)
Image.new("RGB", (5000, 5000), (1, 2, 3)).save(f"{folder}/jpeg_5000", "JPEG", quality=10)
# what the decoder holds beside Pillow's image (R131): libwebp's canvases, a progressive JPEG's
# coefficients at full size (a 2 KB WebP took 790 MiB; this JPEG 400)
Image.new("RGB", (7200, 7200), (1, 2, 3)).save(f"{folder}/webp_rgb", "WEBP", lossless=True)
Image.new("RGB", (bomb, bomb), (9, 9, 9)).save(
    f"{folder}/jpeg_progressive", "JPEG", quality=90, subsampling=0, progressive=True
)
phone = Image.new("RGB", (4032, 3024), (9, 9, 9))
phone.save(f"{folder}/phone_progressive", "JPEG", progressive=True)
# a progressive JPEG whose shortest scan is repeated: each pass walks the whole image
import io, re
small = io.BytesIO()
Image.new("L", (2000, 2000), 128).save(small, "JPEG", progressive=True)
data = small.getvalue()
starts = [m.start() for m in re.finditer(rb"\\xff\\xda", data)]
scans = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data) - 2])]
with open(f"{folder}/jpeg_scans", "wb") as out:
    out.write(data[:-2] + min(scans, key=len) * 500 + b"\\xff\\xd9")
"""

_PREPARE = """
import asyncio, json, resource, sys
sys.path.insert(0, sys.argv[1])
from agent.media.images import ImageError, prepare_image
import PIL.Image, PIL.JpegImagePlugin, PIL.PngImagePlugin, PIL.TiffImagePlugin
raws = [open(path, "rb").read() for path in sys.argv[2:]]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def main():
    done = await asyncio.gather(*(prepare_image(raw) for raw in raws), return_exceptions=True)
    return [
        str(r) if isinstance(r, ImageError) else [r.width, r.height] if hasattr(r, "width")
        else repr(r)
        for r in done
    ]


results = asyncio.run(main())
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"results": results, "grew_mib": grew // 1024}))
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bombs")
    made = subprocess.run(
        [sys.executable, "-c", _MAKE, str(folder)], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    return folder


def _prepare_in_a_child(*paths: Path) -> tuple[list[object], int]:
    run = subprocess.run(
        [sys.executable, "-c", _PREPARE, str(ROOT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    return out["results"], out["grew_mib"]


@pytest.mark.parametrize(
    "bomb", ["png_rgba", "tiff_f", "jpeg_cmyk", "jpeg_rgb", "webp_rgb", "jpeg_progressive"]
)
def test_a_photo_of_60_million_pixels_takes_little_memory_or_is_refused(
    images: Path, bomb: str
) -> None:
    """Under the 60-megapixel cap, a 7,745 x 7,745 image (a 250 KB PNG with transparency, a
    CMYK JPEG, a float TIFF) took 485-540 MiB to prepare: decoded whole, then copied whole to
    turn it upright. A JPEG is now decoded at half its scale; what cannot be decoded smaller
    is refused before decoding, in the words used for an image over the pixel cap."""
    (result,), grew = _prepare_in_a_child(images / bomb)
    if bomb in ("jpeg_cmyk", "jpeg_rgb"):
        assert result == [1568, 1568]
    else:
        assert isinstance(result, str) and result.startswith("it is too large to open"), result
    assert grew < 200, f"preparing it took {grew} MiB more"


def test_a_jpeg_of_endless_passes_is_refused_and_a_phones_progressive_photo_is_not(
    images: Path,
) -> None:
    """Each pass of a progressive JPEG walks the whole image: 20,000 of them (2 MB) held the
    one image thread two minutes, and every chat's photos waited (R131)."""
    import time

    started = time.monotonic()
    results, _ = _prepare_in_a_child(images / "jpeg_scans", images / "phone_progressive")
    assert results == ["it is a JPEG of more passes than a photo has", [1568, 1176]]
    assert time.monotonic() - started < 30


def test_photos_arriving_together_are_prepared_one_at_a_time(images: Path) -> None:
    """Four photos at once (an album, or a few chats) were each decoded on the shared thread
    pool at the same moment: four 25-megapixel photos took 800 MiB together (four 7,745-px
    ones, 2 GB). They are now prepared one after another, on one thread (each thread's malloc
    arena kept what its image had freed), so together they take about what one takes."""
    results, grew = _prepare_in_a_child(*[images / "jpeg_5000"] * 4)
    assert results == [[1568, 1568]] * 4
    assert grew < 250, f"four at once took {grew} MiB more"


def test_a_name_in_another_script_is_kept_and_a_long_one_keeps_its_suffix() -> None:
    """`отчёт.pdf` and `日本語.pdf` were saved as `pdf`, `pdf-1` (only ASCII letters were
    kept, then the leading dot stripped); a 10,000-character name was cut to 80 characters
    without its `.pdf`."""
    assert _safe_name("отчёт.pdf") == "отчёт.pdf"
    assert _safe_name("日本語.pdf") == "日本語.pdf"
    assert _safe_name("re\u0301sume\u0301.pdf") == "résumé.pdf"  # NFC: one character each
    long = _safe_name("A" * 10_000 + ".pdf")
    assert long == "A" * 76 + ".pdf" and len(long) == 80
    wide = _safe_name("日" * 200 + ".pdf")
    assert wide.endswith(".pdf") and len(wide) <= 80 and len(wide.encode()) <= 200
    # what was never allowed still is not: paths, controls, bidi and invisible characters
    assert _safe_name("../../etc/отчёт.pdf") == "отчёт.pdf"
    assert _safe_name("invoice\u202eFDP.exe") == "invoice_FDP.exe"
    assert _safe_name("a\x00b\nc\u200bd.txt") == "a_b_c_d.txt"
    assert _safe_name("\u3164\u3164.pdf") == ""  # Hangul fillers: "letters" no one sees
    assert _safe_name("..hidden.txt") == "hidden.txt"


class _Files:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def fetch_file(self, ref: MediaRef, max_bytes: int) -> bytes:
        return self.data


async def test_a_guests_document_is_saved_by_its_name_and_fenced_as_theirs(tmp_path: Path) -> None:
    """A document's fence named the file only (`source="inbox/x.pdf (pdf, …)"`) where an
    image's named the sender too ("another person's message"); and a name with nothing left
    of it fell back to a generated name without the file's suffix."""
    intake = MediaIntake(workspace=tmp_path, max_bytes=100_000, max_chars=10_000, transcriber=None)
    base = Label.untrusted("person:telegram:2002")
    refs = (
        MediaRef("telegram", MediaKind.DOCUMENT, "f1", "отчёт.txt", "text/plain", 11),
        MediaRef("telegram", MediaKind.DOCUMENT, "f2", "\u3164.txt", "text/plain", 11),
    )
    taken = await intake.take(refs, _Files(b"hello world"), base=base, own_words=False, guest=7)
    assert not taken.problems, taken.problems
    saved = sorted(p.name for p in (tmp_path / "inbox").iterdir())
    assert saved[0].startswith("file-") and saved[0].endswith(".txt")
    assert saved[1] == "отчёт.txt"
    blocks, label = content_blocks(tuple(taken.attachments))
    assert label.tainted
    opening = blocks[0]["text"].split("\n")[1]
    assert opening.startswith('<untrusted id="') and 'source="inbox/отчёт.txt' in opening
    assert "another person&#x27;s message" in opening


def test_a_fenced_recording_names_its_sender_too() -> None:
    label = Label.untrusted("person:slack:UGUEST").join(Label.untrusted("file:inbox/v.ogg"))
    item = Attachment(
        AttachmentKind.TRANSCRIPT, "voice note inbox/v.ogg", label, text="hi", saved_as="x"
    )
    blocks, _ = content_blocks((item,))
    assert "another person&#x27;s message" in blocks[0]["text"].split("\n")[1]


@pytest.mark.parametrize("mode", ["I;16", "I"])
async def test_a_16_bit_grey_scan_keeps_its_shades(mode: str) -> None:
    """R148: converted as it was, every value above 255 became white: a 16-bit scan reached
    the model as a blank picture."""
    import io

    from PIL import Image

    from agent.media.images import prepare_image

    scan = Image.new(mode, (200, 50))
    scan.putdata([int(x / 199 * 65535) for _ in range(50) for x in range(200)])
    raw = io.BytesIO()
    scan.save(raw, "PNG" if mode == "I;16" else "TIFF")  # a 32-bit one: a TIFF
    prepared = await prepare_image(raw.getvalue())
    seen = Image.open(io.BytesIO(prepared.data)).convert("L")
    shades = [seen.getpixel((x, 25)) for x in (10, 100, 190)]
    assert shades[0] < 40 and 100 < shades[1] < 160 and shades[2] > 220, shades
