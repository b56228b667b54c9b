"""A bot's actual state has no `pending`: nothing ever entered it

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

STATES = ("stopped", "starting", "running", "stopping", "crashed")


def _check(states: tuple[str, ...]) -> str:
    return f"actual_state IN ({', '.join(repr(state) for state in states)})"


def upgrade() -> None:
    # No row can hold it (no code path set it); a stopped bot is what it would have meant.
    op.execute("UPDATE bots SET actual_state = 'stopped' WHERE actual_state = 'pending'")
    op.drop_constraint(op.f("ck_bots_actual_state"), "bots", type_="check")
    op.create_check_constraint(op.f("ck_bots_actual_state"), "bots", _check(STATES))


def downgrade() -> None:
    op.drop_constraint(op.f("ck_bots_actual_state"), "bots", type_="check")
    op.create_check_constraint(
        op.f("ck_bots_actual_state"), "bots", _check(("stopped", "pending", *STATES[1:]))
    )
