"""Alembic environment: migrations run on the connection socketcad.clinic.store.migrate hands over."""

from alembic import context

from socketcad.clinic.models import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata,
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
