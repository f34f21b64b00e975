"""Async engine and session factory for SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sync_url(url: str) -> str:
    """The same database through a synchronous driver (for Alembic)."""
    return url.replace("sqlite+aiosqlite", "sqlite", 1)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine whose transactions are safe for concurrent writers on either backend."""
    if not is_sqlite(url):
        # No ping per checkout: a connection the server dropped fails once and is replaced
        # (SQLAlchemy invalidates the pool on a disconnect); recycling bounds their age.
        kwargs.setdefault("pool_recycle", 1800)
        return create_async_engine(url, **kwargs)
    engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
    _serialize_sqlite_writers(engine)
    return engine


WRITE = {"sqlite_write": True}  # execution options of a connection that will write


def _serialize_sqlite_writers(engine: AsyncEngine) -> None:
    # pysqlite opens transactions lazily and DEFERRED, so a read-then-write transaction can fail
    # with SQLITE_BUSY instead of waiting. BEGIN IMMEDIATE takes the write lock up front and lets
    # busy_timeout queue writers (other processes too, such as the admin CLI). Only writing
    # transactions take it: WAL lets readers run beside the writer, and a read-only session
    # under BEGIN IMMEDIATE (as every GET once was) queued behind every write.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("sqlite_write", False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        # Reads run without BEGIN: each statement sees the latest commit (autocommit).


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def make_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reading: autocommit, so a lookup is one round trip, not BEGIN + query +
    ROLLBACK (SQLite reads already skip BEGIN, see above)."""
    if engine.dialect.name == "sqlite":
        return make_sessionmaker(engine)
    return make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
