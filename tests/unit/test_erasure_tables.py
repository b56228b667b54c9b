"""Every table that refers to an account or its users has its fate decided when the account is
deleted: emptied of the account's rows, or kept (fta.privacy.erasure). A new table that
refers to one fails here until it is named in one of the two."""

from __future__ import annotations

from sqlalchemy import Table

import fta.billing.invoices.handoff
import fta.billing.models
import fta.models  # every table in the metadata
from fta.db import Base
from fta.privacy.erasure import ERASED_TABLES, KEPT_TABLES

# Columns that name an account or a user without a foreign key.
ACCOUNT_COLUMNS = {"tenant_id", "user_id", "email", "to_address", "account_key"}
# Rows that PayPal sent us and that name our subscriptions, not our accounts.
BY_PAYPAL_IDS = {"payments", "paypal_events"}


def _refers_to_an_account(table: Table, linked: set[str]) -> bool:
    return bool(
        {fk.column.table.name for fk in table.foreign_keys} & linked
        or ACCOUNT_COLUMNS & set(table.columns.keys())
    )


def _tables_of_accounts() -> set[str]:
    linked = {"tenants", "users"}
    grown = True
    while grown:
        found = {t.name for t in Base.metadata.tables.values() if _refers_to_an_account(t, linked)}
        grown = not found <= linked
        linked |= found
    return linked


def test_every_table_of_an_account_is_erased_or_kept() -> None:
    assert fta.billing.models.UsageBill.__tablename__ in Base.metadata.tables
    assert fta.billing.invoices.handoff.InvoiceHandoff.__tablename__ in Base.metadata.tables
    decided = ERASED_TABLES | KEPT_TABLES
    assert not ERASED_TABLES & KEPT_TABLES
    undecided = sorted(_tables_of_accounts() - decided)
    assert undecided == [], f"decide what an erasure does with {undecided}"
    # Kept for their link to invoices through PayPal's ids rather than an account's.
    assert BY_PAYPAL_IDS <= KEPT_TABLES


def test_the_tables_named_exist() -> None:
    assert sorted((ERASED_TABLES | KEPT_TABLES) - set(Base.metadata.tables)) == []
