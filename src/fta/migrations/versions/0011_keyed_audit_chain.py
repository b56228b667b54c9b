"""Audit links keyed with a secret the database does not hold

Rows already written keep their plain SHA-256 links and are marked unkeyed; a migration cannot
know the key, so `fta migrate` seals each such chain with a keyed link right after upgrading
(see fta.audit.service). The runtime role's rights are set after every migration run (see
fta.db_privileges).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a column with a constant default rewrites no row, so the append-only trigger
    # (which refuses UPDATE) is not in the way; new rows state their kind explicitly.
    op.add_column(
        "audit_events",
        sa.Column("keyed", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.alter_column("audit_events", "keyed", server_default=None)


def downgrade() -> None:
    op.drop_column("audit_events", "keyed")
