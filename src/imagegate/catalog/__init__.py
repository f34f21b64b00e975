"""The models offered, as data: each a row of the ``models`` table that operators manage
(catalog/service.py), read on the request path through a per-process copy (catalog/cache.py).

What stays code is the one input shape every model takes (the reference's): the size presets,
rendering speeds, output formats and the prompt's length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
# A model's name: what clients send as "model" and what queues and metrics are named by.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
DEFAULT_QUEUE = "tasks"  # a model's job queue unless the operator gives it one


@dataclass(frozen=True)
class CatalogModel:
    """One model as offered.

    ``prices``: credits per image by rendering speed (the list price; an account's plan may
    multiply it, billing/plans.py). ``reports``: the ``output.metadata.model`` its tasks show.
    ``providers``: its route, in order (None: the operator's default route). ``upstream``: per
    provider, how to call it (Replicate: ``model``, and ``input``/``values`` to map the input).
    ``queue``: the job queue its tasks go to.
    """

    name: str
    title: str
    prices: dict[str, int]
    reports: str
    sizes: tuple[str, ...] = tuple(SIZES)
    active: bool = True
    providers: tuple[str, ...] | None = None
    upstream: dict[str, dict[str, Any]] = field(default_factory=dict)
    queue: str = DEFAULT_QUEUE

    def price(self, rendering_speed: str) -> int:
        return self.prices[rendering_speed]


# The seed (migration 0011), exactly as the reference prices it. Its tasks keep the queue they
# had before the catalogue was data, so jobs deferred before the upgrade still run.
IDEOGRAM_V4 = CatalogModel(
    name="ideogram-v4",
    title="Ideogram V4",
    prices={"TURBO": 16, "BALANCED": 28, "QUALITY": 44},
    reports="ideogram-ai/ideogram-v4",
    queue="model:ideogram-v4",
)
