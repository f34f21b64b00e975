"""The built-in offline image simulator: a stand-in provider that never leaves the machine.

It draws a deterministic abstract picture seeded by the prompt (a two-colour gradient with a
few soft shapes), then typesets the prompt's quoted text (``"Daily Brew"`` or ``“Daily Brew”``)
large and high-contrast in the centre, so tests and demos can check that text made it into the
picture. A prompt without quoted text gets a small caption of its first few words instead.
The same prompt, size and format always give identical bytes (the last few are kept, not
drawn again). No network access and no system font is needed: the text uses Pillow's bundled
FreeType font.

Failure simulation: a prompt containing ``[simulate:upstream_error]`` makes ``generate`` raise
``ProviderError("Image generation failed")`` (code ``upstream_error``, not retryable) after the
usual delay, as a real upstream failure would.
"""

from __future__ import annotations

import asyncio
import colorsys
import functools
import hashlib
import io
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from imagegate.providers.base import GeneratedImage, GenerationRequest, ProviderError

SIMULATE_UPSTREAM_ERROR = "[simulate:upstream_error]"

_QUOTED = re.compile(r'["“]([^"“”]+)["”]')
_CAPTION_WORDS = 6
_CAPTION_CHARS = 40
_MAX_WORDS = 40  # of quoted text: keeps wrapping cheap and the text legible
_MIN_FONT_SIZE = 8
_PANEL_ALPHA = 225
_REFERENCE_SIZE = 100
_LINE_SPACING = 0.35  # extra gap between lines, as a fraction of the font size
_BACKGROUND_SCALE = 4  # the background is painted at 1/4 size: it is blurred anyway

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]
Font = ImageFont.FreeTypeFont


@dataclass(frozen=True)
class _Theme:
    """Colours for one picture.

    OCR engines such as tesseract binarise each colour channel separately and drop a bright or
    dark minority region as if it were ink. So every channel of the background stays on the far
    side from the ink (all light, or all dark), and the panel behind the text is the
    background's own mean colour: in every channel the ink is then the only outlier.
    """

    lightness: tuple[float, float]  # range for background colours
    ink: RGB


def _theme(rng: random.Random, hue: float) -> _Theme:
    """A light pastel theme with dark ink, or (less often) a dark one with light ink."""
    if rng.random() < 0.3:
        return _Theme((0.12, 0.24), _colour(hue, 0.96, 0.5))
    return _Theme((0.8, 0.9), _colour(hue, 0.1, 0.5))


def render_image(prompt: str, width: int, height: int, output_format: str) -> bytes:
    """A deterministic ``width`` x ``height`` picture for ``prompt``, encoded as png or jpeg."""
    seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    rng = random.Random(seed)
    hue = rng.random()
    theme = _theme(rng, hue)
    image = _background(rng, hue, theme, (width, height))
    short_side = min(width, height)
    quoted = _quoted_parts(prompt)
    caption = _caption(prompt)
    if quoted:
        _typeset(image, quoted, theme, (0.8 * width, 0.5 * height), 0.1 * short_side)
    elif caption:
        _typeset(image, [caption], theme, (0.6 * width, 0.12 * height), 0.04 * short_side)
    return _encode(image, output_format)


def _quoted_parts(prompt: str) -> list[str]:
    """The whitespace-normalised texts between double quotes, straight or typographic."""
    parts: list[str] = []
    budget = _MAX_WORDS
    for match in _QUOTED.findall(prompt):
        words = match.split()[:budget]
        budget -= len(words)
        if words:
            parts.append(" ".join(words))
    return parts


def _caption(prompt: str) -> str:
    """The first few words of the prompt, short enough to read at a glance."""
    words = prompt.replace(SIMULATE_UPSTREAM_ERROR, " ").split()[:_CAPTION_WORDS]
    caption = " ".join(words)
    if len(caption) > _CAPTION_CHARS:
        caption = caption[: _CAPTION_CHARS - 1].rstrip() + "…"
    return caption


def _colour(hue: float, lightness: float, saturation: float) -> RGB:
    red, green, blue = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return round(red * 255), round(green * 255), round(blue * 255)


