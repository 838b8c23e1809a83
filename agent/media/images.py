"""Images for the model: decoded and re-encoded with Pillow, downscaled to the model's limits.

Anthropic downscales anything with a long edge over 1568 px (and refuses over 8000 px or about
5 MB), so sending more only costs upload time and tokens: the image is shrunk to a 1568-px long
edge, turned upright by its EXIF orientation, and sent as JPEG (PNG when it has transparency).
Re-encoding also drops metadata (GPS position) and anything hidden after the image data.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass

__all__ = ["FORMATS", "MAX_BYTES", "MAX_EDGE", "ImageError", "PreparedImage", "prepare_image"]

MAX_EDGE = 1568
MAX_BYTES = 3_750_000  # base64 of this stays under 5 MB
MAX_PIXELS = 60_000_000  # refuse decompression bombs before decoding
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "RGBX", "CMYK", "I", "F"})
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


def _prepare(raw: bytes) -> PreparedImage:
    from PIL import Image, ImageOps, UnidentifiedImageError  # on the first image, not at start-up

    try:
        with Image.open(io.BytesIO(raw), formats=FORMATS) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise ImageError(f"it is too large to open ({probe.width}x{probe.height} px)")
            probe.verify()
        image = Image.open(io.BytesIO(raw), formats=FORMATS)
        image.load()  # the first frame of an animation
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError("it is not an image I can read") from None
    original = image.size
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception:  # a damaged EXIF block (struct.error and the like): sent unrotated
        log.info("an image's EXIF orientation could not be read; sent as it is")
    alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    # Shrink in the file's own mode first, to twice the size sent: converting a large palette
    # image to RGBA first took four bytes a pixel (a 7 KB PNG of 7,745 x 7,745: 470 MB).
    factor = max(image.width, image.height) // (2 * MAX_EDGE)
    try:
        if factor >= 2:
            smaller = (max(1, image.width // factor), max(1, image.height // factor))
            if image.mode in _REDUCIBLE:
                image = image.reduce(factor)
            else:  # palette, 1-bit, 16-bit grey…: what reduce() refuses
                image = image.resize(smaller, Image.Resampling.NEAREST)
        image = image.convert("RGBA" if alpha else "RGB")
        image.thumbnail((MAX_EDGE, MAX_EDGE), Image.Resampling.LANCZOS)
    except (ValueError, OSError) as exc:  # a mode or a file Pillow cannot take further
        raise ImageError(f"it is an image I cannot convert ({image.mode})") from exc
    out = io.BytesIO()
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
    return PreparedImage(media_type, out.getvalue(), image.width, image.height, original)


async def prepare_image(raw: bytes) -> PreparedImage:
    """`raw` as an image the model takes; raises `ImageError` for what is no image."""
    return await asyncio.to_thread(_prepare, raw)
