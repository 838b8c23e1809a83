"""R252: Pillow makes a TIFF's strips (or tiles) into pieces of its own in Python on open, and
decodes them one a loop turn on load, past the image's own rows. A 2 MB TIFF of 1 x 2 pixels
with a million 2-byte strip offsets passed every cap and held the one image thread ~8 s (18 MB:
~66 s); so did a BigTIFF directory of hundreds of thousands of entries, each read in Python.
Such files are refused unread; ordinary TIFFs, Pillow's own among them, still open."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image

from agent.media.images import ImageError, prepare_image

REFUSED = "it is too large to open (a TIFF in more pieces than a picture has)"


def _tiff(entries: list[tuple[int, int, int, int]], data: bytes, *, big: bool = False) -> bytes:
    """A little-endian TIFF (or BigTIFF): header, `data` at offset 16, then one directory of
    `entries` (tag, type, count, value or offset)."""
    pack = "<HHQQ" if big else "<HHII"
    listed = b"".join(struct.pack(pack, *e) for e in entries)
    at = 16 + len(data)
    if big:
        head = b"II\x2b\x00" + struct.pack("<HHQ", 8, 0, at)
        ifd = struct.pack("<Q", len(entries)) + listed + b"\0" * 8
    else:
        head = b"II\x2a\x00" + struct.pack("<I", at) + b"\0" * 8
        ifd = struct.pack("<H", len(entries)) + listed + b"\0" * 4
    return head + data + ifd


def striped_tiff(n: int, *, big: bool = False, tag: int = 273, extra: int = 0) -> bytes:
    """1 x 2 grey, uncompressed, one row per strip: n SHORT strip offsets (or tile offsets),
    all to the same two pixels at offset 16, no byte counts; `extra` unknown tags after."""
    offsets = struct.pack(f"<{n}H", *([16] * n))
    data = b"\x80\x40" + b"\0" * 6 + offsets  # pixels, then the offsets at 24
    short = 3
    entries = [
        (256, short, 1, 1),  # width
        (257, short, 1, 2),  # height
        (258, short, 1, 8),  # bits
        (259, short, 1, 1),  # no compression
        (262, short, 1, 1),  # black is zero
        (tag, short, n, 24 if n * 2 > (8 if big else 4) else 16),
        (277, short, 1, 1),  # samples
        (278, short, 1, 1),  # rows per strip
    ] + [(60000, short, 1, 0)] * extra
    return _tiff(entries, data, big=big)


def _pillow_tiff(compression: str) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize((300, 200)).convert("RGB").save(
        out, "TIFF", compression=compression
    )
    return out.getvalue()


@pytest.mark.parametrize("big", [False, True])
async def test_a_tiff_of_more_strips_than_rows_is_refused_unread(big: bool) -> None:
    with pytest.raises(ImageError) as refused:
        await prepare_image(striped_tiff(1_000_000, big=big))  # 2 MB
    assert str(refused.value) == REFUSED


async def test_a_tiff_of_too_many_tiles_is_refused() -> None:
    with pytest.raises(ImageError) as refused:
        await prepare_image(striped_tiff(100_000, tag=324))
    assert str(refused.value) == REFUSED


async def test_a_bigtiff_directory_of_countless_entries_is_refused() -> None:
    with pytest.raises(ImageError) as refused:
        await prepare_image(striped_tiff(2, big=True, extra=200_000))  # 4 MB
    assert str(refused.value) == REFUSED


@pytest.mark.parametrize("big", [False, True])
async def test_an_ordinary_striped_tiff_still_opens(big: bool) -> None:
    prepared = await prepare_image(striped_tiff(2, big=big))
    assert (prepared.width, prepared.height) == (1, 2)


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw"])
async def test_a_tiff_pillow_saved_still_opens(compression: str) -> None:
    prepared = await prepare_image(_pillow_tiff(compression))
    assert (prepared.width, prepared.height, prepared.media_type) == (300, 200, "image/jpeg")


@pytest.mark.parametrize("cut", [3, 6, 10, 40, 100])
async def test_a_cut_short_tiff_is_unreadable_not_a_crash(cut: int) -> None:
    with pytest.raises(ImageError) as refused:
        await prepare_image(striped_tiff(2)[:cut])
    assert str(refused.value) == "it is not an image I can read"


async def test_a_tiff_whose_directory_is_past_its_end_is_unreadable() -> None:
    broken = b"II\x2a\x00" + struct.pack("<I", 0xFFFFFFF0) + b"\0" * 8
    with pytest.raises(ImageError) as refused:
        await prepare_image(broken)
    assert str(refused.value) == "it is not an image I can read"


async def test_a_bigtiff_whose_directory_is_past_any_file_is_unreadable() -> None:
    broken = b"II\x2b\x00" + struct.pack("<HHQ", 8, 0, 2**64 - 1)
    with pytest.raises(ImageError) as refused:
        await prepare_image(broken)
    assert str(refused.value) == "it is not an image I can read"
