"""R247: Pillow reads a GIF's blocks and a PNG's chunks in Python, a loop turn each, before any
pixel and past every size cap: a GIF comment of 1-byte sub-blocks is joined quadratically (0.8 MB
took 4-7 s), a PNG of a million empty chunks took seconds, and so did a GIF of millions of stray
bytes or a first frame in millions of 1-byte sub-blocks; every photo waited behind them on the one
image thread. Such files are refused unread; ordinary GIFs and PNGs, split as encoders split
them, still open. And a GIF's comment is not carried into the JPEG sent (over 64 KB, the save
raised OSError: "Sorry, something went wrong")."""

from __future__ import annotations

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from agent.media.images import ImageError, prepare_image


def _plain_gif() -> tuple[bytes, int]:
    """Pillow's own 8 x 8 GIF, and where its header and colour table end."""
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    plain = out.getvalue()
    return plain, 13 + (3 * 2 ** ((plain[10] & 7) + 1) if plain[10] & 0x80 else 0)


def gif_with_comment(blocks: bytes) -> bytes:
    plain, cut = _plain_gif()
    return plain[:cut] + b"\x21\xfe" + blocks + b"\x00" + plain[cut:]


def gif_with_stray_bytes(count: int) -> bytes:
    plain, cut = _plain_gif()
    return plain[:cut] + b"\x00" * count + plain[cut:]


def gif_of_two_frames_in_tiny_sub_blocks(count: int) -> bytes:
    """Two frames, each its image data followed by `count` 1-byte sub-blocks."""
    plain, at = _plain_gif()
    while plain[at] == 0x21:  # Pillow's extensions: label, then sub-blocks
        at += 2
        while plain[at]:
            at += plain[at] + 1
        at += 1
    assert plain[at] == 0x2C and not plain[at + 9] & 0x80  # no local colour table
    end = at + 11
    while plain[end]:
        end += plain[end] + 1
    frame = plain[at:end] + b"\x01\x00" * count + b"\x00"
    return plain[:at] + frame + frame + b";"


def _chunk(cid: bytes, data: bytes = b"") -> bytes:
    crc = zlib.crc32(cid + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", crc)


def png(width: int, height: int, extra: int = 0, idat_size: int = 1 << 20) -> bytes:
    """An RGB PNG of noise, its data in IDAT chunks of `idat_size`, `extra` empty private
    chunks before them."""
    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    data = zlib.compress(rows)
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    idats = b"".join(
        _chunk(b"IDAT", data[i : i + idat_size]) for i in range(0, len(data), idat_size)
    )
    return b"\x89PNG\r\n\x1a\n" + ihdr + _chunk(b"prVt") * extra + idats + _chunk(b"IEND")


async def test_a_gif_comment_of_many_tiny_sub_blocks_is_refused_unread() -> None:
    hostile = gif_with_comment(b"\x01A" * 400_000)  # 0.8 MB
    with pytest.raises(ImageError, match="too large to open"):
        await prepare_image(hostile)


async def test_a_png_of_a_million_empty_chunks_is_refused_unread() -> None:
    hostile = png(8, 8, extra=1_000_000)  # 12 MB, under the 20 MB file cap
    with pytest.raises(ImageError, match="too large to open"):
        await prepare_image(hostile)


async def test_a_gif_of_millions_of_stray_bytes_is_refused_unread() -> None:
    with pytest.raises(ImageError, match="too large to open"):
        await prepare_image(gif_with_stray_bytes(19_000_000))


async def test_a_gif_frame_in_millions_of_tiny_sub_blocks_is_refused_unread() -> None:
    hostile = gif_of_two_frames_in_tiny_sub_blocks(5_000_000)  # 20 MB
    with pytest.raises(ImageError, match="too large to open"):
        await prepare_image(hostile)


async def test_ordinary_gifs_and_pngs_still_open() -> None:
    frames = [Image.frombytes("L", (120, 90), os.urandom(120 * 90)).convert("P") for _ in range(5)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=b"GIMP")
    animated = await prepare_image(out.getvalue())
    assert (animated.width, animated.height, animated.animated) == (120, 90, True)
    out = io.BytesIO()
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])  # APNG
    assert (await prepare_image(out.getvalue())).animated
    # a PNG's data split into thousands of IDAT chunks, as libpng splits a large one (8 KB each)
    split = png(400, 400, idat_size=160)
    assert split.count(b"IDAT") > 2_500
    prepared = await prepare_image(split)
    assert (prepared.width, prepared.height) == (400, 400)
    # a small comment, a frame in small sub-blocks, a few stray bytes: still a picture
    assert (await prepare_image(gif_with_comment(b"\x01A" * 500))).width == 8
    assert (await prepare_image(gif_of_two_frames_in_tiny_sub_blocks(5_000))).width == 8
    assert (await prepare_image(gif_with_stray_bytes(100))).width == 8


async def test_a_gif_comment_is_not_carried_into_the_jpeg_sent() -> None:
    """Over 64 KB the JPEG save raised OSError, outside the guards: "Sorry, something went
    wrong". Under it, the sender's comment reached the model inside the picture."""
    for size in (76_000, 200):
        text = b"A" * 255 * (size // 255) + b"B" * (size % 255)
        blocks = b"".join(
            bytes([len(p)]) + p for p in (text[i : i + 255] for i in range(0, size, 255))
        )
        prepared = await prepare_image(gif_with_comment(blocks))
        assert prepared.media_type == "image/jpeg" and prepared.width == 8
        assert b"\xff\xfe" not in prepared.data and b"AAAA" not in prepared.data