def _background(
    rng: random.Random, hue: float, theme: _Theme, size: tuple[int, int]
) -> Image.Image:
    """A soft two-colour gradient with translucent circles and bands, at full ``size``."""
    small = (max(1, size[0] // _BACKGROUND_SCALE), max(1, size[1] // _BACKGROUND_SCALE))
    # Rotating the gradient then cropping its centre keeps the corners free of fill colour.
    mask = Image.linear_gradient("L").rotate(rng.uniform(0, 360), Image.Resampling.BILINEAR)
    mask = mask.crop((38, 38, 218, 218)).resize(small, Image.Resampling.BILINEAR)
    start = Image.new("RGB", small, _colour(hue, rng.uniform(*theme.lightness), 0.65))
    end_hue = hue + rng.uniform(0.08, 0.3)
    end = Image.new("RGB", small, _colour(end_hue, rng.uniform(*theme.lightness), 0.65))
    canvas = Image.composite(end, start, mask)
    # An "RGBA" draw blends each translucent shape into the RGB canvas as it is drawn.
    _shapes(ImageDraw.Draw(canvas, "RGBA"), rng, hue, theme, small)
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=max(small) / 80))
    return canvas.resize(size, Image.Resampling.BILINEAR)


def _shapes(
    draw: ImageDraw.ImageDraw,
    rng: random.Random,
    hue: float,
    theme: _Theme,
    size: tuple[int, int],
) -> None:
    """A few translucent circles and diagonal bands in colours near ``hue``."""
    width, height = size
    for _ in range(rng.randint(4, 7)):
        radius = rng.uniform(0.08, 0.3) * max(width, height)
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        fill = _colour(hue + rng.uniform(-0.15, 0.35), rng.uniform(*theme.lightness), 0.7)
        circle = (x - radius, y - radius, x + radius, y + radius)
        draw.ellipse(circle, fill=(*fill, rng.randint(90, 190)))
    for _ in range(rng.randint(1, 2)):
        left, right = rng.uniform(-0.2, 1.2) * width, rng.uniform(-0.2, 1.2) * width
        thickness = rng.uniform(0.05, 0.15) * width
        fill = _colour(hue + rng.uniform(0.4, 0.6), rng.uniform(*theme.lightness), 0.6)
        band = [(left, 0), (left + thickness, 0), (right + thickness, height), (right, height)]
        draw.polygon(band, fill=(*fill, rng.randint(70, 140)))


def _wrap(words: list[tuple[str, float]], space: float, limit: float) -> list[str]:
    """Greedy wrap of (word, width) pairs into lines no wider than ``limit``."""
    lines: list[list[str]] = []
    line_width = 0.0
    for word, width in words:
        if lines and line_width + space + width <= limit:
            lines[-1].append(word)
            line_width += space + width
        else:
            lines.append([word])
            line_width = width
    return [" ".join(line) for line in lines]


def _wrappings(parts: list[str], font: Font) -> list[str]:
    """For each possible line count, fewest first, the wrapping with the narrowest widest line.

    Each part is its own paragraph. Widths are summed per word, so wrapping stays cheap.
    """
    space = font.getlength(" ")
    paragraphs = [[(word, font.getlength(word)) for word in part.split()] for part in parts]
    limits: set[float] = set()
    for words in paragraphs:
        for first in range(len(words)):
            run = -space
            for _, width in words[first:]:
                run += space + width
                limits.add(run)
    by_count: dict[int, str] = {}
    for limit in sorted(limits):
        lines = [line for words in paragraphs for line in _wrap(words, space, limit)]
        by_count.setdefault(len(lines), "\n".join(lines))
    return [by_count[count] for count in sorted(by_count)]


def _block_size(text: str, font: Font) -> tuple[float, float]:
    """Width and height of ``text`` drawn as a centred multi-line block in ``font``."""
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = draw.multiline_textbbox(
        (0, 0), text, font=font, spacing=_spacing(font), align="center"
    )
    return right - left, bottom - top


def _spacing(font: Font) -> int:
    """The extra gap between lines for ``font``."""
    return round(font.size * _LINE_SPACING)


def _font(size: int) -> Font:
    """Pillow's bundled font at ``size`` pixels; no system font is needed."""
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        # Without FreeType Pillow falls back to a tiny fixed-size bitmap font.
        raise RuntimeError("the image simulator needs Pillow built with FreeType support")
    return font


def _layout(
    parts: list[str], max_width: float, max_height: float, comfortable: float
) -> tuple[Font, str]:
    """A font and a wrapping of ``parts`` (one paragraph each) that fits the box.

    Takes the fewest lines whose font reaches ``comfortable`` pixels, else the largest font.
    """
    reference = _font(_REFERENCE_SIZE)
    best_size, best_text = 0, "\n".join(parts)
    for text in _wrappings(parts, reference):
        block_width, block_height = _block_size(text, reference)
        size = int(_REFERENCE_SIZE * min(max_width / block_width, max_height / block_height))
        if size > best_size:
            best_size, best_text = size, text
        if best_size >= comfortable:
            break
    # Glyph hinting is not exactly linear in size, so shrink until the real measurement fits.
    font = _font(max(best_size, _MIN_FONT_SIZE))
    while font.size > _MIN_FONT_SIZE:
        block_width, block_height = _block_size(best_text, font)
        if block_width <= max_width and block_height <= max_height:
            break
        font = _font(max(int(font.size * 0.96), _MIN_FONT_SIZE))
    return font, best_text


