"""The portal and the worker connect as a runtime role that cannot change the schema or
history, and the audit chain, keyed with a secret the database does not hold, shows a rewrite
made with database access alone (the schema's owner here, which can disable triggers)."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from fta.audit.models import AuditChainHead, AuditEvent
from fta.audit.service import (
    SEAL_ACTION,
    configured_key,
    record,
    seal_unkeyed_chains,
    verify_chain,
)
from fta.db import session_scope
from fta.db_privileges import APPEND_ONLY, grant_runtime_privileges, table_rights
from tests.support.database import MigratedDatabase

INSUFFICIENT_PRIVILEGE = "42501"
ATTACKS = {
    "drop the append-only trigger": "DROP TRIGGER audit_events_append_only ON audit_events",
    "disable it": "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
    "disable every trigger": "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "replace its function": "CREATE OR REPLACE FUNCTION audit_events_append_only() "
    "RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "drop the audit table": "DROP TABLE audit_events",
    "drop the invoices": "DROP TABLE invoices CASCADE",
    "truncate the audit log": "TRUNCATE audit_events",
    "truncate the ledger": "TRUNCATE usage_events",
    "update the audit log": "UPDATE audit_events SET action = 'forged'",
    "delete from the audit log": "DELETE FROM audit_events",
    "rewind a chain's head": "DELETE FROM audit_chain_heads",
    "update the ledger": "UPDATE usage_events SET cpu_seconds = 0",
    "renumber an invoice": "UPDATE invoices SET number = 'F-forged'",
    "delete an invoice line": "DELETE FROM invoice_lines",
    "delete a usage month": "DELETE FROM usage_periods",
    "create a table": "CREATE TABLE forged (id integer)",
    "create a temporary table": "CREATE TEMPORARY TABLE forged (id integer)",
    "create a schema": "CREATE SCHEMA forged",
    "add a trigger": "CREATE TRIGGER forged BEFORE INSERT ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    "switch triggers off for the session": "SET session_replication_role = replica",
    "become superuser": "ALTER ROLE CURRENT_USER SUPERUSER",
    "create a role": "CREATE ROLE forged LOGIN",
    "take the table over": "ALTER TABLE audit_events OWNER TO CURRENT_USER",
}


@pytest.fixture(scope="module")
def runtime(database_url: str) -> Iterator[Engine]:
    """The application's own connection (the conftest gives it the runtime role)."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("statement", ATTACKS.values(), ids=ATTACKS.keys())
def test_the_runtime_role_cannot_change_schema_or_history(runtime: Engine, statement: str) -> None:
    with pytest.raises(DBAPIError) as refused, runtime.begin() as connection:
        connection.execute(text(statement))
    assert refused.value.orig is not None
    assert getattr(refused.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE, statement


def test_the_runtime_role_holds_no_attribute_membership_or_object(
    runtime: Engine, migrated: MigratedDatabase
) -> None:
    with runtime.connect() as connection:
        role = connection.execute(
            text(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                "FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
        assert not any(role)
        assert connection.execute(text("SELECT current_user")).scalar_one() == (
            migrated.runtime_role
        )
        member_of = connection.execute(
            text("SELECT count(*) FROM pg_auth_members WHERE member = current_user::regrole")
        ).scalar_one()
        assert member_of == 0
        owned = connection.execute(
            text(
                "SELECT (SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole)"
                " + (SELECT count(*) FROM pg_proc WHERE proowner = current_user::regrole)"
                " + (SELECT count(*) FROM pg_type WHERE typowner = current_user::regrole)"
                " + (SELECT count(*) FROM pg_namespace WHERE nspowner = current_user::regrole)"
            )
        ).scalar_one()
        assert owned == 0


def _rights(connection: Connection, role: str) -> dict[str, set[str]]:
    rows = connection.execute(
        text(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = :role AND table_schema = 'public'"
        ),
        {"role": role},
    )
    rights: dict[str, set[str]] = {}
    for table, privilege in rows:
        rights.setdefault(table, set()).add(privilege)
    return rights


def test_history_tables_are_append_only_and_no_table_can_be_truncated(
    owner_engine: Engine, migrated: MigratedDatabase
) -> None:
    with owner_engine.connect() as connection:
        tables = set(
            connection.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars()
        )
        rights = _rights(connection, migrated.runtime_role)
    assert tables >= APPEND_ONLY
    assert {table: rights.get(table, set()) for table in tables} == {
        table: set(table_rights(table)) for table in tables
    }
    for table in APPEND_ONLY:
        assert rights[table] == {"SELECT", "INSERT"}, table


def test_a_table_a_later_migration_adds_is_covered_by_the_grants(
    owner_engine: Engine, migrated: MigratedDatabase
) -> None:
    """What the migration run does after every upgrade, for a table it has not seen yet."""
    name = f"later_{secrets.token_hex(4)}"
    with owner_engine.begin() as connection:
        connection.execute(text(f"CREATE TABLE {name} (id integer PRIMARY KEY)"))
        grant_runtime_privileges(connection, migrated.runtime_role)
    try:
        with owner_engine.connect() as connection:
            assert _rights(connection, migrated.runtime_role)[name] == {
                "SELECT",
                "INSERT",
                "UPDATE",
                "DELETE",
            }
    finally:
        with owner_engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {name}"))


# --- the keyed chain ----------------------------------------------------------------------


def _tenant_chain(size: int) -> str:
    tenant = secrets.token_hex(4)
    with session_scope() as session:
        for index in range(size):
            record(session, actor="user:x", action=f"test.step{index}", tenant_id=tenant)
    return tenant


def _plain_link(event: dict[str, Any]) -> str:
    """The link as an attacker who knows the algorithm but not the key computes it."""
    payload = {
        "prev": event["prev_hash"],
        "seq": event["seq"],
        "at": event["created_at"].astimezone(UTC).isoformat(),
        "actor": event["actor"],
        "tenant": event["tenant_id"],
        "action": event["action"],
        "target": event["target"],
        "ip": event["ip"],
    }
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _rewrite(owner_engine: Engine, chain: str, seq: int, *, keyed: bool | None = None) -> None:
    """As the owner, with the trigger off: changes one event's address, then recomputes the
    links from there on and the head, as a rewrite of an unkeyed chain would. With `keyed`,
    marks every event of the chain so and recomputes all its links."""
    relink_from = 1 if keyed is not None else seq
    with owner_engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        )
        connection.execute(
            text("UPDATE audit_events SET ip = '203.0.113.9' WHERE chain = :c AND seq = :s"),
            {"c": chain, "s": seq},
        )
        if keyed is not None:
            connection.execute(
                text("UPDATE audit_events SET keyed = :k WHERE chain = :c"),
                {"c": chain, "k": keyed},
            )
        events = connection.execute(
            text("SELECT * FROM audit_events WHERE chain = :c ORDER BY seq"), {"c": chain}
        ).mappings()
        prev = "0" * 64
        for event in [dict(row) for row in events]:
            if event["seq"] >= relink_from:
                event["prev_hash"], event["hash"] = prev, _plain_link({**event, "prev_hash": prev})
                connection.execute(
                    text("UPDATE audit_events SET prev_hash = :p, hash = :h WHERE id = :id"),
                    {"p": event["prev_hash"], "h": event["hash"], "id": event["id"]},
                )
            prev = event["hash"]
        connection.execute(
            text("UPDATE audit_chain_heads SET hash = :h WHERE chain = :c"), {"h": prev, "c": chain}
        )
        connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))


