"""Checking and converting upstream images before they are stored."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from imagegate.storage.images import UnusableImage, prepare_image


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def test_a_transparent_png_becomes_a_jpeg_on_white() -> None:
    clear = Image.new("RGBA", (64, 32), (0, 0, 0, 0))

    data = prepare_image(encode(clear, "PNG"), "jpeg", max_pixels=10_000)

    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (64, 32))
        assert all(channel > 245 for channel in image.getpixel((10, 10)))  # type: ignore[union-attr]


def test_an_image_already_in_the_format_is_kept_byte_for_byte() -> None:
    original = encode(Image.new("RGB", (40, 40), (200, 10, 10)), "PNG")

    assert prepare_image(original, "png", max_pixels=10_000) == original


def test_webp_is_accepted_and_converted() -> None:
    data = prepare_image(encode(Image.new("RGB", (20, 20)), "WEBP"), "png", max_pixels=10_000)

    assert Image.open(io.BytesIO(data)).format == "PNG"


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    # 1-bit PNG of 9,000 x 9,000: a few kB on the wire, 81 megapixels once decoded.
    bomb = encode(Image.new("1", (9_000, 9_000)), "PNG")
    assert len(bomb) < 100_000

    with pytest.raises(UnusableImage, match="more than"):
        prepare_image(bomb, "jpeg", max_pixels=40_000_000)


@pytest.mark.parametrize(
    "data",
    [
        b"<html>not an image</html>",
        encode(Image.frombytes("RGB", (100, 100), os.urandom(30_000)), "PNG")[:5000],  # cut
        encode(Image.new("RGB", (10, 10)), "GIF"),  # not a format we take
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(UnusableImage):
        prepare_image(data, "jpeg", max_pixels=10_000)