def _typeset(
    image: Image.Image,
    parts: list[str],
    theme: _Theme,
    box: tuple[float, float],
    comfortable: float,
) -> None:
    """Draw ``parts`` centred on ``image`` in the theme's ink on a rounded panel.

    The text fits a ``box`` (width, height) and prefers fewer lines once ``comfortable`` px tall.
    """
    font, text = _layout(parts, box[0], box[1], comfortable)
    size = font.size
    spacing = _spacing(font)
    draw = ImageDraw.Draw(image)
    left, top, right, bottom = draw.multiline_textbbox(
        (0, 0), text, font=font, spacing=spacing, align="center"
    )
    x = (image.width - (right - left)) / 2 - left
    y = (image.height - (bottom - top)) / 2 - top
    pad_x, pad_y = size * 0.5, size * 0.35
    panel_box = (x + left - pad_x, y + top - pad_y, x + right + pad_x, y + bottom + pad_y)
    red, green, blue = image.resize((1, 1), Image.Resampling.BOX).tobytes()
    _panel(image, panel_box, size * 0.4, (red, green, blue, _PANEL_ALPHA))
    draw.multiline_text((x, y), text, font=font, fill=theme.ink, spacing=spacing, align="center")


def _panel(
    image: Image.Image, box: tuple[float, float, float, float], radius: float, tint: RGBA
) -> None:
    """Blend a rounded rectangle of ``tint`` into ``image`` over ``box``."""
    left, top = max(0, int(box[0])), max(0, int(box[1]))
    right, bottom = min(image.width, int(box[2]) + 1), min(image.height, int(box[3]) + 1)
    # Only the panel's own region is masked and pasted: a full-size overlay costs ~20 ms.
    mask = Image.new("L", (right - left, bottom - top), 0)
    shape = (box[0] - left, box[1] - top, box[2] - left, box[3] - top)
    ImageDraw.Draw(mask).rounded_rectangle(shape, radius=radius, fill=tint[3])
    image.paste(tint[:3], (left, top, right, bottom), mask)


def _encode(image: Image.Image, output_format: str) -> bytes:
    """``image`` as png or jpeg bytes."""
    buffer = io.BytesIO()
    if output_format == "png":
        # Level 4 is about 40% faster than the default 6 for ~20% larger files.
        image.save(buffer, format="PNG", compress_level=4)
    elif output_format == "jpeg":
        image.save(buffer, format="JPEG", quality=90)
    else:
        raise ValueError(f"unsupported output format: {output_format!r}")
    return buffer.getvalue()


# The pictures drawn last, by (prompt, width, height, format): a picture costs 20-70 ms of CPU,
# and a load test, a demo or a test suite asks for the same few prompts again and again. An
# upstream draws on machines of its own; drawn here, each repeat competed for the gateway's
# cores (bench/e2e.py's tasks share one prompt). At most 32 pictures of at most ~0.2 MB.
_rendered = functools.lru_cache(maxsize=32)(render_image)


class SimulatorProvider:
    """A Provider that renders images locally, taking a configurable, speed-dependent time."""

    name = "simulator"

    def __init__(self, delay_for: Callable[[str], float]) -> None:
        self._delay_for = delay_for

    async def generate(self, request: GenerationRequest) -> list[GeneratedImage]:
        """One simulated image for ``request``, or ProviderError when the prompt asks for it."""
        delay = self._delay_for(request.rendering_speed)
        if SIMULATE_UPSTREAM_ERROR in request.prompt:
            await asyncio.sleep(delay)
            raise ProviderError("Image generation failed", code="upstream_error", retryable=False)
        # The picture is drawn during the delay, not after it: a generation takes D seconds in
        # all, as an upstream's would, and none of the gateway's measured overhead is drawing.
        rendering = asyncio.to_thread(
            _rendered, request.prompt, request.width, request.height, request.output_format
        )
        data, _ = await asyncio.gather(rendering, asyncio.sleep(delay))
        return [GeneratedImage(data, request.output_format)]
