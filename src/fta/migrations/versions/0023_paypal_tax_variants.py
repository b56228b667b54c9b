"""PayPal plans with and without VAT; each subscription's price and VAT as subscribed

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every PayPal plan made so far added French VAT.
    op.add_column(
        "paypal_catalog",
        sa.Column("tax_percent", sa.Numeric(5, 2), nullable=False, server_default="20.00"),
    )
    op.alter_column("paypal_catalog", "tax_percent", server_default=None)
    op.drop_constraint("pk_paypal_catalog", "paypal_catalog", type_="primary")
    op.create_primary_key("pk_paypal_catalog", "paypal_catalog", ["plan_code", "tax_percent"])
    op.add_column("subscriptions", sa.Column("price_ht_cents", sa.Integer(), nullable=True))
    op.add_column("subscriptions", sa.Column("tax_percent", sa.Numeric(5, 2), nullable=True))
    # Subscriptions made before were made on the catalog's PayPal plan at its price.
    op.execute(
        "UPDATE subscriptions SET price_ht_cents = c.price_cents, tax_percent = c.tax_percent "
        "FROM paypal_catalog c WHERE c.plan_code = subscriptions.plan_code"
    )


def downgrade() -> None:
    op.drop_column("subscriptions", "tax_percent")
    op.drop_column("subscriptions", "price_ht_cents")
    op.execute("DELETE FROM paypal_catalog WHERE tax_percent <> 20")
    op.drop_constraint("pk_paypal_catalog", "paypal_catalog", type_="primary")
    op.create_primary_key("pk_paypal_catalog", "paypal_catalog", ["plan_code"])
    op.drop_column("paypal_catalog", "tax_percent")
