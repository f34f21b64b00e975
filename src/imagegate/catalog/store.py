"""The SQL of the catalogue: its models, and the version every change to them bumps."""

from __future__ import annotations

from typing import Any

from imagegate.catalog import CatalogModel
from imagegate.db.sql import Row, Tx, from_json, to_json

_COLUMNS = "name, title, active, prices, sizes, reports, providers, upstream, queue"
_ALL = f"SELECT {_COLUMNS} FROM models ORDER BY name"
_ONE = f"SELECT {_COLUMNS} FROM models WHERE name = :name"
_VERSION = "SELECT version FROM catalog_state WHERE id = 1"
# The version as a column of another statement (the create's caller query reads it).
VERSION_COLUMN = "(SELECT version FROM catalog_state WHERE id = 1)"
_BUMP = "UPDATE catalog_state SET version = version + 1 WHERE id = 1"
_INSERT = (
    f"INSERT INTO models ({_COLUMNS}, created_at, updated_at) VALUES (:name, :title, :active,"
    " :prices, :sizes, :reports, :providers, :upstream, :queue, :now, :now)"
    " ON CONFLICT (name) DO NOTHING RETURNING name"
)
_SET_ACTIVE = (
    f"UPDATE models SET active = :active, updated_at = :now WHERE name = :name RETURNING {_COLUMNS}"
)
_UPDATE = (
    "UPDATE models SET title = :title, active = :active, prices = :prices, sizes = :sizes,"
    " reports = :reports, providers = :providers, upstream = :upstream, queue = :queue,"
    " updated_at = :now WHERE name = :name"
)


def model_of(row: Row) -> CatalogModel:
    name, title, active, prices, sizes, reports, providers, upstream, queue = row
    route = from_json(providers)
    return CatalogModel(
        name=name,
        title=title,
        prices={speed: int(price) for speed, price in from_json(prices).items()},
        reports=reports,
        sizes=tuple(from_json(sizes)),
        active=bool(active),
        providers=None if route is None else tuple(route),
        upstream=from_json(upstream),
        queue=queue,
    )


async def all_models(tx: Tx) -> list[CatalogModel]:
    """Every model, active or not, by name."""
    return [model_of(row) for row in await tx.all(_ALL)]


async def find(tx: Tx, name: str, for_update: bool = False) -> CatalogModel | None:
    """The model called ``name``; ``for_update``: its row held until the commit (PostgreSQL; on
    SQLite the writer is alone anyway)."""
    lock = " FOR UPDATE" if for_update and tx.dialect == "postgresql" else ""
    row = await tx.one(_ONE + lock, {"name": name})
    return None if row is None else model_of(row)


async def version(tx: Tx) -> int:
    row = await tx.one(_VERSION)
    return int(row[0]) if row else 0


def _params(model: CatalogModel, now: float) -> dict[str, Any]:
    return {
        "name": model.name,
        "title": model.title,
        "active": model.active,
        "prices": to_json(model.prices),
        "sizes": to_json(list(model.sizes)),
        "reports": model.reports,
        "providers": None if model.providers is None else to_json(list(model.providers)),
        "upstream": to_json(model.upstream),
        "queue": model.queue,
        "now": now,
    }


async def insert(tx: Tx, model: CatalogModel, now: float) -> bool:
    """Add ``model``; False (nothing written) when a model of that name exists."""
    if await tx.one(_INSERT, _params(model, now)) is None:
        return False
    await tx.run(_BUMP)
    return True


async def set_active(tx: Tx, name: str, active: bool, now: float) -> CatalogModel | None:
    row = await tx.one(_SET_ACTIVE, {"name": name, "active": active, "now": now})
    if row is None:
        return None
    await tx.run(_BUMP)
    return model_of(row)


async def update(tx: Tx, model: CatalogModel, now: float) -> None:
    await tx.run(_UPDATE, _params(model, now))
    await tx.run(_BUMP)
