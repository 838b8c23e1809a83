"""R246: a few KB of run-length-encoded BMP held the one image thread for seconds. Pillow
decodes BMP RLE8/RLE4 in Python, a loop turn a pixel: a 32 KB file of 7,745 x 7,745 rows (one
pixel, then end-of-line) passed the pixel and memory caps and took 7-14 s, every photo of
every chat waiting behind it. Such a file is refused unread; a small one still opens."""

from __future__ import annotations

import struct

import pytest

from agent.media.images import MAX_RLE_PIXELS, ImageError, prepare_image


def rle8_bmp(width: int, height: int) -> bytes:
    """Each row: one pixel, then end-of-line (the decoder pads the rest byte by byte)."""
    pixels = b"\x01\x12\x00\x00" * height + b"\x00\x01"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 256, 0)
    offset = 14 + 40 + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return head + info + palette + pixels


async def test_a_tiny_run_length_bmp_of_many_pixels_is_refused_unread() -> None:
    hostile = rle8_bmp(7745, 7745)
    assert len(hostile) < 40_000 and MAX_RLE_PIXELS < 7745 * 7745
    with pytest.raises(ImageError, match=r"too large to open \(7745x7745 px\)"):
        await prepare_image(hostile)


async def test_a_small_run_length_bmp_still_opens() -> None:
    prepared = await prepare_image(rle8_bmp(300, 200))
    assert prepared.data and prepared.media_type in ("image/png", "image/jpeg")
