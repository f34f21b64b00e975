"""Alembic, driven from code: `imagegate db upgrade` and every server start call upgrade()."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url

from imagegate.db.engine import is_sqlite, sync_url

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest of procrastinate's schema migrations that ours apply (0009 applies its whole schema
# as of this one). A procrastinate release that adds one needs a migration of ours that runs it.
PROCRASTINATE_SCHEMA = "03.04.00_50_post_add_retry_failed_job_procedure"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (creating a SQLite file's folder)."""
    sqlite_path = make_url(sync_url(url)).database
    if is_sqlite(url) and sqlite_path and sqlite_path != ":memory:":
        Path(sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


def is_current(url: str) -> bool:
    """Whether the database at ``url`` is at the newest migration."""
    config = alembic_config(url)
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head
    finally:
        engine.dispose()
