"""Alembic migrations, shipped inside the package so `fta migrate` works from the image."""
