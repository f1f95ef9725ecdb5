"""Alembic environment: run on the connection his_pacs_ws.db.migrate hands in."""

from alembic import context

from his_pacs_ws.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
