"""Alembic environment: always run with a connection handed over by monitor.db."""

from alembic import context

from monitor.models import described_by_metadata, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    include_name=described_by_metadata,  # the search index is the database's own (0007)
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
