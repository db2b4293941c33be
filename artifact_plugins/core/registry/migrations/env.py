"""Alembic environment: runs on the connection handed over by :mod:`artifact_plugins.core.registry.db`."""

from __future__ import annotations

from alembic import context

from artifact_plugins.core.registry.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # invoked through the alembic CLI: use the configured URL
    from sqlalchemy import create_engine

    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "set sqlalchemy.url or use `artifacts db upgrade`"
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
