"""Explicit SQL, written once for both databases, run through a transaction port (``Tx``).

Stores (``<feature>/store.py``) hold an aggregate's statements as plain SQL with ``:name``
parameters and run them through a ``Tx``. Three adapters carry them out:

- the request path's SQLite connections (db/sqlite_hot.py): sqlite3 inline, no thread hop;
- the request path's PostgreSQL connections (db/pg_hot.py): asyncpg, prepared statements;
- ``SessionTx``: an SQLAlchemy session, for the cold paths (console, CLI, worker) that call the
  same store functions inside their own transactions.

Values cross as the drivers give them: JSON columns arrive as text from SQLite and parsed from
PostgreSQL (``from_json`` reads both), booleans as 0/1 or bool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import pydantic_core
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

Params = Mapping[str, Any]
Row = tuple[Any, ...]
NO_PARAMS: Params = {}


class Tx(Protocol):
    """One transaction of explicit statements (or one autocommit read)."""

    dialect: str  # "sqlite" or "postgresql"

    async def one(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        """The first row of ``sql``'s result, or None."""
        ...

    async def all(self, sql: str, params: Params = NO_PARAMS) -> list[Row]: ...

    async def run(self, sql: str, params: Params = NO_PARAMS) -> None:
        """Run a statement whose result is not needed (PostgreSQL may pipeline it)."""
        ...

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once the transaction has committed (never when it rolls back)."""
        ...


class SessionTx:
    """A Tx over an SQLAlchemy session, inside the transaction its owner opened."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    async def one(self, sql: str, params: Params = NO_PARAMS) -> Row | None:
        row = (await self.session.execute(text(sql), dict(params))).first()
        return None if row is None else tuple(row)

    async def all(self, sql: str, params: Params = NO_PARAMS) -> list[Row]:
        return [tuple(row) for row in await self.session.execute(text(sql), dict(params))]

    async def run(self, sql: str, params: Params = NO_PARAMS) -> None:
        await self.session.execute(text(sql), dict(params))

    def after_commit(self, hook: Callable[[], None]) -> None:
        after_commit(self.session, hook)


AFTER_COMMIT = "after_commit"


def after_commit(session: AsyncSession, hook: Callable[[], None]) -> None:
    """Call ``hook`` after ``session``'s transaction commits (Database.transaction runs them)."""
    session.info.setdefault(AFTER_COMMIT, []).append(hook)


def merged(*parts: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a statement built from parts, each with its own; a name two parts
    share must carry the same value in both."""
    params: dict[str, Any] = {}
    for part in parts:
        shared = params.keys() & part.keys()
        assert all(params[name] == part[name] for name in shared), shared
        params.update(part)
    return params


def unnest(name: str, types: Mapping[str, str]) -> str:
    """PostgreSQL: a WITH query ``name`` with one row per element of array parameters, one per
    column of ``types`` (column name: its SQL type), each parameter named as its column."""
    arrays = ", ".join(f"CAST(:{column} AS {kind}[])" for column, kind in types.items())
    return f"{name} AS (SELECT * FROM unnest({arrays}) AS r({', '.join(types)}))"


def arrays(rows: Sequence[Mapping[str, Any]], columns: Iterable[str]) -> dict[str, list[Any]]:
    """unnest()'s parameters: the values of each column of ``rows``, in order."""
    return {column: [row[column] for row in rows] for column in columns}


def to_json(value: Any) -> str | None:
    """A JSON column's parameter (both drivers take the text): compact, non-ASCII characters as
    they are. (pydantic's encoder: a fifth of json.dumps's time, twice on every create.)"""
    return None if value is None else pydantic_core.to_json(value).decode()


def from_json(value: Any) -> Any:
    """A JSON column's value as either driver returns it."""
    return json.loads(value) if isinstance(value, str | bytes) else value
