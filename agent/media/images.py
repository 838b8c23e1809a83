"""Images for the model: decoded and re-encoded with Pillow, downscaled to the model's limits.

(Some 420 lines: the cheap walks that bound what Pillow reads in Python, one a format, sit
beside the one function that opens the image, so every cap is read in one place.)

Anthropic downscales anything with a long edge over 1568 px (and refuses over 8000 px or about
5 MB), so sending more only costs upload time and tokens: the image is shrunk to a 1568-px long
edge, turned upright by its EXIF orientation, and sent as JPEG (PNG when it has transparency).
Re-encoding also drops metadata (GPS position) and anything hidden after the image data.

Memory is bounded before anything is decoded, since a file of a few hundred KB can describe
60 million pixels: a large JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8: libjpeg's own
shrinking, from the compressed data), and `MAX_PIXELS` caps the size it is decoded at (R227: a
108-megapixel phone photo was refused before it could be shrunk); an image whose preparation
would still hold more than `MAX_MEMORY` (a PNG, WebP or TIFF cannot be decoded smaller) is
refused like one over `MAX_PIXELS`; no step copies the decoded image whole; and images are
prepared one at a time. A photo under 6,272 px comes out as before, its pixels only (no comment
or colour profile: R247). Only the first frame of an animation is sent, and said to be
(`PreparedImage.animated`).

Time is bounded too: what Pillow reads in Python, a loop turn a piece (a JPEG's markers, a
PNG's chunks, a GIF's blocks, a TIFF's tags and strips), is counted first by a cheap walk that
stops at a cap (R229, R247, R252).
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "FORMATS",
    "MAX_BYTES",
    "MAX_EDGE",
    "MAX_RLE_PIXELS",
    "ImageError",
    "PreparedImage",
    "prepare_image",
]

MAX_EDGE = 1568
MAX_BYTES = 3_750_000  # base64 of this stays under 5 MB
MAX_PIXELS = 60_000_000  # refuse decompression bombs before decoding (a JPEG: as decoded)
MAX_SCANS = 64
"""A progressive JPEG is decoded pass by pass, each over the whole image: a photo has about
ten; one of 20,000 passes (2 MB) held the image thread two minutes (R131). Counted as libjpeg
reads them (`_jpeg_scans`)."""
MAX_RLE_PIXELS = 4_000_000
"""A run-length BMP (RLE8, RLE4) is decoded by Pillow in Python, a loop turn a pixel whatever
the file's size: 32 KB of 7,745 x 7,745 rows, each one pixel and an end-of-line, held the
image thread 7-14 s and every photo behind it (R246). Screenshots and phones never make them."""
MAX_MEMORY = 256 * 1024 * 1024
"""The most preparing one image may hold at once, by `_estimate`, checked before decoding: a
PNG of 7,745 x 7,745 RGBA pixels (a 250 KB file) would take 540 MB, a 7,000 x 5,000 RGB photo
as PNG takes 150 MB. A JPEG is decoded at a reduced scale instead when that brings it under."""
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})
_ORIENTATION = 0x0112  # EXIF
_JPEG = ("JPEG", "MPO")
_MARKER = re.compile(rb"\xff([\x01-\xcf\xd8-\xfe])")
"""A JPEG marker: FF, then neither a stuffed 00, a fill FF nor a restart (D0-D7), which the
entropy-coded data of a scan holds."""
_MAX_MARKERS = 4096
"""The most markers `_jpeg_scans` walks: a photo has a few dozen (a scan's data holds none but
restarts); 19 MB of lengthless FF 01 markers held the image thread 2.6 s (R229)."""
_PNG = b"\x89PNG\r\n\x1a\n"
_MAX_PNG_CHUNKS = 10_000
"""The most chunks `_png_chunks` walks: Pillow reads each in Python on open and again on verify
(1.5 million empty ones, 18 MB, held the image thread 8-9 s: R247). A PNG has a handful of
ancillary chunks and its data split into IDAT chunks, 8 KB each from libpng: 2,500 for a 20 MB
file (the default file cap); an animated one two more a frame."""
_GIF_STEP = re.compile(rb"[!,;]")
"""Where Pillow's GIF reader stops skipping stray bytes, one a loop turn: an extension, an
image or the end."""
_MAX_GIF_BLOCKS = 200_000
"""The most sub-blocks (and stray bytes) `_gif_blocks` walks: Pillow reads a GIF's up to its
second frame in Python, a loop turn each. A 20 MB GIF's first frame, in the 255-byte sub-blocks
encoders write, has 80,000; 19 MB of stray bytes held the image thread 3.3 s (R247)."""
_MAX_GIF_COMMENT = 1_024
"""The most comment sub-blocks `_gif_blocks` takes: Pillow joins a comment a sub-block at a
time, copying it whole each time (400,000 1-byte ones, 0.8 MB, took 4-7 s: R247). A comment
is a line or two ("Created with GIMP"); 1,024 full sub-blocks are 261 KB."""
_TIFF = (b"II", b"MM")
_MAX_TIFF_PIECES = 65_536
"""The most strips (tag 273) or tiles (324) a TIFF's first image may list: Pillow makes each a
piece of its own in Python on open (twice in `_prepare`) and decodes them one a loop turn, so a
2 MB file of 1 x 2 pixels in a million 2-byte strips held the image thread 8 s (R252). A scan
has at most one strip a row (a few thousand for 7,000 rows), and `MAX_PIXELS` in 256-px tiles
is under a thousand."""
_MAX_TIFF_TAGS = 1_024
"""The most entries a TIFF's first directory may have: Pillow reads each in Python on open, and
a BigTIFF's count has no 65,535 ceiling (200,000 entries, 4 MB, took 2 s an open: R252). A
camera or scanner writes a few dozen."""
_ANIMATED = ("GIF", "WEBP", "PNG")
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
log = logging.getLogger(__name__)
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # JPEG includes MPO (phones)
"""What a photo is decoded as, whatever its file says: the formats phones, screenshots and
chat apps send. Pillow's rarely used decoders (PCX, SGI, TGA, FLI, ICNS…; EPS through
Ghostscript) are never reached from a chat."""


class ImageError(Exception):
    """The file is not an image Pillow can read; the message says why, for the user."""


@dataclass(frozen=True)
class PreparedImage:
    media_type: str
    data: bytes
    width: int
    height: int
    original: tuple[int, int]
    animated: bool = False
    """Only the first frame of an animation is sent (R227: it reached the model unsaid)."""


def _pixel_bytes(mode: str) -> int:
    """What Pillow keeps a pixel in: one byte for 1-bit, grey and palette images, two for
    16-bit grey, four for the rest (RGB too is stored in four)."""
    if mode in ("1", "L", "P"):
        return 1
    return 2 if mode.startswith("I;16") else 4


def _estimate(width: int, height: int, mode: str, alpha: bool) -> int:
    """About the most memory `_prepare` holds at once for an image decoded at `width` x
    `height` in `mode`: the decoded image with its shrunk copy (and the premultiplied copy
    Pillow makes to shrink one with transparency), then its conversion to RGB or RGBA, then
    the resize to the size sent."""
    pixels = width * height
    size = _pixel_bytes(mode)
    factor = max(width, height) // (2 * MAX_EDGE)
    peak = 0
    if factor >= 2:
        width, height = -(-width // factor), -(-height // factor)
        premultiplied = pixels * 4 if mode in ("RGBA", "LA") else 0
        peak = pixels * size + premultiplied + width * height * size
        pixels = width * height
    converted = pixels * 4 if mode != ("RGBA" if alpha else "RGB") else 0
    premultiplied = pixels * 4 if alpha else 0
    resized = MAX_EDGE * max(width, height) * 4  # the first of two passes
    return max(peak, pixels * size + converted, pixels * 4 + premultiplied + resized)


def _decoder_memory(image: Any, original: tuple[int, int]) -> int:
    """What the decoder itself holds beside Pillow's image (R131): libwebp decodes into two
    canvases of its own, and libjpeg keeps a progressive JPEG's coefficients, two bytes each,
    for every component at full size however small the decoded image (a 2 KB WebP took 790 MiB,
    a progressive CMYK JPEG 510)."""
    pixels = original[0] * original[1]
    if image.format == "WEBP":
        return 12 * pixels
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
        most = max(h * v for _, h, v, _ in layers) or 1
        return int(2 * pixels * sum(h * v for _, h, v, _ in layers) / most)
    return 0


def _alpha(image: Any) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )


def _draft(image: Any) -> None:
    """A JPEG decoded by libjpeg at a reduced scale (1/2, 1/4 or 1/8, from the compressed data):
    the most reduced that still leaves its long edge at twice the size sent (below a 6,272-px edge
    nothing changes: `reduce` took it there after a full decode), or else the size sent, when
    twice that would still take more than `MAX_MEMORY` (a CMYK print file)."""
    if image.format not in ("JPEG", "MPO"):
        return
    width, height = image.size
    longest = max(width, height)
    # libjpeg's scale is the smaller of width // w and height // h: asked for per axis, a long,
    # thin image is scaled by its long edge too
    for target in (2 * MAX_EDGE, MAX_EDGE):
        asked = (max(1, width * target // longest), max(1, height * target // longest))
        most = min(width // asked[0], height // asked[1])
        scale = next((s for s in (8, 4, 2) if most >= s), 1)
        decoded = (-(-width // scale), -(-height // scale))
        if _estimate(*decoded, image.mode, _alpha(image)) <= MAX_MEMORY:
            break
    if scale > 1:
        image.draft("RGB", asked)


def _jpeg_scans(raw: bytes) -> int:
    """The scans (SOS markers) of a JPEG's first image, as libjpeg reads them, counted up to
    one past `MAX_SCANS`: each segment skipped by its length (an EXIF thumbnail is no scan),
    a scan's data and any stray bytes up to the next marker, and nothing after the first EOI.
    R227: FF DA counted anywhere in the file counted a motion photo's video, appended after
    the photo (a 5 MB clip: 80 "scans"), and the photo was refused."""
    scans, pos = 0, 2
    for _ in range(_MAX_MARKERS):
        if scans > MAX_SCANS or (found := _MARKER.search(raw, pos)) is None:
            return scans
        marker, at = found[1][0], found.start()
        if marker == 0xD9:  # EOI: the end of the image libjpeg decodes
            return scans
        if marker == 0x01 or marker == 0xD8:  # TEM, SOI: no length follows
            pos = found.end()
            continue
        scans += marker == 0xDA
        pos = at + 2 + max(2, int.from_bytes(raw[at + 2 : at + 4], "big"))
    return MAX_SCANS + 1  # markers no photo has: refused as the passes are (R229)


def _png_chunks(raw: bytes) -> int:
    """The chunks of a PNG up to its IEND (what Pillow reads), counted up to one past
    `_MAX_PNG_CHUNKS`: each skipped by its length, unread."""
    pos = len(_PNG)
    for chunks in range(_MAX_PNG_CHUNKS + 1):
        if pos + 8 > len(raw) or raw[pos + 4 : pos + 8] == b"IEND":
            return chunks
        pos += 12 + int.from_bytes(raw[pos : pos + 4], "big")
    return _MAX_PNG_CHUNKS + 1


def _gif_blocks(raw: bytes) -> str | None:
    """Why a GIF is refused, or None: its pieces read the way Pillow's reader reads them, up to
    the second frame's image descriptor (`is_animated` stops there) or the trailer, and counted
    up to `_MAX_GIF_BLOCKS` sub-blocks and stray bytes, `_MAX_GIF_COMMENT` of them comments."""
    flags = raw[10] if len(raw) > 10 else 0
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    steps = comment = frames = 0
    while steps <= _MAX_GIF_BLOCKS and comment <= _MAX_GIF_COMMENT:
        if pos >= len(raw) or raw[pos] == 0x3B:  # the end: the trailer
            return None
        if raw[pos] == 0x21:  # an extension: its label, then sub-blocks
            counted = raw[pos + 1 : pos + 2] == b"\xfe"  # a comment
            pos += 2
        elif raw[pos] == 0x2C:  # an image: its descriptor, colour table, code size, sub-blocks
            frames += 1
            if frames == 2:
                return None
            flags = raw[pos + 9] if pos + 9 < len(raw) else 0
            pos += 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            counted = False
        else:  # stray bytes, skipped one a turn by Pillow
            found = _GIF_STEP.search(raw, pos)
            end = found.start() if found else len(raw)
            steps, pos = steps + end - pos, end
            continue
        while steps <= _MAX_GIF_BLOCKS and comment <= _MAX_GIF_COMMENT:
            size = raw[pos] if pos < len(raw) else 0
            steps, comment, pos = steps + 1, comment + counted, pos + 1 + size
            if not size:
                break
    if comment > _MAX_GIF_COMMENT:
        return "it is too large to open (a GIF with a longer comment than a picture has)"
    return "it is too large to open (a GIF in more pieces than a picture has)"


def _tiff_pieces(raw: bytes) -> int:
    """The most strips or tiles the first directory of a TIFF (classic, or BigTIFF: 8-byte
    counts and offsets) lists, read from its entries' counts unread; past `_MAX_TIFF_PIECES`
    when the directory has more entries than `_MAX_TIFF_TAGS`. A header or directory cut short
    counts 0: left to Pillow, which refuses it as unreadable. Pillow tells BigTIFF by the third
    byte alone (a big-endian one, 00 2B, it reads as classic), so such a header is walked both
    ways."""
    order = "<" if raw[:2] == b"II" else ">"
    most = 0
    for big in {raw[2:3] == b"\x2b", raw[2:4] in (b"\x2b\x00", b"\x00\x2b")}:
        head, entry, count = ("Q", "HHQ8x", 8) if big else ("I", "HHI4x", 2)
        try:
            (at,) = struct.unpack_from(order + head, raw, 8 if big else 4)
            (tags,) = struct.unpack_from(order + ("Q" if big else "H"), raw, at)
        except (struct.error, OverflowError):  # cut short, or a BigTIFF offset past 2**63
            continue
        if tags > _MAX_TIFF_TAGS:
            return _MAX_TIFF_PIECES + 1
        size = struct.calcsize(order + entry)
        listed = raw[at + count : at + count + tags * size]
        listed = listed[: len(listed) - len(listed) % size]
        for tag, _, pieces in struct.iter_unpack(order + entry, listed):
            if tag in (273, 324):
                most = max(most, pieces)
    return most


def _too_large(exc: Exception) -> ImageError:
    """Pillow's own refusal of an image over ~179 megapixels, said as too large (R227: it was
    "not an image I can read", as if the photo were damaged)."""
    found = _BOMB_PIXELS.search(str(exc))
    size = f" ({int(found[1]) / 1e6:,.0f} megapixels)" if found else ""
    return ImageError(f"it is too large to open{size}")


def _eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit or 32-bit grey image scaled to 8 bits: converted as it is, every value above
    255 is clipped to white (R148: a 16-bit scan came to the model as a blank picture)."""
    if image.mode.startswith("I;16"):
        return image.convert("I").point(lambda v: v / 256).convert("L")
    if image.mode in ("I", "F"):
        low, high = image.getextrema()
        if high > 255 or low < 0:
            span = max(float(high) - float(low), 1.0)
            return image.point(lambda v: (v - low) * 255 / span).convert("L")
    return image


