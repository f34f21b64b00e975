"""Checking an upstream's image and converting it to the task's output format (Pillow).

Runs in a thread (it decodes whole images). The pixel count is checked from the header before
anything is decoded, so a decompression bomb is refused without being expanded.
"""

from __future__ import annotations

import io

from PIL import Image

ACCEPTED_FORMATS = {"PNG", "JPEG", "WEBP"}
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG"}
JPEG_QUALITY = 92


class UnusableImage(ValueError):
    """Not an image we accept (not decodable, not PNG/JPEG/WebP, or too many pixels)."""


def prepare_image(data: bytes, output_format: str, max_pixels: int) -> bytes:
    """``data`` checked and encoded as ``output_format`` (jpeg | png); unchanged when it
    already is one. Raises UnusableImage."""
    target = PIL_FORMATS[output_format]
    try:
        with Image.open(io.BytesIO(data)) as probe:
            _check_header(probe, max_pixels)
            probe.verify()  # checksums and structure, without decoding the pixels
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.format == target:
                return data
            return _encode(image, target)
    except UnusableImage:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnusableImage(f"not a valid image: {exc}") from None


def _check_header(image: Image.Image, max_pixels: int) -> None:
    if image.format not in ACCEPTED_FORMATS:
        raise UnusableImage(f"unexpected image format {image.format}")
    width, height = image.size
    if width * height > max_pixels:
        raise UnusableImage(f"{width}x{height} is more than {max_pixels:,} pixels")


def _encode(image: Image.Image, target: str) -> bytes:
    if target == "JPEG" and image.mode != "RGB":
        image = _flatten(image)
    out = io.BytesIO()
    if target == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        image.save(out, "PNG", optimize=False)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency is composited onto white, as viewers show it."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")
