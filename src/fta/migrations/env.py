"""Alembic environment: migrates the database named by the settings (or by the caller), then
grants the runtime role its rights in the same transaction (see fta.db_privileges)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import fta.models  # registers every table on the metadata
import fta.operators.models  # noqa: F401 - the console's own table (above the domains)
from fta.db import Base
from fta.db_privileges import grant_runtime_privileges
from fta.settings import get_settings

config = context.config
url = config.attributes.get("url") or get_settings().database_url.get_secret_value()
runtime_role = config.attributes.get("runtime_role")
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
        if runtime_role is not None:
            grant_runtime_privileges(connection, runtime_role)
engine.dispose()
