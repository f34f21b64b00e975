"""Alembic environment: synchronous drivers, URL from the config that migrate.py builds."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from imagegate.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several processes may start at once: one migrates, the others wait, then find the
            # schema current. (SQLite serialises the writers by itself.)
            connection.execute(text("SELECT pg_advisory_xact_lock(72430001)"))
        context.run_migrations()
engine.dispose()
