"""Alembic's entry point: runs the migrations on the connection that :func:`~napari_nsclc.review.schema.upgrade` passes.

That function has already begun the transaction and taken the lock, so the
migrations join its transaction and a failed upgrade leaves the old schema.
"""

from alembic import context

from napari_nsclc.review.schema import VERSION_TABLE

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("the review store is migrated by napari_nsclc.review.open_store, not by the alembic command")

context.configure(connection=connection, version_table=VERSION_TABLE, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
