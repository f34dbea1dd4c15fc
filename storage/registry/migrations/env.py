"""Alembic's environment for the farm registry: migrations run on the connection ``FarmRegistry.migrate`` hands
over (SQLite or PostgreSQL), never on a URL of their own."""

from __future__ import annotations

from alembic import context

from storage.registry.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
