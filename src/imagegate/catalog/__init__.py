"""The models offered: input presets, prices and the upstream model id they report."""

from __future__ import annotations

from dataclasses import dataclass

SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "3:4": (864, 1152),
    "9:16": (720, 1280),
    "4:3": (1152, 864),
    "16:9": (1280, 720),
}
RENDERING_SPEEDS = ("TURBO", "BALANCED", "QUALITY")
OUTPUT_FORMATS = ("jpeg", "png")
MAX_PROMPT_CHARS = 5000


@dataclass(frozen=True)
class CatalogModel:
    name: str
    upstream_model: str
    prices: dict[str, int]  # credits per image by rendering speed

    def price(self, rendering_speed: str) -> int:
        return self.prices[rendering_speed]


IDEOGRAM_V4 = CatalogModel(
    name="ideogram-v4",
    upstream_model="ideogram-ai/ideogram-v4",
    prices={"TURBO": 16, "BALANCED": 28, "QUALITY": 44},
)

MODELS: dict[str, CatalogModel] = {IDEOGRAM_V4.name: IDEOGRAM_V4}


def find_model(name: str) -> CatalogModel | None:
    """The catalogue model called ``name``, or None."""
    return MODELS.get(name)
