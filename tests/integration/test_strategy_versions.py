"""Every table that references a strategy version keeps that version from being deleted: the
strategies package names those tables (fta.strategies.service.VERSION_RUNNERS) instead of
importing the packages above it, and this checks the names against the real schema."""

from __future__ import annotations

import fta.models  # noqa: F401 - every table of the schema, for the metadata
from fta.db import Base
from fta.strategies.models import StrategyVersion
from fta.strategies.service import VERSION_RUNNERS


def test_every_reference_to_a_strategy_version_pins_it() -> None:
    referencing = {
        (table.name, key.parent.name)
        for table in Base.metadata.tables.values()
        for key in table.foreign_keys
        if key.column.table is StrategyVersion.__table__
    }
    named = {(runner.name, "strategy_version_id") for runner in VERSION_RUNNERS}
    assert referencing == named