def _prepare(raw: bytes) -> PreparedImage:
    from PIL import Image, UnidentifiedImageError  # on the first image, not at start-up

    # R247: pieces Pillow would read one at a time in Python, counted before it reads them
    if raw.startswith(_PNG) and _png_chunks(raw) > _MAX_PNG_CHUNKS:
        raise ImageError("it is too large to open (a PNG in more pieces than a picture has)")
    if raw[:6] in (b"GIF87a", b"GIF89a") and (refused := _gif_blocks(raw)):
        raise ImageError(refused)
    if raw[:2] in _TIFF and _tiff_pieces(raw) > _MAX_TIFF_PIECES:  # R252
        raise ImageError("it is too large to open (a TIFF in more pieces than a picture has)")
    try:
        with Image.open(io.BytesIO(raw), formats=FORMATS) as probe:
            # a JPEG's cap is on the size it is decoded at, once reduced (below)
            if probe.format not in _JPEG and probe.width * probe.height > MAX_PIXELS:
                raise ImageError(f"it is too large to open ({probe.width}x{probe.height} px)")
            probe.verify()
        image = Image.open(io.BytesIO(raw), formats=FORMATS)
        original = image.size
        run_length = image.format == "BMP" and image.info.get("compression") in (1, 2)
        if run_length and image.width * image.height > MAX_RLE_PIXELS:
            raise ImageError(f"it is too large to open ({image.width}x{image.height} px)")
        if image.format in _JPEG and _jpeg_scans(raw) > MAX_SCANS:
            raise ImageError("it is a JPEG of more passes than a photo has")
        animated = image.format in _ANIMATED and bool(getattr(image, "is_animated", False))
        _draft(image)
        held = _estimate(*image.size, image.mode, _alpha(image)) + _decoder_memory(image, original)
        if image.width * image.height > MAX_PIXELS or held > MAX_MEMORY:
            raise ImageError(f"it is too large to open ({original[0]}x{original[1]} px)")
        image.load()  # the first frame of an animation
    except Image.DecompressionBombError as exc:
        raise _too_large(exc) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # ValueError: a TIFF whose directory is past its end ("Unable to seek to frame", R252)
        if isinstance(exc, ImageError):
            raise
        raise ImageError("it is not an image I can read") from None
    try:
        orientation = image.getexif().get(_ORIENTATION, 1)
    except Exception:  # a damaged EXIF block (struct.error and the like): sent unrotated
        log.info("an image's EXIF orientation could not be read; sent as it is")
        orientation = 1
    alpha = _alpha(image)
    # Shrink in the file's own mode first, to twice the size sent: converting a large palette
    # image to RGBA first took four bytes a pixel (a 7 KB PNG of 7,745 x 7,745: 470 MB). No
    # step copies the decoded image whole: it is turned upright once shrunk, and converted only
    # when its mode is not already the one sent.
    factor = max(image.width, image.height) // (2 * MAX_EDGE)
    try:
        if factor >= 2:
            smaller = (max(1, image.width // factor), max(1, image.height // factor))
            if image.mode in _REDUCIBLE:
                image = image.reduce(factor)
            else:  # palette, 1-bit, 16-bit grey…: what reduce() refuses
                image = image.resize(smaller, Image.Resampling.NEAREST)
        turns = {
            2: Image.Transpose.FLIP_LEFT_RIGHT,
            3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM,
            5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270,
            7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90,
        }  # as ImageOps.exif_transpose turns them, which copied the whole image when it did not
        upright = turns.get(orientation) if isinstance(orientation, int) else None
        if upright is not None:
            image = image.transpose(upright)
        image = _eight_bit(image)
        mode = "RGBA" if alpha else "RGB"
        if image.mode != mode:
            image = image.convert(mode)
        image.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    except (ValueError, OSError) as exc:  # a mode or a file Pillow cannot take further
        raise ImageError(f"it is an image I cannot convert ({image.mode})") from exc
    # R247: only the pixels are sent (turned upright above). Pillow copies a GIF's comment into
    # the JPEG, where one over 64 KB is an OSError, and a PNG's colour profile into the PNG.
    image.info = {}
    out = io.BytesIO()
    try:
        if alpha:
            image.save(out, "PNG", optimize=True)
            media_type = "image/png"
            if out.tell() > MAX_BYTES:  # a huge PNG: flatten it to JPEG instead
                image = image.convert("RGB")
                alpha = False
        if not alpha:
            quality = 85
            while True:
                out = io.BytesIO()
                image.save(out, "JPEG", quality=quality, optimize=True)
                if out.tell() <= MAX_BYTES or quality <= 40:
                    break
                quality -= 15
            media_type = "image/jpeg"
    except (ValueError, OSError) as exc:
        raise ImageError("it is an image I cannot convert") from exc
    return PreparedImage(media_type, out.getvalue(), image.width, image.height, original, animated)


_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="steward-image")
"""Where images are prepared: one at a time, always on the same thread. Several photos arriving
together (an album, a few chats at once) each took their share of memory at the same moment
on the shared pool (four 7,745-px images: 2.1 GB), and even one after another on different
threads, each thread's malloc arena kept what its image had freed."""


async def prepare_image(raw: bytes) -> PreparedImage:
    """`raw` as an image the model takes; raises `ImageError` for what is no image.

    When the caller stops waiting (a cancelled turn), an image still queued is dropped; one
    being prepared finishes first (a thread cannot be stopped), and the next starts after it."""
    return await asyncio.get_running_loop().run_in_executor(_worker, _prepare, raw)
