"""What operators do with the catalogue: list, show, create, update, activate, deactivate.

The admin CLI (cli/models.py) and the console's operator page reach these same functions. Each
takes the caller's transaction (a ``Tx``; SessionTx over a session) and never commits. A change
bumps the catalogue's version in that transaction, so every API process's next create sees it
(catalog/cache.py): a deactivated model is 404 model_not_found there, a new price is charged
from then on, and tasks already accepted keep the price they were charged and run to the end.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from imagegate.catalog import NAME_PATTERN, RENDERING_SPEEDS, SIZES, CatalogModel, store
from imagegate.db.sql import Tx
from imagegate.providers.base import PROVIDER_NAMES
from imagegate.providers.replicate_input import check_options

MAX_PRICE = 10**12  # credits; any more is a typo
RESERVED_QUEUES = ("callbacks", "maintenance")
_QUEUE = re.compile(r"^[a-z0-9][a-z0-9:._-]{0,63}$")


class CatalogError(ValueError):
    """A refused model, with the field it came from and a message for people."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ModelMissing(LookupError):
    pass


@dataclass(frozen=True)
class ModelChange:
    """Only the fields given change (``update``); ``create`` needs title, prices and reports."""

    title: str | None = None
    prices: dict[str, int] | None = None
    reports: str | None = None
    sizes: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    clear_providers: bool = False  # back to the default route
    upstream: dict[str, dict[str, Any]] | None = None
    queue: str | None = None
    active: bool | None = None

    def fields(self) -> dict[str, Any]:
        if self.clear_providers and self.providers is not None:
            raise CatalogError("providers", "give a route or the default route, not both")
        given = {
            name: value
            for name, value in vars(self).items()
            if value is not None and name != "clear_providers"
        }
        if self.clear_providers:
            given["providers"] = None
        return given


def parse_upstream(text: str) -> dict[str, Any]:
    """Upstream options as operators type them (JSON, in the CLI and the console), or
    CatalogError; whether they are allowed is check_model's to say."""
    try:
        upstream = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogError("upstream", f"not valid JSON ({exc})") from None
    if not isinstance(upstream, dict):
        raise CatalogError("upstream", 'must be a JSON object, e.g. {"replicate": {...}}')
    return upstream


async def list_models(tx: Tx) -> list[CatalogModel]:
    return await store.all_models(tx)


async def get_model(tx: Tx, name: str) -> CatalogModel:
    model = await store.find(tx, name)
    if model is None:
        raise ModelMissing(f"no model {name!r}")
    return model


async def create_model(tx: Tx, name: str, change: ModelChange, now: float) -> CatalogModel:
    """A new model (active unless ``change.active`` is False), or CatalogError."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise CatalogError(
            "name",
            "a model's name is 1-64 characters: lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit",
        )
    for needed in ("title", "prices", "reports"):
        if getattr(change, needed) is None:
            raise CatalogError(needed, f"a new model needs its {needed}")
    base = CatalogModel(name=name, title="", prices={}, reports="")
    model = check_model(replace(base, **change.fields()))
    if not await store.insert(tx, model, now):  # (also when another create just took it)
        raise CatalogError("name", f"a model named {name!r} exists already")
    return model


async def update_model(tx: Tx, name: str, change: ModelChange, now: float) -> CatalogModel:
    """The model with ``change`` applied (``prices`` may give only some speeds), or CatalogError
    (nothing changed) / ModelMissing. The row is held until the commit, so two operators
    changing different fields at once both keep their change."""
    current = await store.find(tx, name, for_update=True)
    if current is None:
        raise ModelMissing(f"no model {name!r}")
    fields = change.fields()
    if "prices" in fields:
        fields["prices"] = {**current.prices, **fields["prices"]}
    model = check_model(replace(current, **fields))
    await store.update(tx, model, now)
    return model


async def set_active(tx: Tx, name: str, active: bool, now: float) -> CatalogModel:
    """Offer the model again, or stop offering it (its accepted tasks still run)."""
    model = await store.set_active(tx, name, active, now)
    if model is None:
        raise ModelMissing(f"no model {name!r}")
    return model


def check_model(model: CatalogModel) -> CatalogModel:
    """``model`` if every field is valid, else CatalogError naming the first bad one."""
    if not model.title.strip() or len(model.title) > 200:
        raise CatalogError("title", "the title must be 1-200 characters")
    if set(model.prices) != set(RENDERING_SPEEDS) or not all(
        type(price) is int and 0 <= price <= MAX_PRICE for price in model.prices.values()
    ):
        raise CatalogError(
            "prices",
            f"prices must give each of {', '.join(RENDERING_SPEEDS)} a whole number of credits"
            f" from 0 to {MAX_PRICE:,}",
        )
    if not model.reports.strip() or len(model.reports) > 200:
        raise CatalogError("reports", "the reported model name must be 1-200 characters")
    if (
        not model.sizes
        or len(set(model.sizes)) != len(model.sizes)
        or (set(model.sizes) - set(SIZES))
    ):
        raise CatalogError("sizes", f"sizes must be some of {', '.join(SIZES)}, each once")
    if model.providers is not None:
        _check_providers(model.providers)
    _check_upstream(model.upstream)
    if model.upstream and model.providers is None:
        # The default route may start with a provider that knows nothing of these options
        # (Ideogram would make Ideogram V4 images for it): such a model says who serves it.
        raise CatalogError(
            "providers", "a model with upstream options names its route (e.g. replicate)"
        )
    if not _QUEUE.fullmatch(model.queue) or model.queue in RESERVED_QUEUES:
        raise CatalogError(
            "queue", "the queue is 1-64 of a-z, 0-9, ':', '.', '_', '-' (not callbacks or"
            " maintenance)"
        )  # fmt: skip
    return replace(model, sizes=tuple(s for s in SIZES if s in model.sizes))


def _check_providers(providers: tuple[str, ...]) -> None:
    unknown = [name for name in providers if name not in PROVIDER_NAMES]
    if not providers or unknown or len(set(providers)) != len(providers):
        raise CatalogError(
            "providers",
            f"the route is one or more of {', '.join(PROVIDER_NAMES)}, each once, in order",
        )


def _check_upstream(upstream: dict[str, Any]) -> None:
    if not isinstance(upstream, dict) or set(upstream) - set(PROVIDER_NAMES):
        raise CatalogError(
            "upstream", f"upstream options are by provider: {', '.join(PROVIDER_NAMES)}"
        )
    if "replicate" in upstream:
        try:
            check_options(upstream["replicate"])
        except ValueError as exc:
            raise CatalogError("upstream", f"upstream.replicate: {exc}") from None
    for name in ("simulator", "ideogram"):
        if upstream.get(name, {}) != {}:
            raise CatalogError("upstream", f"{name} takes no upstream options")
