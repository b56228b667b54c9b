"""Alembic environment: migrates the database named by the settings (or by the caller)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import fta.models  # noqa: F401 - registers every table on the metadata
from fta.db import Base
from fta.settings import get_settings

config = context.config
url = config.attributes.get("url") or get_settings().database_url.get_secret_value()
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
