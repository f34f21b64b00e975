"""This process's copy of the catalogue, re-read when its version moves.

Every change to the models bumps ``catalog_state.version`` in its own transaction. The create
reads the version in its one statement (tasks/store.py's caller query) and passes it here: a
different version re-reads the models first, so a model deactivated or re-priced in any process
is seen by the very next create in every process, and an unchanged catalogue costs nothing.
Other readers (the worker, GET /v1/models, the console) ask for ``fresh()``: one small read.
"""

from __future__ import annotations

import asyncio

from imagegate.catalog import CatalogModel, store
from imagegate.db.database import Database
from imagegate.db.sql import Tx


class Catalogue:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._version: int | None = None
        self._models: dict[str, CatalogModel] = {}
        self._lock = asyncio.Lock()

    async def at(self, version: int) -> dict[str, CatalogModel]:
        """Every model (active or not) by name, as of ``version`` or later."""
        if version != self._version:
            async with self._lock:
                if version != self._version:
                    await self._load()
        return self._models

    async def fresh(self) -> dict[str, CatalogModel]:
        """Every model by name, as the database holds them now."""
        return await self.at(await self.db.read(store.version))

    async def _load(self) -> None:
        async def read(tx: Tx) -> tuple[int, list[CatalogModel]]:
            return await store.version(tx), await store.all_models(tx)

        version, models = await self.db.read(read)
        self._models = {model.name: model for model in models}
        self._version = version
