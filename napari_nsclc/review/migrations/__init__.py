"""Alembic migrations of the review store; run by :func:`napari_nsclc.review.schema.upgrade`, not by the ``alembic`` command."""
