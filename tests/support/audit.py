"""Rewriting an audit row as only the schema's owner can: the append-only guard disabled for
one statement, then enabled again. What the chain's verification must catch."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

# Columns a forger may rewrite (a name spliced into SQL: never the caller's text).
FORGEABLE = frozenset({"ip", "action", "target", "actor"})


def forge_audit_row(owner: Engine, chain: str, seq: int, column: str, value: str) -> None:
    assert column in FORGEABLE, column
    with owner.begin() as connection:
        connection.execute(
            text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        )
        connection.execute(
            text(f"UPDATE audit_events SET {column} = :value WHERE chain = :c AND seq = :seq"),  # noqa: S608 - a column from FORGEABLE
            {"value": value, "c": chain, "seq": seq},
        )
        connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))
