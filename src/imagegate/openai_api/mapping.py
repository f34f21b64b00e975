"""How OpenAI's request fields map to the reference's input, in one place (the README's table).

``size``: OpenAI's sizes go to the preset of the nearest aspect ratio the model offers:
1024x1024, 512x512 and 256x256 to 1:1, 1792x1024 to 16:9, 1024x1792 to 9:16, 1536x1024 to 4:3,
1024x1536 to 3:4; any other WIDTHxHEIGHT likewise; ``auto`` (or none) to 1:1 where offered.
``quality``: standard and medium to BALANCED, hd and high to QUALITY, low to TURBO, auto (or
none) to BALANCED.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from imagegate.catalog import SIZES
from imagegate.errors import InvalidRequest

QUALITIES = {
    "standard": "BALANCED",
    "medium": "BALANCED",
    "auto": "BALANCED",
    "hd": "QUALITY",
    "high": "QUALITY",
    "low": "TURBO",
}
_SIZE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")


def preset(size: str | None, offered: Sequence[str]) -> str:
    """The preset among ``offered`` nearest to OpenAI's ``size`` in aspect ratio."""
    if size is None or size == "auto":
        width, height = 1, 1
    else:
        found = _SIZE.match(size)
        if found is None:
            raise InvalidRequest(
                f"'size' must be WIDTHxHEIGHT (e.g. 1024x1024, 1792x1024) or auto, not {size!r}."
            )
        width, height = int(found.group(1)), int(found.group(2))
    wanted = math.log(width / height)
    return min(offered, key=lambda name: abs(math.log(SIZES[name][0] / SIZES[name][1]) - wanted))


def speed(quality: str | None) -> str:
    """The rendering speed for OpenAI's ``quality``."""
    if quality is None:
        return "BALANCED"
    if quality not in QUALITIES:
        raise InvalidRequest(f"'quality' must be one of: {', '.join(QUALITIES)}.")
    return QUALITIES[quality]
