"""Alembic's environment: always given a connection by knowledge_base.migrations (no alembic.ini, no URL here)."""
from alembic import context

from knowledge_base.db import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table, PostgreSQL alters it.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
