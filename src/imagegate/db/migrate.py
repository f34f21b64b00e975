"""Alembic, driven from code: `imagegate db upgrade` and every server start call upgrade().

Commands that must not migrate (admin, jobs, worker) and /readyz only compare the database's
revision with this release's (``schema_problem``). That comparison reads the migration files as
text: Alembic itself would import each of them (procrastinate's schema too), which costs a CLI
command a quarter of a second before it does anything.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, create_engine, inspect, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from imagegate.db.engine import is_sqlite, sync_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest of procrastinate's schema migrations that ours apply (0009 applies its whole schema
# as of this one). A procrastinate release that adds one needs a migration of ours that runs it.
PROCRASTINATE_SCHEMA = "03.04.00_50_post_add_retry_failed_job_procedure"
UPGRADE_HINT = "run `imagegate db upgrade`"
# `revision = "0009"` and `down_revision = "0008"` (or None) at the top of each migration file.
_DECLARED = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([\w.-]+)", re.M)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (creating a SQLite file's folder)."""
    from alembic import command

    sqlite_path = make_url(sync_url(url)).database
    if is_sqlite(url) and sqlite_path and sqlite_path != ":memory:":
        Path(sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")


@cache
def known_revisions() -> tuple[str, frozenset[str]]:
    """This release's newest revision and every revision it knows, from its migration files."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        declared = dict(_DECLARED.findall(path.read_text()))
        revisions.add(declared["revision"])
        if declared.get("down_revision", "None") != "None":
            parents.add(declared["down_revision"])
    (head,) = revisions - parents  # the chain is linear: one revision nothing follows
    return head, frozenset(revisions)


def schema_problem(revision: str | None) -> str | None:
    """Why a database at ``revision`` (None: no schema) cannot be used by this release, as a
    sentence for operators; None when it is current."""
    head, known = known_revisions()
    if revision == head:
        return None
    if revision is None:
        return f"the database has no schema; {UPGRADE_HINT}"
    if revision not in known:
        return (
            f"the database schema is newer than this imagegate (revision {revision}); "
            "upgrade imagegate"
        )
    return (
        f"the database schema is behind (revision {revision}, this imagegate needs {head}); "
        + UPGRADE_HINT
    )


def revision_of(connection: Connection) -> str | None:
    """The revision the database is at; None when it has no schema yet."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision: str | None = connection.execute(
        text("SELECT version_num FROM alembic_version")
    ).scalar()
    return revision


async def database_revision(engine: AsyncEngine) -> str | None:
    """``revision_of`` the database of ``engine``, on a connection of its own."""
    async with engine.connect() as connection:
        return await connection.run_sync(revision_of)


def problem_at(url: str) -> str | None:
    """``schema_problem`` of the database at ``url`` (synchronous, for callers outside an event
    loop, such as `imagegate worker` before it starts one)."""
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            return schema_problem(revision_of(connection))
    finally:
        engine.dispose()


def is_current(url: str) -> bool:
    """Whether the database at ``url`` is at this release's newest migration."""
    return problem_at(url) is None
