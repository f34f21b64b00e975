"""Admin commands never migrate: against a schema that is not this release's (behind, newer, or
none) they refuse, say what to do, exit 1 and leave the database as it was."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from cli.test_admin_cli import imagegate
from imagegate.config import Settings
from imagegate.db.database import Database
from imagegate.db.migrate import alembic_config, database_revision, known_revisions, upgrade
from test_health import nowhere

HEAD, _ = known_revisions()
# A read, a write, and a jobs verb: every verb goes through the same check.
VERBS = [
    ("admin", "codes", "list"),
    ("admin", "account", "create", "--name", "acme", "--credits", "10"),
    ("jobs", "list"),
]


async def execute(settings: Settings, statement: str) -> object:
    """Run ``statement`` in a transaction of its own; its first row's first column, if any."""
    db = Database(settings.resolved_database_url)
    try:
        async with db.transaction() as session:
            result = await session.execute(text(statement))
            return result.scalar() if result.returns_rows else None
    finally:
        await db.dispose()


async def revision(settings: Settings) -> str | None:
    db = Database(settings.resolved_database_url)
    try:
        return await database_revision(db.engine)
    finally:
        await db.dispose()


@pytest.fixture
async def one_behind(settings: Settings) -> Settings:
    url = settings.resolved_database_url
    await asyncio.to_thread(upgrade, url)
    await asyncio.to_thread(command.downgrade, alembic_config(url), "-1")
    return settings


@pytest.mark.parametrize("verb", VERBS)
async def test_a_schema_one_migration_behind_is_refused_and_left_alone(
    one_behind: Settings, verb: tuple[str, ...]
) -> None:
    before = await revision(one_behind)
    assert before not in (None, HEAD)
    _, err = await imagegate(one_behind, *verb, expect=1)
    assert err.strip() == (
        f"error: the database schema is behind (revision {before}, this imagegate needs {HEAD});"
        " run `imagegate db upgrade`"
    )
    assert await revision(one_behind) == before  # not migrated
    assert await execute(one_behind, "SELECT count(*) FROM accounts") == 0  # nothing written


@pytest.mark.parametrize("verb", VERBS)
async def test_a_schema_newer_than_this_release_is_refused_and_left_alone(
    settings: Settings, verb: tuple[str, ...]
) -> None:
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    await execute(settings, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    out, err = await imagegate(settings, *verb, "--json", expect=1)
    assert out == ""
    assert json.loads(err) == {
        "error": "the database schema is newer than this imagegate (revision"
        " 9999_from_the_future); upgrade imagegate"
    }
    assert await revision(settings) == "9999_from_the_future"
    assert await execute(settings, "SELECT count(*) FROM accounts") == 0


async def test_a_database_without_a_schema_is_refused_not_created(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    await execute(settings, "DROP TABLE alembic_version")
    _, err = await imagegate(settings, "admin", "user", "list", expect=1)
    assert err.strip() == "error: the database has no schema; run `imagegate db upgrade`"
    assert await revision(settings) is None


async def test_an_unreachable_database_is_named(settings: Settings, tmp_path: Path) -> None:
    unreachable = settings.model_copy(update={"database_url": nowhere(settings, tmp_path)})
    _, err = await imagegate(unreachable, "admin", "account", "show", "a1", expect=1)
    assert err.startswith("error: cannot reach the database: ")
    assert err.count("\n") == 1  # one line, no traceback


async def test_the_current_schema_is_used_as_it_is(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    out, _ = await imagegate(settings, "admin", "codes", "list")
    assert out.strip() == "no batches"
    assert await revision(settings) == HEAD


def test_the_revisions_read_from_the_files_are_alembics() -> None:
    # The check reads the migration files as text (Alembic would import them all); it must
    # agree with Alembic about the newest revision and the ones this release knows.
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head, known = known_revisions()
    assert head == scripts.get_current_head()
    assert known == {script.revision for script in scripts.walk_revisions()}
