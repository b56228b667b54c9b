"""What the runtime database role (portal and worker) may do, applied after every migration.

Two roles share the database: the owner, which runs the migrations and owns every table,
trigger and function, and the runtime role, which the long-running processes log in as. The
runtime role owns nothing, so it can neither drop nor disable a trigger, alter or drop a table,
nor truncate one; it reads and writes rows, and on history that must never change it only
appends. A table that a later migration adds gets the ordinary row rights the next time the
migrations run; history tables are named here.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# Appended to and read, never changed: the audit trail, the usage ledger, issued invoices.
APPEND_ONLY = frozenset({"audit_events", "usage_events", "invoices", "invoice_lines"})
# Updated in place but never deleted: a chain's head, a month once opened (a trigger keeps a
# closed one closed), invoice numbering, a month's bill, PayPal's delivered events.
NEVER_DELETED = frozenset(
    {"audit_chain_heads", "usage_periods", "invoice_counters", "usage_bills", "paypal_events"}
)
# Read only: which migration the schema is at.
READ_ONLY = frozenset({"alembic_version"})

ROW_RIGHTS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def table_rights(table: str) -> tuple[str, ...]:
    """The privileges the runtime role holds on one table of the schema."""
    if table in READ_ONLY:
        return ("SELECT",)
    if table in APPEND_ONLY:
        return ("SELECT", "INSERT")
    if table in NEVER_DELETED:
        return ("SELECT", "INSERT", "UPDATE")
    return ROW_RIGHTS


def grant_runtime_privileges(connection: Connection, role: str) -> None:
    """Sets the runtime role's rights from scratch, in the migrations' transaction. The caller
    is the owner of the database and of every table (not a superuser)."""
    quoted = connection.dialect.identifier_preparer.quote(role)
    database = connection.dialect.identifier_preparer.quote(
        connection.execute(text("SELECT current_database()")).scalar_one()
    )
    tables = set(
        connection.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ).scalars()
    )
    missing = (APPEND_ONLY | NEVER_DELETED | READ_ONLY) - tables
    if missing:
        raise RuntimeError(f"privileges name tables the schema does not have: {sorted(missing)}")
    statements = [
        # Nobody but the owner creates objects, temporary tables included.
        f"REVOKE ALL ON DATABASE {database} FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE {database} TO {quoted}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {quoted}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
    ]
    for table in sorted(tables):
        rights = ", ".join(table_rights(table))
        name = connection.dialect.identifier_preparer.quote(table)
        statements.append(f"GRANT {rights} ON TABLE public.{name} TO {quoted}")
    for statement in statements:
        connection.execute(text(statement))