def test_a_rewrite_without_the_key_is_detected(app_settings: None, owner_engine: Engine) -> None:
    chain = _tenant_chain(4)
    with session_scope() as session:
        assert verify_chain(session, chain) is None
    _rewrite(owner_engine, chain, 2)
    with session_scope() as session:
        assert verify_chain(session, chain) == 2


def test_marking_keyed_links_as_plain_ones_is_detected(
    app_settings: None, owner_engine: Engine
) -> None:
    """The rewrite turns the whole chain into pre-keying rows, all links recomputed: no keyed
    link vouches for them, so the chain is broken from its first row."""
    chain = _tenant_chain(3)
    _rewrite(owner_engine, chain, 2, keyed=False)
    with session_scope() as session:
        assert verify_chain(session, chain) == 1


def _plain_chain(owner_engine: Engine, size: int) -> str:
    """A chain as the code before keying wrote it: plain SHA-256 links, `keyed` false."""
    chain = _tenant_chain(size)
    _rewrite(owner_engine, chain, 1, keyed=False)
    with session_scope() as session:
        assert verify_chain(session, chain) == 1, "no keyed link vouches for the plain ones yet"
    return chain


def test_chains_from_before_keying_are_sealed_then_hold(
    app_settings: None, owner_engine: Engine
) -> None:
    chain = _plain_chain(owner_engine, 3)
    with session_scope() as session:
        assert chain in seal_unkeyed_chains(session, configured_key())
    with session_scope() as session:
        assert verify_chain(session, chain) is None
        seal = session.scalars(
            select(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq == 4)
        ).one()
        assert (seal.action, seal.keyed) == (SEAL_ACTION, True)
        assert chain not in seal_unkeyed_chains(session, configured_key())
        record(session, actor="user:x", action="test.after", tenant_id=chain)
    with session_scope() as session:
        assert verify_chain(session, chain) is None

    # Rewriting a plain row now breaks the link of the seal, which vouched for it.
    _rewrite(owner_engine, chain, 2)
    with session_scope() as session:
        assert verify_chain(session, chain) == 4


def test_audit_verify_reports_the_first_broken_link(
    app_settings: None, owner_engine: Engine
) -> None:
    chain = _tenant_chain(3)
    intact = _audit_verify("--chain", chain)
    assert intact.returncode == 0, intact.stderr
    with Session(owner_engine) as session:
        head = session.get(AuditChainHead, chain)
        assert head is not None
        assert intact.stdout.split() == [chain, "3", head.hash, "ok"]
    _rewrite(owner_engine, chain, 3)
    broken = _audit_verify("--chain", chain)
    assert broken.returncode == 1
    assert broken.stdout.strip().endswith("broken at 3")
    assert "1 of 1 audit chains broken" in broken.stderr
    every = _audit_verify()
    assert every.returncode == 1
    assert f"{chain} 3 " in every.stdout


def _audit_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fta.cli", "audit-verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
